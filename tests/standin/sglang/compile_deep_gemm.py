"""Stand-in for `python3 -m sglang.compile_deep_gemm`: the launch_server flags plus --timeout, then a fake
compilation that writes standin-kernels.bin into $SGLANG_DG_CACHE_DIR (SGLang's default ~/.cache/deep_gemm).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from sglang import _standin as S

KERNELS_FILE = "standin-kernels.bin"


def main(argv: list[str] | None = None) -> int:
    catalog = S.load_catalog(S.requested_version())
    namespace = S.compile_deep_gemm_parser(catalog).parse_args(argv)
    args = S.server_args(namespace, catalog)
    S.log(f"server_args={S.server_args_repr(args)}")
    print(
        "Begin DeepGEMM Kernels compilation...\n"
        "It may take a long time and timeout maybe raised while the compilation is still in progress.\n"
        "Please use a larger timeout if needed.",
        flush=True,
    )

    seconds = S.env_float("STANDIN_COMPILE_SECONDS", 0.2)
    time.sleep(min(seconds, namespace.timeout))
    if seconds > namespace.timeout:
        S.log(f"TimeoutError: DeepGEMM compilation did not finish within {namespace.timeout} s")
        return 1
    if S.fault() == "compile-fails":
        S.log(
            "Traceback (most recent call last):\n"
            '  File "/sgl-workspace/sglang/python/sglang/compile_deep_gemm.py", line 140, in run_compile\n'
            '    raise RuntimeError("Failed to compile DeepGEMM kernels")\n'
            "RuntimeError: Failed to compile DeepGEMM kernels"
        )
        return 1

    cache_dir = Path(os.environ.get("SGLANG_DG_CACHE_DIR") or "~/.cache/deep_gemm").expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / KERNELS_FILE).write_text(
        f"stand-in DeepGEMM kernels: sglang {S.requested_version()}, model {args['model_path']}, "
        f"tp_size {args.get('tp_size')}\n"
    )
    print("Finish DeepGEMM Kernels compilation", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
