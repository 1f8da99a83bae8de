"""Hostile and broken input: a located error, exit 1, no traceback, nothing written; and any accepted string
reaches deploy.py as a literal that reads back to itself."""

from __future__ import annotations

import ast
import shutil

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import ROOT, run_cli
from deploygen.load import available_profiles, load_profile
from deploygen.pipeline import check_profile
from deploygen.render import render_deployment
from deploygen.render.literals import py_literal
from deploygen.secrets import looks_secret

GENERATED = ROOT / "generated"
B200 = f"extends: {ROOT}/profiles/b200-prod.yaml\n"
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{level}: &{level} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, level in zip("abcdefgh", "bcdefghi", strict=True)
)
# (case, file content, the located error a user sees after the file name)
CASES = [
    (
        "malformed",
        "a: [1, 2\n",
        ":2:1: error: while parsing a flow sequence; expected ',' or ']', but got '<stream end>'",
    ),
    ("tab-indent", "a:\n\tb: 1\n", ":2:1: error: while scanning for the next token; found character '\\t' that"),
    ("empty", "", ":1:1: error: file is empty\n    hint: a profile is a mapping that starts with `schema_version: 1`"),
    ("comment-only", "# nothing\n", ":1:1: error: file is empty"),
    ("list", "- schema_version: 1\n", ":1:1: error: a profile is a mapping, not a list"),
    ("scalar", "schema_version 1\n", ":1:1: error: a profile is a mapping, not a string"),
    (
        "duplicate-key",
        "schema_version: 1\nschema_version: 1\n",
        ":2:1: error: schema_version: duplicate key 'schema_version' (first set at line 1)\n"
        "    hint: remove one of them",
    ),
    (
        "latin-1",
        b"schema_version: 1\ndescription: caf\xe9\n",
        ":2:17: error: not valid UTF-8 (byte 0xe9)\n    hint: save the file as UTF-8 text",
    ),
    ("binary", bytes(range(256)) * 4, ":2:118: error: not valid UTF-8 (byte 0x80)"),
    (
        "control-chars",
        b"schema_version: 1\n\x00\x01\x02\x03",
        ":2:1: error: character U+0000 is not allowed in YAML\n    hint: remove binary content",
    ),
    (
        "alias-bomb",
        BOMB,
        ":2:8: error: YAML aliases (*name) are not allowed in profiles; use `extends` to share values\n",
    ),
    ("merge-key", "base: {a: 1}\nchild:\n  <<: {a: 2}\n", ":3:3: error: YAML merge keys (<<) are not allowed"),
    ("deep", "a: " + "[" * 10_000 + "]" * 10_000 + "\n", ":1:35: error: profile is nested more than 32 levels deep"),
    (
        "one-megabyte",
        "# " + "x" * (1024 * 1024 - 3) + "\n",
        ":1:1: error: file is 1,048,576 bytes; a profile is at most 262,144",
    ),
    (
        "python-tag",
        "description: !!python/object/apply:os.system [echo pwned]\n",
        ":1:14: error: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed in profiles",
    ),
    (
        "python-scalar-tag",
        "description: !!python/name:os.system ''\n",
        ":1:14: error: YAML tag 'tag:yaml.org,2002:python/name:os.system' is not allowed in profiles",
    ),
    ("nan", B200 + "lifecycle:\n  download:\n    cpu: .nan\n", ":4:10: error: .nan is not a finite number"),
    (
        "huge-int",
        B200 + "gpu:\n  count: " + "9" * 5000 + "\n",
        ":3:10: error: number is too large: profiles take integers up to 9,007,199,254,740,991 (2^53 - 1)",
    ),
    (
        "nul-escape",
        B200 + 'description: "GLM\\0"\n',
        ":2:14: error: a NUL character or an unpaired surrogate escape cannot reach a command line",
    ),
    (
        "surrogate-escape",
        B200 + 'image:\n  env:\n    NOTE: "\\ud800"\n',
        ":4:11: error: a NUL character or an unpaired surrogate escape cannot reach a command line",
    ),
    ("wrong-type", B200 + 'gpu:\n  count: "8"\n', ":3:3: error: gpu.count: '8' is a string, expected integer"),
    (
        "wrong-type-flag",
        B200 + "sglang:\n  context-length: 2026-11-01\n",
        ":3:3: error[sglang-flag-value]: sglang.context-length: --context-length takes an integer number of tokens, "
        "not '2026-11-01'",
    ),
    (
        "out-of-range",
        B200 + "gpu:\n  count: 9\n",
        ":3:3: error: gpu.count: 9 is greater than the maximum of 8\n"
        "    hint: GPUs per container; Modal allows 1 to 8 (A10: 4).",
    ),
    (
        "below-range",
        B200 + "scaling:\n  scaledown_window: 1\n",
        ":3:3: error: scaling.scaledown_window: 1 is less than the minimum of 2",
    ),
    (
        "trailing-newline-name",
        B200 + 'app:\n  name: "glm\\n"\n',
        ":3:3: error: app.name: 'glm\\n' is not a valid value",
    ),
    (
        "unknown-top-key",
        B200 + "scalng:\n  min_containers: 1\n",
        ":2:1: error: scalng: unknown key 'scalng'\n    hint: did you mean 'scaling'?",
    ),
    (
        "unknown-section-key",
        B200 + "scaling:\n  min_container: 1\n",
        ":3:3: error: scaling.min_container: unknown key 'min_container'\n    hint: did you mean 'min_containers'?",
    ),
    (
        "unknown-nested-key",
        B200 + "lifecycle:\n  health:\n    timout: 60\n",
        ":4:5: error: lifecycle.health.timout: unknown key 'timout'\n    hint: did you mean 'timeout'?",
    ),
    (
        "unknown-nested-key-no-match",
        B200 + "lifecycle:\n  health:\n    x: 1\n",
        ":4:5: error: lifecycle.health.x: unknown key 'x'\n"
        "    hint: allowed keys: timeout, poll_interval, max_poll_interval",
    ),
    (
        "missing-parent",
        "schema_version: 1\nextends: b200-prd\n",
        ":2:1: error: extends: no profile named 'b200-prd'\n"
        f"    hint: did you mean 'b200-prod'? available profiles: {', '.join(available_profiles())}",
    ),
    (
        "missing-parent-file",
        "extends: [../nowhere.yaml]\n",
        ":1:11: error: extends: no file '../nowhere.yaml'\n"
        f"    hint: available profiles: {', '.join(available_profiles())}",
    ),
]


