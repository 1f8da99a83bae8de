"""Time validating and rendering every profile, next to the floor of importing the libraries it needs.

Prints the median of several runs of each, as whole processes, and their ratio (target: <= 1.5x):
wall-clock time, and CPU time (user + system of the process and its children, such as ruff), which
other work on a busy machine disturbs less.

Both commands run as a user's do, with bytecode: the libraries' .pyc files come from their install, so
deploygen's are written too (under .cache/ of the home folder, not into the checkout) by one unmeasured
run first, even where PYTHONDONTWRITEBYTECODE is set.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPYCACHEPREFIX": str(Path.home() / ".cache" / "deploygen" / "pycache"),
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_seconds(cmd: list[str]) -> tuple[float, float]:
    """(wall, cpu) medians over RUNS runs, after one unmeasured run."""
    subprocess.run(cmd, cwd=ROOT, env=ENV, check=True, capture_output=True)
    walls, cpus = [], []
    for _ in range(RUNS):
        cpu, started = _children_cpu(), time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=ENV, check=True, capture_output=True)
        walls.append(time.perf_counter() - started)
        cpus.append(_children_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    floor = median_seconds([sys.executable, "-c", "import jinja2, yaml, jsonschema"])
    render = median_seconds([sys.executable, "generate.py", "render", "--all"])
    profiles = len(list((ROOT / "generated").glob("*/deploy.py")))
    print(f"{'':40} {'wall':>8} {'cpu':>8}")
    print(f"{'import floor (jinja2, yaml, jsonschema)':40} {floor[0] * 1000:6.0f}ms {floor[1] * 1000:6.0f}ms")
    print(f"{f'validate + render {profiles} profiles':40} {render[0] * 1000:6.0f}ms {render[1] * 1000:6.0f}ms")
    print(f"{'ratio (target <= 1.5x)':40} {render[0] / floor[0]:7.2f}x {render[1] / floor[1]:7.2f}x")


if __name__ == "__main__":
    main()
