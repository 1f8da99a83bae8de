"""Time validating and rendering every profile, next to the floor of importing the libraries it needs.

Prints the median of several runs of each, as whole processes, and their ratio (target: <= 1.5x).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7


def median_seconds(cmd: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    floor = median_seconds([sys.executable, "-c", "import jinja2, yaml, jsonschema"])
    render = median_seconds([sys.executable, "generate.py", "render", "--all"])
    profiles = len(list((ROOT / "generated").glob("*/deploy.py")))
    print(f"import floor (jinja2, yaml, jsonschema): {floor * 1000:7.0f} ms")
    print(f"validate + render {profiles} profiles:        {render * 1000:7.0f} ms")
    print(f"ratio:                                  {render / floor:7.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
