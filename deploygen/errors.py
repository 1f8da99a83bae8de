"""The errors a user can cause. The CLI prints them as messages, never as tracebacks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    """Where a value was set: a file and a 1-based line and column, or a default."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One finding about a profile, located at the file and line that set the blamed field."""

    origin: Origin
    path: str
    message: str
    hint: str = ""
    severity: str = "error"
    code: str = ""

    def __str__(self) -> str:
        where = f"{self.origin}: " if self.origin.file else ""
        field = f"{self.path}: " if self.path else ""
        tag = f"{self.severity}[{self.code}]" if self.code else self.severity
        text = f"{where}{tag}: {field}{self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class UserError(Exception):
    """A mistake in the user's input, reported as one or more located problems."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(Origin(""), "", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ProfileNotFound(UserError):
    """A profile name or path that does not exist; the message lists the available ones."""
