"""Loading profiles: `extends`, deep merge, and the origin of every value."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT
from deploygen.errors import UserError
from deploygen.load import load_profile


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_mappings_merge_and_lists_and_scalars_replace(tmp_path):
    write(tmp_path / "base.yaml", "a:\n  x: 1\n  y: [1, 2]\n  keep: true\nlist: [1, 2, 3]\n")
    child = write(tmp_path / "child.yaml", "extends: base.yaml\na:\n  x: 2\n  y: [9]\nlist: []\n")
    profile = load_profile(str(child))
    assert profile.data == {"a": {"x": 2, "y": [9], "keep": True}, "list": []}


def test_every_value_remembers_the_file_and_line_that_set_it(tmp_path):
    write(tmp_path / "base.yaml", "a:\n  x: 1\n  y: [1, 2]\n")
    child = write(tmp_path / "child.yaml", "extends: base.yaml\n\na:\n  y: [3]\n")
    profile = load_profile(str(child))
    assert (profile.origin(("a", "x")).file, profile.origin(("a", "x")).line) == (str(tmp_path / "base.yaml"), 2)
    assert (profile.origin(("a", "y")).file, profile.origin(("a", "y")).line) == (str(tmp_path / "child.yaml"), 4)
    assert profile.origin(("a", "y", 0)).line == 4
    assert ("a", "y", 1) not in profile.origins


def test_parents_apply_in_order_then_the_child(tmp_path):
    write(tmp_path / "one.yaml", "v: 1\nonly_one: true\n")
    write(tmp_path / "two.yaml", "v: 2\n")
    child = write(tmp_path / "child.yaml", "extends: [one.yaml, two.yaml]\n")
    profile = load_profile(str(child))
    assert profile.data == {"v": 2, "only_one": True}
    assert [p.name for p in profile.sources] == ["one.yaml", "two.yaml", "child.yaml"]


def test_extends_by_profile_name_reads_profiles_folder():
    profile = load_profile("b200-prod")
    assert [p.relative_to(ROOT).as_posix() for p in profile.sources] == [
        "profiles/glm-5.1-base.yaml",
        "profiles/b200-prod.yaml",
    ]
    assert profile.data["sglang"]["mem-fraction-static"] == 0.88
    assert profile.data["sglang"]["kv-cache-dtype"] == "bfloat16"


def test_a_cycle_is_an_error_that_shows_the_chain(tmp_path):
    write(tmp_path / "a.yaml", "extends: b.yaml\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(UserError) as caught:
        load_profile(str(tmp_path / "a.yaml"))
    assert "`extends` cycle:" in str(caught.value)
    assert "a.yaml -> " in str(caught.value) and "b.yaml -> " in str(caught.value)


def test_an_unknown_parent_lists_the_available_profiles(tmp_path):
    child = write(tmp_path / "child.yaml", "schema_version: 1\nextends: b200-prd\n")
    with pytest.raises(UserError) as caught:
        load_profile(str(child))
    message = str(caught.value)
    assert f"{child}:2:1: error: extends: no profile named 'b200-prd'" in message
    assert "did you mean 'b200-prod'?" in message
    assert "available profiles: b200-always-on, b200-business-hours, b200-prod" in message


def test_abstract_is_not_inherited(tmp_path):
    write(tmp_path / "base.yaml", "abstract: true\nv: 1\n")
    child = write(tmp_path / "child.yaml", "extends: base.yaml\n")
    assert load_profile(str(tmp_path / "base.yaml")).abstract
    assert not load_profile(str(child)).abstract


def test_the_comment_block_above_a_key_is_kept_with_its_file_and_line(tmp_path):
    path = write(
        tmp_path / "p.yaml",
        "# yaml-language-server: $schema=x\n"
        "sglang:\n"
        "  # Why BF16: FP8 KV loses accuracy.\n"
        "  #\n"
        "  #   see the issue\n"
        "  kv-cache-dtype: bfloat16\n"
        "  # separated by a blank line: not this key's\n"
        "\n"
        "  mem-fraction-static: 0.8\n"
        "  env: {A: 1}\n",
    )
    profile = load_profile(str(path))
    comment = profile.comments[("sglang", "kv-cache-dtype")]
    assert comment.lines == ("Why BF16: FP8 KV loses accuracy.", "", "  see the issue")
    assert (comment.origin.file, comment.origin.line, comment.origin.column) == (str(path), 3, 3)
    assert profile.comment("sglang", "mem-fraction-static") == ()
    assert profile.comment("sglang") == ()  # the modeline is the file's, not a value's
    assert profile.comment("sglang", "env", "A") == ()  # a flow mapping's key does not start its line


def test_a_hash_line_inside_a_block_scalar_is_text_not_a_comment(tmp_path):
    path = write(tmp_path / "p.yaml", "description: |\n  text\n  # part of the text\nnext: 1\n")
    assert load_profile(str(path)).comment("next") == ()
    path = write(tmp_path / "q.yaml", "description: |\n  text\n\n# why next\nnext: 1\n")
    assert load_profile(str(path)).comment("next") == ("why next",)


def test_a_child_that_replaces_a_value_replaces_its_comment(tmp_path):
    write(tmp_path / "base.yaml", "a:\n  # the base's reason\n  x: 1\n  # kept\n  y: 2\n")
    child = write(tmp_path / "child.yaml", "extends: base.yaml\na:\n  x: 3\n")
    profile = load_profile(str(child))
    assert profile.comment("a", "x") == ()
    assert profile.comment("a", "y") == ("kept",)
    child = write(tmp_path / "child.yaml", "extends: base.yaml\na:\n  # the child's reason\n  x: 3\n")
    profile = load_profile(str(child))
    assert profile.comment("a", "x") == ("the child's reason",)
    assert profile.comments[("a", "x")].origin.file == str(child)
