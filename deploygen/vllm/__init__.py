"""vLLM: flag catalogs extracted from vLLM's own parser, and the checks built on them."""
