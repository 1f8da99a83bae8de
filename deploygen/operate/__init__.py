"""Operating a deployment: log triage, the smoke test and the load test."""

# Defaults of the smoke and load tests, here so that the command line shows them without importing openai.
SMOKE_TIMEOUT_S = 300.0
BENCH_TIME_LIMIT_S = 600.0
