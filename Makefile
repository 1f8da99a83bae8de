# Every target runs in .venv, built from the pinned requirements.txt on first use.
PROFILE ?= b200-prod
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
GEN := $(PY) generate.py
DEPLOY_FILE = generated/$(PROFILE)/deploy.py

.DEFAULT_GOAL := help
.PHONY: help render render-all check validate explain diff list new plan model-add triage test coverage lint deploy setup-weights logs gate \
	bench-render bench-lifecycle bench-multinode smoke bench clean

help: ## list the targets
	@echo "make TARGET [PROFILE=name]   (PROFILE is $(PROFILE) unless given)"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' -v profile='$(PROFILE)' \
		'{gsub(/\$$\(PROFILE\)/, profile, $$2); printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

render: $(VENV)/.installed ## validate and render generated/$(PROFILE)/deploy.py
	$(GEN) render $(PROFILE)

render-all: $(VENV)/.installed ## render every profile
	$(GEN) render --all

check: $(VENV)/.installed ## fail when a committed render is stale or edited by hand
	$(GEN) validate --all --strict
	$(GEN) check

validate: $(VENV)/.installed ## validate $(PROFILE) (STRICT=1 fails on warnings)
	$(GEN) validate $(PROFILE) $(if $(STRICT),--strict)

explain: $(VENV)/.installed ## show $(PROFILE) resolved, with the file:line of every value
	$(GEN) explain $(PROFILE)

diff: $(VENV)/.installed ## diff the renders of profiles A and B
	@if [ -z "$(A)" ] || [ -z "$(B)" ]; then echo "usage: make diff A=x B=y (two profile names, e.g. A=b200-prod B=h200)" >&2; exit 2; fi
	$(GEN) diff $(A) $(B)

new: $(VENV)/.installed ## write profiles/$(NAME).yaml, a commented child of PARENT (make new NAME=x PARENT=y)
	@if [ -z "$(NAME)" ]; then echo "usage: make new NAME=my-profile [PARENT=$(PROFILE)]" >&2; exit 2; fi
	$(GEN) new $(NAME) --extends $(or $(PARENT),$(PROFILE))

list: $(VENV)/.installed ## list the profiles
	$(GEN) list

plan: $(VENV)/.installed ## capacity, concurrency, cost and cold start of $(PROFILE)
	$(GEN) plan $(PROFILE)

model-add: $(VENV)/.installed ## write data/models/NAME.yaml from the Hub: REPO=owner/name[@revision] (NAME=...)
	$(if $(REPO),,$(error usage: make model-add REPO=owner/name[@revision] [NAME=file-name]))
	$(GEN) model add $(REPO) $(if $(NAME),--name $(NAME))

triage: $(VENV)/.installed ## classify log lines from stdin (or FILE=...)
	$(GEN) triage $(or $(FILE),-)

test: $(VENV)/.installed ## run the test suite
	$(PY) -m pytest

coverage: $(VENV)/.installed ## coverage of the container runtime (deploygen/runtime) by its unit tests
	$(PY) -m coverage run --source=deploygen/runtime -m pytest tests/test_runtime.py -q
	$(PY) -m coverage report -m

lint: $(VENV)/.installed ## ruff over the generator, the tests and the generated files
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

gate: $(VENV)/.installed
	$(GEN) validate $(PROFILE) --strict
	$(GEN) check $(PROFILE)

deploy: gate ## refuse an invalid $(PROFILE) or a stale or edited render of it, then modal deploy
	$(VENV)/bin/modal deploy $(DEPLOY_FILE)

setup-weights: gate ## download weights, compile kernels and verify $(PROFILE), on Modal
	$(VENV)/bin/modal run $(DEPLOY_FILE)

logs: $(VENV)/.installed ## stream the deployed app's logs
	$(VENV)/bin/modal app logs $$($(GEN) explain $(PROFILE) --field app.name)

bench-render: $(VENV)/.installed ## time validate+render of every profile against the import floor
	$(PY) benchmarks/bench_render.py

bench-lifecycle: $(VENV)/.installed ## this lifecycle vs the guide's, against the stand-in engine
	$(PY) benchmarks/bench_lifecycle.py

bench-multinode: $(VENV)/.installed ## fault timings of --local --nodes 2 against the stand-in engine
	$(PY) benchmarks/bench_multinode.py

smoke: $(VENV)/.installed ## $(PROFILE)'s warmup requests against URL=... (API_KEY=..., MODAL_PROXY_KEY/_SECRET=...)
	$(GEN) smoke $(URL) --profile $(PROFILE)

bench: $(VENV)/.installed ## load test URL=... (CONCURRENCY=, REQUESTS=)
	$(GEN) bench $(URL) $(if $(CONCURRENCY),--concurrency $(CONCURRENCY)) $(if $(REQUESTS),--requests $(REQUESTS)) --profile $(PROFILE)

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
