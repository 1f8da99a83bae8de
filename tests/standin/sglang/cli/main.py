"""Stand-in for SGLang's `sglang` console script (sglang.cli.main:main): `sglang serve FLAGS` starts the same
server as `python3 -m sglang.launch_server FLAGS` (sglang/cli/serve.py: prepare_server_args, run_server).

A release whose wheel has no `sglang` script (schema/sglang/index.json, before 0.5.5) has no such command: the
shell's "command not found", exit 127.
"""

from __future__ import annotations

import argparse
import json
import sys

from sglang import _standin as S
from sglang import launch_server

NOT_FOUND_EXIT = 127  # what a shell answers for a command that is not installed


def shipped(version: str) -> dict:
    index = json.loads((S.CATALOG_DIR / "index.json").read_text())["releases"]
    record = index.get(version, {})
    return {"console_scripts": record.get("console_scripts", {}), "subcommands": record.get("sglang_subcommands", [])}


def main(argv: list[str] | None = None) -> int:
    version = S.requested_version()
    points = shipped(version)
    if "sglang" not in points["console_scripts"]:
        print(f"sglang: command not found (SGLang {version} ships no `sglang` script)", file=sys.stderr)
        return NOT_FOUND_EXIT
    parser = argparse.ArgumentParser(prog="sglang")
    subparsers = parser.add_subparsers(dest="subcommand", required=True)
    for name in points["subcommands"]:
        subparsers.add_parser(name, add_help=False)
    args, extra_argv = parser.parse_known_args(argv)
    if args.subcommand != "serve":
        print(f"SGLang stand-in: `sglang {args.subcommand}` is not stood in", file=sys.stderr)
        return 2
    return launch_server.main(extra_argv)


if __name__ == "__main__":
    sys.exit(main())
