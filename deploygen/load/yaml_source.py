"""YAML with a file and line for every value, and none of YAML's surprises.

PyYAML composes the node graph (which carries marks); this module builds plain Python data from it,
so it can reject what a profile never needs and what hostile input uses: duplicate keys, anchors and
aliases (the billion-laughs bomb), non-string keys, huge files and deep nesting.
"""

from __future__ import annotations

import copy
import functools
import math
from pathlib import Path
from typing import Any

import yaml

from deploygen.errors import Origin, Problem, UserError

MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_NODES = 20_000
PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")

Path_ = tuple[str | int, ...]


def display_path(path: Path) -> str:
    """The path as a user typed it: relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


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


class _PythonLoader(_StrictComposer, yaml.SafeLoader):
    pass


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _Loader(_StrictComposer, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """libyaml scans and parses (fast); the composer stays in Python, so the checks above apply."""

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            _StrictComposer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

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
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None
    data, origins = _read_yaml_cached(path, display_path(path), version)
    return copy.deepcopy(data), dict(origins)


@functools.lru_cache(maxsize=256)
def _read_yaml_cached(path: Path, shown: str, version: tuple | None) -> tuple[Any, dict[Path_, Origin]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(Problem(Origin(shown), "", "file not found")) from None
    except OSError as exc:
        raise UserError(Problem(Origin(shown), "", f"cannot read the file: {exc.strerror}")) from None
    if len(raw) > MAX_FILE_BYTES:
        raise UserError(
            Problem(
                Origin(shown, 1, 1),
                "",
                f"file is {len(raw):,} bytes; a profile is at most {MAX_FILE_BYTES:,}",
                "split shared values into a base profile and use `extends`",
            )
        )
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
        self.constructor = yaml.SafeLoader("")

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
        if node.tag == "tag:yaml.org,2002:timestamp":
            # A date is never what a profile means; keep the text so the schema names the field.
            return node.value
        mark = self.origin(node)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise _located(self.file, mark.line, mark.column, exc.problem or str(exc)) from None
        except ValueError:
            # Python refuses to convert integers of more than 4300 digits.
            raise _located(self.file, mark.line, mark.column, "number is too long", "write a smaller number") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise _located(self.file, mark.line, mark.column, f"{node.value} is not a finite number", "write a number")
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

    def build_mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_origin = self.origin(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge":
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
