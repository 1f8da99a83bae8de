"""`explain`: every resolved value of a profile in schema order, as YAML spells it, with where it came from.

Then the keys a `null` removed (and the file and line of that `null`), and the values the generator
derives for SGLang's command line from other fields (and the field each comes from).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from deploygen.load import ResolvedProfile
from deploygen.load.profiles import FILE_KEYS
from deploygen.load.yaml_source import display_path
from deploygen.validate import derived
from deploygen.validate.schema import _resolve_ref, profile_schema

COLUMN = 72


def model_path_origin(profile: ResolvedProfile) -> str:
    """Where --model-path comes from: model.path, or the Hugging Face cache's snapshot folder."""
    if profile.data["model"].get("weights_layout") == "hf-cache":
        fields = ("volumes.weights.mount", "model.repo", "model.revision")
        return f"derived from {', '.join(fields)}: the snapshot folder (model.weights_layout hf-cache)"
    return f"derived from model.path ({profile.origin(('model', 'path'))})"


def yaml_scalar(value: Any) -> str:
    """A value as YAML would read it back: null, true, quoted strings that look like numbers, [a, b]."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _in_schema_order(data: dict[str, Any], schema: dict[str, Any], path: tuple) -> Iterator[tuple[tuple, Any]]:
    """(path, value) of every leaf, in the order the schema lists the properties (the profile's own order for
    free-form mappings such as `sglang` and `image.env`)."""
    schema = _resolve_ref(schema)
    properties = schema.get("properties", {})
    keys = [k for k in properties if k in data] + [k for k in data if k not in properties]
    for key in keys:
        value, here = data[key], (*path, key)
        sub = properties.get(key) or (schema.get("additionalProperties") if isinstance(schema, dict) else None)
        if isinstance(value, dict) and value:
            yield from _in_schema_order(value, sub if isinstance(sub, dict) else {}, here)
        else:
            yield here, value


def _derived(profile: ResolvedProfile) -> list[tuple[str, str, str]]:
    """(field, value, where it comes from) of what the generator writes on SGLang's command line."""

    def at(*path: str) -> str:
        return f"derived from {'.'.join(path)} ({profile.origin(path)})"

    data = profile.data
    if data.get("engine", "sglang") != "sglang":
        return []  # only SGLang's command line is rendered so far
    rows = [
        ("sglang.model-path", yaml_scalar(derived.model_dir(profile)), model_path_origin(profile)),
        ("sglang.served-model-name", yaml_scalar(data["model"]["name"]), at("model", "name")),
    ]
    if profile.flag(*derived.TP_FLAGS) is None:
        pp = "" if profile.flag(*derived.PP_FLAGS) is None else " / pp-size"
        nodes = f" x {at('gpu', 'nodes').removeprefix('derived from ')}" if data["gpu"]["nodes"] > 1 else ""
        rows.append(("sglang.tp-size", str(derived.derived_tp_size(profile)), at("gpu", "count") + nodes + pp))
    if data["gpu"]["nodes"] > 1:
        rows += [
            ("sglang.nnodes", str(data["gpu"]["nodes"]), at("gpu", "nodes")),
            ("sglang.node-rank", "each container's rank", "modal.Cluster.from_context() at start"),
            (
                "sglang.dist-init-addr",
                f"rank 0's address:{data['server']['rendezvous_port']}",
                at("server", "rendezvous_port"),
            ),
        ]
    rows += [
        ("sglang.host", "0.0.0.0", "always 0.0.0.0 inside the container"),
        ("sglang.port", str(data["server"]["port"]), at("server", "port")),
    ]
    secret = data["secrets"].get("api_key")
    key = f"$API_KEY of Modal secret {secret}" if secret else "none: the server takes requests without a key"
    rows.append(("sglang.api-key", key, at("secrets", "api_key")))
    return rows


def explain_lines(profile: ResolvedProfile) -> list[str]:
    """The lines `generate.py explain` prints for a validated profile (schema defaults applied)."""
    rows = [
        (".".join(map(str, path)), yaml_scalar(value), str(profile.origin(path)))
        for path, value in _in_schema_order(profile.data, profile_schema(), ())
        if path[0] not in FILE_KEYS
    ]
    removed = [(".".join(map(str, path)), "null", f"removed by {origin}") for path, origin in profile.removed.items()]
    derived_rows = _derived(profile)
    # Origins line up in one column; a long value (a description) only pushes its own comment right.
    width = min(COLUMN, max(len(f"{field}: {value}") for field, value, _ in [*rows, *removed, *derived_rows]))
    lines = [f"# {profile.name}: {' -> '.join(display_path(p) for p in profile.sources)}"]
    for title, group in (("", rows), ("# removed by `null`", removed), ("# derived by deploygen", derived_rows)):
        if not group:
            continue
        if title:
            lines.append(title)
        lines += [f"{f'{field}: {value}':<{width}}  # {where}" for field, value, where in group]
    return lines
