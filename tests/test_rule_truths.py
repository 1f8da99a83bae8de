"""Rules held to what their sources say, beyond the model they were first written for: an image pinned by its
digest, a compile-cache volume shared across architectures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from test_rules import findings

from conftest import child
from deploygen.pipeline import check
from deploygen.render import render_deployment

pytestmark = pytest.mark.usefixtures("in_repository")

COVERED: list[str] = []  # the rule codes the tests below trigger
DIGEST = "sha256:" + "c" * 64


@pytest.mark.parametrize("image", [f"lmsysorg/sglang:latest@{DIGEST}", f"lmsysorg/sglang@{DIGEST}"])
def test_an_sglang_image_pinned_by_digest_is_pinned_and_names_its_release_through_flag_check(tmp_path, image):
    refused = child(tmp_path, f"image:\n  sglang_image: {image}\n", parent="b200-prod-sglang-0.5.23")
    # Not "latest moves": the digest pins it. What is missing is the release its parser has.
    assert findings(refused, "image-pinned") == [
        f"{refused}:4:3: error[image-pinned]: image.sglang_image: image {image!r} names no SGLang release, so no "
        "catalog is known to match its parser\n"
        "    hint: set image.flag_check: parser-matches and sglang_version to the release whose parser the image "
        "has (the flags are checked against its catalog), or image.flag_check: off"
    ]
    stated = child(
        tmp_path,
        f"image:\n  sglang_image: {image}\n  flag_check: parser-matches\n",
        parent="b200-prod-sglang-0.5.23",
        name="stated",
    )
    assert findings(stated, "image-pinned") == []


def test_a_vllm_image_pinned_by_digest_takes_its_version_from_vllm_version(tmp_path):
    def pinned(image: str, name: str) -> list[str]:
        return findings(child(tmp_path, f"image:\n  vllm_image: {image}\n", parent="glm-5.1-h200-vllm", name=name),
                        "image-pinned")  # fmt: skip

    assert pinned(f"vllm/vllm-openai:latest@{DIGEST}", "latest") == []
    assert pinned(f"vllm/vllm-openai@{DIGEST}", "bare") == []
    # A tag that names another release still says the digest is not the one meant.
    [other] = pinned(f"vllm/vllm-openai:v0.19.0@{DIGEST}", "other")
    assert other.endswith(
        "error[image-pinned]: image.vllm_version: image tag 'v0.19.0' does not match vllm_version 0.33.0\n"
        "    hint: use the v0.33.0 image or set vllm_version to the image's version"
    )
    assert pinned("vllm/vllm-openai:latest", "floating")[0].endswith(
        "error[image-pinned]: image.vllm_image: image 'vllm/vllm-openai:latest' is not pinned: latest moves\n"
        "    hint: pin a release tag such as vllm/vllm-openai:v0.33.0"
    )


def _deploy_module(tmp_path: Path, profile: Path):
    """The rendered deploy.py of a profile, imported as Modal would (offline, lazy objects)."""
    path = tmp_path / f"{profile.stem}_deploy.py"
    path.write_text(render_deployment(check(str(profile)).deployment))
    spec = importlib.util.spec_from_file_location(f"deploy_{profile.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_profiles_on_two_architectures_may_share_one_compile_cache_volume(tmp_path, cli):
    b200 = check("b200-prod").deployment.profile
    shared = b200.data["volumes"]["compile_cache"]["name"]
    hopper = child(tmp_path, f"volumes:\n  compile_cache:\n    name: {shared}\n", parent="h200", name="hopper")
    result = cli("validate", str(hopper), "--strict")
    assert result.returncode == 0, result.stderr
    assert "compile_cache" not in result.stdout + result.stderr
    # Safe because each render keeps its kernels in a folder of its own architecture on the volume.
    blackwell = child(tmp_path, "description: the B200 profile as shipped\n", name="blackwell")
    hopper_module, blackwell_module = _deploy_module(tmp_path, hopper), _deploy_module(tmp_path, blackwell)
    assert hopper_module.CACHE_VOLUME == blackwell_module.CACHE_VOLUME == shared
    assert hopper_module.CACHE_DIR.startswith(f"{hopper_module.CACHE_MOUNT}/sm90-")
    assert blackwell_module.CACHE_DIR.startswith(f"{blackwell_module.CACHE_MOUNT}/sm100-")
    assert hopper_module.jit_cache_env(hopper_module.CACHE_DIR)["SGLANG_DG_CACHE_DIR"].startswith(
        hopper_module.CACHE_DIR + "/"
    )
