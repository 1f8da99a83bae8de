"""YAML with a file and line for every value, and none of YAML's surprises.

PyYAML composes the node graph (which carries marks); this module builds plain Python data from it,
so it can reject what a profile never needs and what hostile input uses: duplicate keys, anchors and
aliases (the billion-laughs bomb), non-string keys, huge files and deep nesting.

Scalars are read as YAML 1.2 reads them (its core schema), as the editor's yaml-language-server does
with the same JSON Schema: `yes`, `on` and `1:30` are strings, `1e3` is a number. A plain `010`, octal
to YAML 1.1 tools and decimal to YAML 1.2, is refused as ambiguous.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from deploygen.errors import Origin, Problem, UserError, os_problem

MAX_FILE_BYTES = 256 * 1024
# The largest integer a JSON number (the editor's view of the file) holds exactly.
MAX_INTEGER = 2**53 - 1
MAX_DEPTH = 32
MAX_NODES = 20_000
PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")

Path_ = tuple[str | int, ...]


def display_path(path: Path) -> str:
    """The path as a user typed it: relative to the working directory when it is inside it.

    Lexical first, so a symlink is shown as itself; never `Path.resolve()`, which raises on a symlink loop.
    """
    return _display_path(str(path), os.getcwd())


@functools.lru_cache(maxsize=4096)
def _display_path(path: str, cwd: str) -> str:
    for absolute in (os.path.abspath, os.path.realpath):
        try:
            return str(Path(absolute(path)).relative_to(absolute(cwd)))
        except ValueError:
            continue
    return path


class _RejectedYAML(yaml.MarkedYAMLError):
    """Valid YAML that profiles reject on purpose; the message already says what to do instead."""


class _StrictComposer(yaml.composer.Composer):
    depth = 0

    def compose_node(self, parent, index):  # noqa: ANN001, ANN201 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            mark = event.start_mark
            raise _RejectedYAML(
                problem="YAML aliases (*name) are not allowed in profiles; use `extends` to share values",
                problem_mark=mark,
            )
        # PyYAML composes recursively: stop deep nesting here, before Python's recursion limit does.
        if self.depth >= MAX_DEPTH:
            raise _RejectedYAML(
                problem=f"profile is nested more than {MAX_DEPTH} levels deep; simplify it",
                problem_mark=self.peek_event().start_mark,
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _CoreSchemaResolver(yaml.resolver.BaseResolver):
    """YAML 1.2's core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution), in PyYAML's terms."""


BOOL, INT, FLOAT, NULL, STR = (f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "null", "str"))
CORE_SCHEMA = {
    BOOL: re.compile(r"true|True|TRUE|false|False|FALSE"),
    INT: re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"),
    FLOAT: re.compile(
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    ),
    NULL: re.compile(r"~|null|Null|NULL|"),
}
# First characters of each; an integer is tried before a float, so `10` is an integer.
for _tag, _first in ((BOOL, "tTfF"), (INT, "-+0123456789"), (FLOAT, "-+0123456789."), (NULL, ["~", "n", "N", ""])):
    _CoreSchemaResolver.add_implicit_resolver(_tag, re.compile(rf"^(?:{CORE_SCHEMA[_tag].pattern})$"), list(_first))


class _PythonLoader(_StrictComposer, yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _CoreSchemaResolver):
    def __init__(self, stream: str):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _StrictComposer.__init__(self)
        _CoreSchemaResolver.__init__(self)


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _Loader(_StrictComposer, CParser, _CoreSchemaResolver):
        """libyaml scans and parses (fast); the composer stays in Python, so the checks above apply."""

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            _StrictComposer.__init__(self)
            _CoreSchemaResolver.__init__(self)

else:
    _Loader = _PythonLoader


def _compose(text: str) -> yaml.Node | None:
    """Compose with libyaml; on a syntax error, let the pure-Python parser report it, since its
    messages point at the offending character rather than at the construct around it."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except _RejectedYAML:
        raise
    except yaml.YAMLError:
        if _Loader is _PythonLoader:
            raise
        return yaml.compose(text, Loader=_PythonLoader)


