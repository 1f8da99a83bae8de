"""Triage the logs of a deployment against the known patterns in data/triage.yaml.

    modal app logs glm-5-1-fp8 | python -m deploygen.operate.triage -
    python -m deploygen.operate.triage --all container.log

Prints every line that matches a known pattern with its severity and what to do, then the counts per
severity and per pattern. Exit status: 1 when a fatal pattern was seen (the container is dead or will
not serve), 0 otherwise, 2 when the log or the pattern file cannot be used.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from deploygen.errors import Origin, Problem, UserError
from deploygen.load.yaml_source import display_path, read_yaml
from deploygen.paths import DATA_DIR
from deploygen.suggest import did_you_mean

DATA_PATH = DATA_DIR / "triage.yaml"
SEVERITIES = ("ignore", "info", "monitor", "warning", "fatal")
FIELDS = ("id", "pattern", "severity", "meaning", "action", "source")
_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_TAG_WIDTH = len("[WARNING]")
_COLORS = {"ignore": "2", "info": "36", "monitor": "34", "warning": "33", "fatal": "1;31"}


@dataclass(frozen=True)
class LogPattern:
    id: str
    regex: re.Pattern[str]
    severity: str
    meaning: str
    action: str
    source: str


@dataclass
class Summary:
    lines: int = 0
    by_severity: Counter[str] = field(default_factory=Counter)
    by_pattern: Counter[str] = field(default_factory=Counter)
    # (line number, pattern) of each fatal pattern's first line, in the order they appeared.
    first_fatal: list[tuple[int, LogPattern]] = field(default_factory=list)

    @property
    def matched(self) -> int:
        return sum(self.by_pattern.values())

    @property
    def fatal(self) -> bool:
        return self.by_severity["fatal"] > 0


def _check_entry(entry: Any, index: int, origins: dict, shown: str, seen_ids: set[str]) -> list[Problem]:
    def problem(key: str | None, message: str, hint: str = "") -> Problem:
        where = ("patterns", index) if key is None else ("patterns", index, key)
        path = f"patterns[{index}]" if key is None else f"patterns[{index}].{key}"
        return Problem(origins.get(where, Origin(shown)), path, message, hint)

    if not isinstance(entry, dict):
        return [problem(None, f"a pattern is a mapping with the keys {', '.join(FIELDS)}")]
    problems = [
        problem(key, f"unknown key {key!r}", did_you_mean(key, FIELDS) or f"the keys are {', '.join(FIELDS)}")
        for key in entry
        if key not in FIELDS
    ]
    for key in FIELDS:
        value = entry.get(key)
        if key not in entry:
            problems.append(problem(None, f"missing key {key!r}"))
        elif not isinstance(value, str) or not value.strip():
            problems.append(problem(key, "must be a non-empty string"))
        elif key == "id" and not _ID.fullmatch(value):
            problems.append(problem(key, f"{value!r} is not a slug", "use lowercase letters, digits and dashes"))
        elif key == "id" and value in seen_ids:
            problems.append(problem(key, f"duplicate id {value!r}", "ids must be unique"))
        elif key == "severity" and value not in SEVERITIES:
            hint = did_you_mean(value, SEVERITIES) or f"use one of {', '.join(SEVERITIES)}"
            problems.append(problem(key, f"unknown severity {value!r}", hint))
        elif key == "pattern":
            try:
                re.compile(value)
            except re.error as exc:
                problems.append(problem(key, f"invalid regex: {exc}"))
    if isinstance(entry.get("id"), str):
        seen_ids.add(entry["id"])
    return problems


def load_patterns(path: Path = DATA_PATH) -> list[LogPattern]:
    """Read and check the pattern file; every problem in it is reported at once, with its line."""
    data, origins = read_yaml(path)
    shown = display_path(path)
    if not isinstance(data, dict) or not isinstance(data.get("patterns"), list) or not data["patterns"]:
        raise UserError(Problem(Origin(shown), "", "the file must be a mapping with a non-empty list `patterns`"))
    problems = [
        Problem(origins[(key,)], key, f"unknown key {key!r}", did_you_mean(key, ["patterns"]))
        for key in data
        if key != "patterns"
    ]
    seen_ids: set[str] = set()
    for index, entry in enumerate(data["patterns"]):
        problems += _check_entry(entry, index, origins, shown, seen_ids)
    if problems:
        raise UserError(problems)
    return [
        LogPattern(
            id=entry["id"],
            regex=re.compile(entry["pattern"], re.IGNORECASE),
            severity=entry["severity"],
            meaning=entry["meaning"],
            action=entry["action"],
            source=entry["source"],
        )
        for entry in data["patterns"]
    ]


def classify(line: str, patterns: Sequence[LogPattern]) -> LogPattern | None:
    """The first pattern, in file order, found anywhere in the line (Modal prefixes timestamps)."""
    return next((pattern for pattern in patterns if pattern.regex.search(line)), None)


def read_lines(stream: BinaryIO) -> Iterator[str]:
    """Lines of a binary stream, one at a time; bytes that are not UTF-8 become U+FFFD."""
    for raw in stream:
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _tag(severity: str, color: bool) -> str:
    tag = f"[{severity.upper()}]".ljust(_TAG_WIDTH)
    return f"\033[{_COLORS[severity]}m{tag}\033[0m" if color else tag


def triage(
    lines: Iterable[str],
    patterns: Sequence[LogPattern],
    *,
    out: TextIO,
    color: bool = False,
    show_all: bool = False,
) -> Summary:
    """Print each matched line with its severity and action (others too, untouched, with show_all)."""
    summary = Summary()
    indent = " " * (_TAG_WIDTH + 1)
    for line in lines:
        summary.lines += 1
        pattern = classify(line, patterns)
        if pattern is None:
            if show_all:
                out.write(f"{line}\n")
            continue
        summary.by_severity[pattern.severity] += 1
        summary.by_pattern[pattern.id] += 1
        if pattern.severity == "fatal" and summary.by_pattern[pattern.id] == 1:
            summary.first_fatal.append((summary.lines, pattern))
        # One diagnosis per pattern: its action the first time, a pointer to it after.
        said = pattern.action if summary.by_pattern[pattern.id] == 1 else "(as above)"
        out.write(f"{_tag(pattern.severity, color)} {line}\n{indent}-> {pattern.id}: {said}\n")
    return summary


def write_summary(summary: Summary, patterns: Sequence[LogPattern], out: TextIO) -> None:
    out.write(f"summary: {summary.lines} lines read, {summary.matched} matched\n")
    for severity in reversed(SEVERITIES):
        out.write(f"  {severity}: {summary.by_severity[severity]}\n")
    if summary.by_pattern:
        out.write("by pattern:\n")
        for pattern in patterns:
            if summary.by_pattern[pattern.id]:
                out.write(f"  {pattern.id} ({pattern.severity}): {summary.by_pattern[pattern.id]}\n")
    write_root_cause(summary, out)


def write_root_cause(summary: Summary, out: TextIO) -> None:
    """The first fatal pattern is the likely root cause; the fatal ones after it usually follow from it."""
    if not summary.first_fatal:
        out.write("root cause: none (no fatal pattern)\n")
        return
    line, pattern = summary.first_fatal[0]
    out.write(f"root cause: {pattern.id} (first fatal line, line {line}): {pattern.meaning}\n")
    out.write(f"  fix: {pattern.action}\n")
    for line, later in summary.first_fatal[1:]:
        out.write(f"  then: {later.id} (line {line}), likely a consequence\n")


def run(
    path_or_dash: str,
    *,
    out: TextIO,
    color: bool = False,
    show_all: bool = False,
    data_path: Path | None = None,
) -> int:
    """Triage a log file ("-" for stdin) and return 1 if a fatal pattern was seen, else 0."""
    patterns = load_patterns(data_path or DATA_PATH)
    if path_or_dash == "-":
        summary = triage(read_lines(sys.stdin.buffer), patterns, out=out, color=color, show_all=show_all)
    else:
        try:
            # Opened apart from the `with`, so that an error writing the output is not reported as a read error.
            stream = open(path_or_dash, "rb")
        except OSError as exc:
            raise UserError(Problem(Origin(path_or_dash), "", f"cannot read the log: {exc.strerror}")) from None
        with stream:
            summary = triage(read_lines(stream), patterns, out=out, color=color, show_all=show_all)
    write_summary(summary, patterns, out)
    return 1 if summary.fatal else 0