@pytest.fixture
def nothing_left_in_generated():
    """The cases use names no profile has: a render of one would land in generated/<name>/."""
    stems = []
    yield stems
    left = [stem for stem in stems if (GENERATED / stem).exists()]
    for stem in left:
        shutil.rmtree(GENERATED / stem)
    assert left == [], "a rejected profile was written"


def assert_rejected(path, expected: str, prefix: bool = True) -> None:
    """`validate` and `render` both exit 1 with the located error (after the file name, when `prefix`)."""
    for command in ("validate", "render"):
        result = run_cli(command, str(path))
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert f"{path if prefix else ''}{expected}" in result.stderr, (command, result.stderr)
        assert "Traceback" not in result.stderr
        assert "written" not in result.stdout


@pytest.mark.parametrize(("case", "content", "expected"), CASES, ids=[case for case, _, _ in CASES])
def test_bad_input_is_a_located_error_with_nothing_written(
    tmp_path, nothing_left_in_generated, case, content, expected
):
    path = tmp_path / f"hostile-{case}.yaml"
    nothing_left_in_generated.append(path.stem)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert_rejected(path, expected)
    assert not (GENERATED / path.stem).exists()


def test_an_extends_cycle_is_a_located_error_with_the_chain(tmp_path, nothing_left_in_generated):
    first, second = tmp_path / "hostile-cycle-a.yaml", tmp_path / "hostile-cycle-b.yaml"
    nothing_left_in_generated += [first.stem, second.stem]
    first.write_text(f"schema_version: 1\nextends: {second.name}\n")
    second.write_text(f"# the other half\nextends: [{first.name}]\n")
    # The `extends` entry that closes the cycle is blamed: a list item, or the key of a single name.
    assert_rejected(
        first,
        f"{second}:2:11: error: extends: `extends` cycle: {first} -> {second} -> {first}\n"
        "    hint: remove one of the `extends` entries in the cycle\n",
        prefix=False,
    )
    assert_rejected(
        second, f"{first}:2:1: error: extends: `extends` cycle: {second} -> {first} -> {second}\n", prefix=False
    )


def test_a_profile_extending_itself_is_a_cycle(tmp_path, nothing_left_in_generated):
    path = tmp_path / "hostile-self.yaml"
    nothing_left_in_generated.append(path.stem)
    path.write_text("extends: hostile-self.yaml\n")
    assert_rejected(path, f":1:1: error: extends: `extends` cycle: {path} -> {path}\n")


# Text a profile can carry: the loader refuses NUL and unpaired surrogates (they reach no file or process).
TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\0")
# Environment values take no control characters (Modal writes them as ENV lines of the image).
NO_CONTROLS = st.characters(exclude_categories=("Cs", "Cc"))


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_every_string_has_a_literal_that_reads_back_to_it(value):
    assert ast.literal_eval(py_literal(value)) == value
    assert ast.literal_eval(py_literal(value, block=True)) == value


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.text(TEXT), st.one_of(st.text(TEXT), st.integers(), st.floats(allow_nan=False, allow_infinity=False))
    )
)
def test_nested_values_have_literals_that_read_back(value):
    assert ast.literal_eval(py_literal(value)) == value


def constant(tree: ast.Module, name: str):
    """The value of a module-level `NAME = literal` in the rendered file."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"no constant {name}")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    description=st.text(TEXT, min_size=1, max_size=500),
    env_value=st.text(NO_CONTROLS, max_size=200),
    model_name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}", fullmatch=True),
    url=st.from_regex(
        r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s\x00-\x1f\x7f-\x9f]*)?", fullmatch=True, alphabet=TEXT
    ),
)
def test_accepted_strings_reach_the_rendered_file_exactly(description, env_value, model_name, url):
    assume(not any(looks_secret(s) for s in (description, env_value, url, model_name)))
    profile = load_profile("b200-business-hours")
    profile.data["description"] = description
    profile.data["image"]["env"]["DEPLOYGEN_TEST_VALUE"] = env_value
    profile.data["model"]["name"] = model_name
    # The ping keep-alive renders the URL; its proxy auth token comes from a named Modal secret.
    profile.data["keepalive"]["mode"] = "ping"
    profile.data["secrets"]["proxy_auth"] = "proxy-token"
    profile.data["keepalive"]["url"] = url
    tree = ast.parse(render_deployment(check_profile(profile).deployment))
    assert ast.get_docstring(tree, clean=False).startswith(f"{description}\n\nGenerated by deploygen from ")
    assert constant(tree, "ENGINE_ENV")["DEPLOYGEN_TEST_VALUE"] == env_value
    assert constant(tree, "MODEL_NAME") == model_name
    assert constant(tree, "DEPLOYED_URL") == url
