"""An image that names no SGLang release: the profile states which release's parser it has, or turns the
flag check off; either way validate and the render's header say so, never a silent pass."""

from __future__ import annotations

from pathlib import Path

from conftest import child
from deploygen.pipeline import check
from deploygen.render.view import build_view

DIGEST = "sha256:" + "a" * 64
NIGHTLY = f"lmsysorg/sglang:nightly-dev-cu13-20261120@{DIGEST}"
PARENT = "b200-prod-sglang-0.5.23"
COVERED = ["flag-check-parser-matches", "flag-check-off"]  # the rules these tests trigger


def test_an_image_that_names_no_release_is_refused_without_a_statement(tmp_path: Path, cli) -> None:
    path = child(tmp_path, f"image:\n  sglang_image: {NIGHTLY}\n", parent=PARENT)
    result = cli("validate", str(path))
    assert result.returncode == 1
    assert (
        f"{path}:4:3: error[image-pinned]: image.sglang_image: image {NIGHTLY!r} names no SGLang release, so no "
        "catalog is known to match its parser\n"
        "    hint: set image.flag_check: parser-matches and sglang_version to the release whose parser the image "
        "has (the flags are checked against its catalog), or image.flag_check: off\n"
    ) in result.stderr


def test_parser_matches_checks_the_flags_against_that_release_and_says_so(tmp_path: Path, cli) -> None:
    path = child(tmp_path, f"image:\n  sglang_image: {NIGHTLY}\n  flag_check: parser-matches\n", parent=PARENT)
    result = cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert (
        f"{path}:5:3: info[flag-check-parser-matches]: image.flag_check: image {NIGHTLY!r} names no SGLang "
        "release: its flags are checked against SGLang 0.5.23's catalog, whose parser the profile says it has\n"
    ) in result.stdout + result.stderr
    docstring = build_view(check(str(path)).deployment).docstring
    assert (
        "The image names no SGLang release; its flags were checked against SGLang 0.5.23's catalog,\n"
        "whose parser the profile says it has (image.flag_check: parser-matches).\n"
    ) in docstring
    # Checked for real: a flag 0.5.23 does not have is still an error.
    wrong = child(
        tmp_path,
        f"image:\n  sglang_image: {NIGHTLY}\n  flag_check: parser-matches\nsglang:\n  nsa-decode-backend: trtllm\n",
        parent=PARENT,
        name="wrong",
    )
    assert "error[sglang-unknown-flag]: sglang.nsa-decode-backend: SGLang 0.5.23 has no option" in (
        cli("validate", str(wrong)).stderr
    )


def test_parser_matches_on_an_image_that_names_a_release_is_an_error(tmp_path: Path, cli) -> None:
    path = child(tmp_path, "image:\n  flag_check: parser-matches\n", parent=PARENT)
    result = cli("validate", str(path))
    assert result.returncode == 1
    assert (
        f"{path}:4:3: error[image-pinned]: image.flag_check: image 'lmsysorg/sglang:v0.5.23-cu130' names SGLang "
        "0.5.23; parser-matches is for an image that names no release\n"
        "    hint: remove image.flag_check: the flags are checked against the release the tag names\n"
    ) in result.stderr


def test_flag_check_off_warns_every_time_and_writes_unknown_flags_as_given(tmp_path: Path, cli) -> None:
    body = f"image:\n  sglang_image: lmsysorg/sglang@{DIGEST}\n  flag_check: off\nsglang:\n  brand-new-flag: 3\n"
    path = child(tmp_path, body, parent=PARENT)
    result = cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert f"{path}:7:3: warning[sglang-unknown-flag]: sglang.brand-new-flag: SGLang 0.5.23 has no option" in output
    assert (
        f"{path}:5:3: warning[flag-check-off]: image.flag_check: the SGLang flags are not checked "
        "(image.flag_check: off): a wrong or renamed flag fails only when the container starts\n"
    ) in output
    assert cli("validate", "--strict", str(path)).returncode == 1
    checked = check(str(path))
    assert checked.deployment.argv[-2:] == ["--brand-new-flag", "3"]
    assert "SGLang flags NOT checked against any catalog (image.flag_check: off).\n" in (
        build_view(checked.deployment).docstring
    )