def _located(file: str, line: int, column: int, message: str, hint: str = "", path: str = "") -> UserError:
    return UserError(Problem(Origin(file, line, column), path, message, hint))


def _char(character: int | str) -> str:
    code = ord(character) if isinstance(character, str) else character
    return f"U+{code:04X}"


def read_yaml(path: Path) -> tuple[Any, dict[Path_, Origin]]:
    """Parse one YAML file into data plus the origin of every key and list item.

    Callers get their own copy; the parse itself is cached per file version, since every profile
    re-reads the shared base.
    """
    shown = display_path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise UserError(os_problem(exc, shown, "read the file")) from None
    _check_readable_size(info, shown)
    version = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_ctime_ns, info.st_size)
    data, origins = _read_yaml_cached(path, shown, version)
    return copy.deepcopy(data), dict(origins)


def _check_readable_size(info: os.stat_result, shown: str) -> None:
    """A regular file of at most MAX_FILE_BYTES: checked on the file's metadata, before reading it."""
    if stat.S_ISDIR(info.st_mode):
        raise UserError(Problem(Origin(shown), "", "cannot read the file: it is a folder", "give the path of a file"))
    if not stat.S_ISREG(info.st_mode):
        raise UserError(
            Problem(Origin(shown), "", "cannot read the file: not a regular file (a pipe, socket or device)")
        )
    if info.st_size > MAX_FILE_BYTES:
        raise _too_big(shown, info.st_size)


def _too_big(shown: str, size: int) -> UserError:
    return UserError(
        Problem(
            Origin(shown, 1, 1),
            "",
            f"file is {size:,} bytes; a profile is at most {MAX_FILE_BYTES:,}",
            "split shared values into a base profile and use `extends`",
        )
    )


