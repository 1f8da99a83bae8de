"""The errors a user can cause. The CLI prints them as messages, never as tracebacks."""

from __future__ import annotations

import enum
import errno
import os
from dataclasses import dataclass


class Severity(enum.StrEnum):
    """How much a finding matters: an error stops the render, a warning fails only `--strict`, info never."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    # A warning the profile accepts under `acknowledge`, with its reason: shown, never failing.
    ACKNOWLEDGED = "acknowledged"


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
    severity: Severity = Severity.ERROR
    code: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))

    def __str__(self) -> str:
        where = f"{self.origin}: " if self.origin.file else ""
        field = f"{self.path}: " if self.path else ""
        tag = f"{self.severity}[{self.code}]" if self.code else str(self.severity)
        text = f"{where}{tag}: {field}{self.message}"
        if self.hint:
            text += f"\n    {'reason' if self.severity == Severity.ACKNOWLEDGED else 'hint'}: {self.hint}"
        return text


class DeploygenError(Exception):
    """Every error deploygen reports to a user as a message (exit status 1), never as a traceback."""


class UserError(DeploygenError):
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


# What each OS error means for a user, and what to do about it. Anything else: the OS's own words.
_OS_ERRORS = {
    errno.ENOENT: ("no such file or folder", ""),
    errno.ELOOP: ("symlink loop (following the links leads back to a link)", "point the symlink at a real file"),
    errno.EACCES: ("permission denied", "give yourself access to it and to the folders above it"),
    errno.EPERM: ("permission denied", "give yourself access to it and to the folders above it"),
    errno.EISDIR: ("it is a folder, not a file", "give the path of a file"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "check the path"),
    errno.EROFS: ("read-only file system", "work in a writable checkout"),
    errno.ENOSPC: ("no space left on the device", "free some disk space and run the command again"),
    errno.EDQUOT: ("disk quota exceeded", "free some disk space and run the command again"),
    errno.EFBIG: ("file too large for the file system or the file-size limit (ulimit -f)", "raise the limit"),
    errno.ENAMETOOLONG: ("file name too long", "use a shorter path"),
}


def os_problem(exc: OSError, shown: str, action: str) -> Problem:
    """An OS error while doing `action` ("read the profile") on `shown`, as a problem a user can act on."""
    if exc.errno == errno.ENOENT and exc.filename and os.path.islink(exc.filename):
        target = os.readlink(exc.filename)
        return Problem(
            Origin(shown),
            "",
            f"cannot {action}: broken symlink to {target!r}, which does not exist",
            "fix or remove the symlink",
        )
    reason, hint = _OS_ERRORS.get(exc.errno, (exc.strerror or type(exc).__name__, ""))
    return Problem(Origin(shown), "", f"cannot {action}: {reason}", hint)
