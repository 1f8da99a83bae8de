"""Extract an SGLang flag catalog inside the pinned `lmsysorg/sglang` image, on a CPU-only Modal container.

    SGLANG_VERSION=0.5.10.post1 modal run -m deploygen.sglang.extract_on_modal --out schema/sglang/0.5.10.post1.json

Importing sglang needs torch and many other packages, and the image has them all; nothing here needs a GPU,
because the parser is captured before SGLang looks at devices. SGLANG_VERSION picks the image tag, and is
read when this module is imported, since Modal fixes a Function's image before any argument is parsed.
"""

from __future__ import annotations

import os
from pathlib import Path

import modal

from deploygen.files import write_atomic
from deploygen.sglang.extract import catalog_json, extract_catalog

SGLANG_VERSION = os.environ.get("SGLANG_VERSION", "0.5.10.post1")
SGLANG_IMAGE = f"lmsysorg/sglang:v{SGLANG_VERSION}"

# Modal mounts the `deploygen` package itself, as the package of this entrypoint (run it with -m).
# SGLANG_VERSION is set again inside the container, where this module is imported again; the fixed hash
# seed keeps set-ordered text in the catalog stable (see extract.main).
image = modal.Image.from_registry(SGLANG_IMAGE).env({"SGLANG_VERSION": SGLANG_VERSION, "PYTHONHASHSEED": "0"})
app = modal.App("deploygen-sglang-extract", image=image)


@app.function(cpu=2.0, memory=8192, timeout=15 * 60)
def extract(version: str) -> str:
    """The catalog of the image's sglang, as JSON text."""
    return catalog_json(extract_catalog(version))


@app.local_entrypoint()
def main(out: str = "") -> None:
    path = Path(out or f"schema/sglang/{SGLANG_VERSION}.json")
    write_atomic(path, extract.remote(SGLANG_VERSION))
    print(f"wrote {path} from {SGLANG_IMAGE}")