def _read_bounded(path: Path, shown: str) -> bytes:
    """At most MAX_FILE_BYTES + 1 bytes; opened non-blocking, so a file swapped for a pipe never hangs."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            _check_readable_size(os.fstat(handle.fileno()), shown)
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UserError(os_problem(exc, shown, "read the file")) from None
    if len(raw) > MAX_FILE_BYTES:
        raise _too_big(shown, len(raw))
    return raw


@functools.lru_cache(maxsize=4096)
def _read_yaml_cached(path: Path, shown: str, version: tuple) -> tuple[Any, dict[Path_, Origin]]:
    raw = _read_bounded(path, shown)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _located(
            shown, line, column, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})", "save the file as UTF-8 text"
        ) from None
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or "invalid YAML"
        if exc.context:
            message = f"{exc.context}; {message}"
        hint = "" if isinstance(exc, _RejectedYAML) else "fix the YAML syntax"
        raise _located(shown, mark.line + 1, mark.column + 1, message, hint) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise _located(
            shown, line, column, f"character {_char(exc.character)} is not allowed in YAML", "remove binary content"
        ) from None
    except yaml.YAMLError as exc:
        raise UserError(Problem(Origin(shown), "", f"invalid YAML: {exc}")) from None
    builder = _Builder(shown)
    data = None if node is None else builder.build(node, (), 0)
    if data is None:
        raise _located(shown, 1, 1, "file is empty", "a profile is a mapping that starts with `schema_version: 1`")
    return data, builder.origins


def _is_text(value: str) -> bool:
    return "\0" not in value and not any("\ud800" <= c <= "\udfff" for c in value)


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.origins: dict[Path_, Origin] = {}
        self.nodes = 0

    def origin(self, node: yaml.Node) -> Origin:
        return Origin(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            mark = self.origin(node)
            raise _located(
                self.file, mark.line, mark.column, "profile is too large or too deeply nested", "simplify it"
            )
        if node.tag not in PLAIN_COLLECTION_TAGS and isinstance(node, yaml.CollectionNode):
            # `!!set {a}`, `!!omap`, `!!python/object/apply:...`: a profile's lists and mappings are plain.
            mark = self.origin(node)
            raise _located(self.file, mark.line, mark.column, f"YAML tag {node.tag!r} is not allowed in profiles")
        if isinstance(node, yaml.MappingNode):
            return self.build_mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.origins[(*path, index)] = self.origin(item)
                items.append(self.build(item, (*path, index), depth + 1))
            return items
        mark = self.origin(node)
        value = self.scalar(node, mark)
        if isinstance(value, str) and not _is_text(value):
            raise _located(
                self.file,
                mark.line,
                mark.column,
                "a NUL character or an unpaired surrogate escape cannot reach a command line, an environment "
                "variable or a file",
                "remove the \\0 or \\uD800-\\uDFFF escape",
            )
        return value

    def scalar(self, node: yaml.ScalarNode, mark: Origin) -> Any:
        """A scalar of the core schema: implicit (resolved as YAML 1.2 does) or with an explicit !!tag."""
        text, tag = node.value, node.tag
        if tag == STR:
            return text
        if tag not in CORE_SCHEMA:
            # `!!binary`, `!!timestamp`, `!!python/name:...`: never what a profile means.
            raise _located(self.file, mark.line, mark.column, f"YAML tag {tag!r} is not allowed in profiles")
        if not CORE_SCHEMA[tag].fullmatch(text) and not (tag == FLOAT and CORE_SCHEMA[INT].fullmatch(text)):
            raise _located(self.file, mark.line, mark.column, f"{text!r} is not a YAML 1.2 {tag.rsplit(':', 1)[1]}")
        if tag == NULL:
            return None
        if tag == BOOL:
            return text.lower() == "true"
        if tag == INT:
            return self.integer(text, mark)
        number = float(text) if text.lstrip("+-").lower() not in (".inf", ".nan") else math.inf
        if not math.isfinite(number):
            raise _located(self.file, mark.line, mark.column, f"{text} is not a finite number", "write a number")
        return number

    def integer(self, text: str, mark: Origin) -> int:
        digits = text.lstrip("+-")
        if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
            raise _located(
                self.file,
                mark.line,
                mark.column,
                f"{text} is ambiguous: YAML 1.1 tools read a leading 0 as octal, YAML 1.2 as decimal",
                f"write {int(digits) if len(digits) < 20 else 'it'} without the leading zeros, or quote it",
            )
        base = {"0o": 8, "0x": 16}.get(digits[:2], 10)
        # Bounded before converting: a 5,000-digit number is refused without the work of parsing it.
        if len(digits) > 20 or abs(value := int(digits[2:] if base != 10 else digits, base)) > MAX_INTEGER:
            raise _located(
                self.file,
                mark.line,
                mark.column,
                f"number is too large: profiles take integers up to {MAX_INTEGER:,} (2^53 - 1)",
                "write a smaller number",
            )
        return -value if text.startswith("-") else value

    def build_mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_origin = self.origin(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge" or (key_node.value == "<<" and not key_node.style):
                raise _located(
                    self.file,
                    key_origin.line,
                    key_origin.column,
                    "YAML merge keys (<<) are not allowed",
                    "use `extends` to share values",
                )
            if not isinstance(key_node, yaml.ScalarNode):
                raise _located(self.file, key_origin.line, key_origin.column, "a key must be a plain string")
            key = key_node.value
            shown_path = ".".join(str(p) for p in (*path, key))
            if key in result:
                first = self.origins[(*path, key)]
                raise _located(
                    self.file,
                    key_origin.line,
                    key_origin.column,
                    f"duplicate key {key!r} (first set at line {first.line})",
                    "remove one of them",
                    shown_path,
                )
            self.origins[(*path, key)] = key_origin
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result
