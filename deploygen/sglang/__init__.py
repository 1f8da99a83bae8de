"""SGLang's own argument catalogs, one per supported version, and the checks built on them."""
