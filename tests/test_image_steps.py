"""image.steps: the serving image's build steps as Modal's examples write them, pinned and validated; the
render imported with the real modal, its image's build steps read back from Modal's own objects."""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys

import pytest

from conftest import ROOT, run_cli

# Codes with a test below that triggers them (tests/test_rules.py checks every rule has one).
COVERED = ["image-step", "package-pin", "local-file"]


def profile(tmp_path, steps: str, name: str = "p") -> str:
    """A child of the smoke profile whose image.steps are `steps` (YAML list items, from line 5)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"schema_version: 1\nextends: {ROOT / 'profiles' / 'smoke.yaml'}\nimage:\n  steps:\n{steps}")
    return str(path)


def refused(tmp_path, steps: str) -> str:
    """validate's and render's stderr for a refused profile, after checking both exit 1 and write nothing."""
    path = profile(tmp_path, steps)
    result = run_cli("validate", path)
    assert (result.returncode, result.stdout) == (1, "")
    rendered = run_cli("render", path, "--out", str(tmp_path / "out"))
    assert (rendered.returncode, rendered.stderr) == (1, result.stderr)
    assert not (tmp_path / "out").exists()
    assert "Traceback" not in result.stderr
    return result.stderr


def test_an_unpinned_or_ranged_pip_package_is_refused_with_its_name_and_the_fix(tmp_path):
    stderr = refused(tmp_path, '    - uv_pip_install: ["sgl-kernel==0.3.21", transformers>=4.50, torch]\n')
    path = tmp_path / "p.yaml"
    assert stderr == (
        f"{path}:5:46: error[package-pin]: image.steps.0.uv_pip_install.1: package 'transformers' is not pinned "
        "to one version (>=4.50): a rebuild would install whatever is newest that day\n"
        "    hint: pin one version: transformers==VERSION (`pip index versions transformers` lists them)\n"
        f"{path}:5:66: error[package-pin]: image.steps.0.uv_pip_install.2: package 'torch' is not pinned "
        "(no version): a rebuild would install whatever is newest that day\n"
        "    hint: pin one version: torch==VERSION (`pip index versions torch` lists them)\n"
    )


@pytest.mark.parametrize(
    ("item", "message", "hint"),
    [
        (
            "y==1.*",
            "package 'y' is not pinned to one version (==1.*): a rebuild would install whatever is newest that day",
            "pin one version: y==VERSION (`pip index versions y` lists them)",
        ),
        (
            "x @ https://example.com/x.whl",
            "package 'x' comes from 'https://example.com/x.whl', which can change under the same address",
            "pin a released version (x==VERSION) or a git commit (x @ git+https://...@<40-hex commit>)",
        ),
        ("--pre", "'--pre' is not a pip requirement", "write NAME==VERSION, e.g. transformers==4.57.1"),
    ],
)
def test_a_wildcard_a_url_or_an_option_is_not_a_pinned_pip_package(tmp_path, item, message, hint):
    stderr = refused(tmp_path, f'    - pip_install: ["{item}"]\n')
    assert (
        stderr
        == f"{tmp_path / 'p.yaml'}:5:21: error[package-pin]: image.steps.0.pip_install.0: {message}\n    hint: {hint}\n"
    )


def test_an_unpinned_apt_package_is_refused(tmp_path):
    stderr = refused(tmp_path, '    - apt_install: [git, "curl=7.81.0-1ubuntu1.16"]\n')
    assert stderr == (
        f"{tmp_path / 'p.yaml'}:5:21: error[package-pin]: image.steps.0.apt_install.0: apt package 'git' is not "
        "pinned: a rebuild would install whatever version the mirror has that day\n"
        "    hint: pin it as git=VERSION (`apt-cache policy git` in the image shows the candidate version)\n"
    )


def test_a_step_names_exactly_one_kind(tmp_path):
    stderr = refused(tmp_path, "    - {run_commands: [ls], apt_install: [a=1]}\n")
    assert stderr == (
        f"{tmp_path / 'p.yaml'}:5:7: error[image-step]: image.steps.0: a build step names 2 kinds "
        "(run_commands, apt_install); each step is one of Modal's Image methods\n"
        "    hint: write one step per list item, each with one of: uv_pip_install, pip_install, apt_install, "
        "run_commands, add_local_file, add_local_dir\n"
    )


def test_a_command_that_uses_a_file_added_only_later_is_refused(tmp_path):
    (tmp_path / "fix.patch").write_text("x\n")
    stderr = refused(
        tmp_path,
        '    - run_commands: ["cd /sgl-workspace/sglang && patch -p1 < /patches/fix.patch"]\n'
        "    - add_local_file: {local: fix.patch, remote: /patches/fix.patch}\n",
    )
    assert stderr == (
        f"{tmp_path / 'p.yaml'}:5:22: error[image-step]: image.steps.0.run_commands.0: this command uses "
        "/patches/fix.patch, which step 1 (add_local_file) adds only after it\n"
        "    hint: move the add_local_file of fix.patch above this step: steps run in the order written\n"
    )


def test_an_index_url_belongs_to_a_pip_step(tmp_path):
    stderr = refused(
        tmp_path, "    - apt_install: [patch=2.7.6-7build3]\n      extra_index_url: https://example.com/simple\n"
    )
    assert stderr == (
        f"{tmp_path / 'p.yaml'}:6:7: error[image-step]: image.steps.0.extra_index_url: extra_index_url applies to "
        "uv_pip_install and pip_install, not to apt_install\n"
        "    hint: move extra_index_url to the pip step that needs it\n"
    )


def test_a_local_file_that_does_not_exist_is_refused_at_its_line(tmp_path):
    stderr = refused(tmp_path, "    - add_local_file: {local: patches/fix.patch, remote: /patches/fix.patch}\n")
    assert stderr == (
        f"{tmp_path / 'p.yaml'}:5:24: error[local-file]: image.steps.0.add_local_file.local: 'patches/fix.patch' "
        f"does not exist (looked for {tmp_path / 'patches/fix.patch'}, relative to {tmp_path / 'p.yaml'})\n"
        "    hint: create it, or fix the path: it is relative to the folder of the profile file that names it\n"
    )


def test_a_local_path_may_not_leave_the_project_by_dots_a_symlink_or_an_absolute_path(tmp_path):
    outside = tmp_path / "outside.patch"
    outside.write_text("secret\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "link.patch").symlink_to(outside)
    stderr = refused(
        project,
        "    - add_local_file: {local: ../outside.patch, remote: /p/a}\n"
        "    - add_local_file: {local: link.patch, remote: /p/b}\n"
        f"    - add_local_file: {{local: {outside}, remote: /p/c}}\n",
    )
    path = project / "p.yaml"
    assert stderr == (
        f"{path}:5:24: error[local-file]: image.steps.0.add_local_file.local: '../outside.patch' leads out of the "
        f"project ({project}): only its own files go into the image\n"
        "    hint: copy the file into the project (e.g. patches/) and name it from there\n"
        f"{path}:6:24: error[local-file]: image.steps.1.add_local_file.local: 'link.patch' is a symlink to "
        f"'{outside}', outside the project ({project})\n"
        "    hint: copy the file into the project instead of linking to it\n"
        f"{path}:7:24: error[local-file]: image.steps.2.add_local_file.local: '{outside}' is an absolute path; a "
        f"local path is relative to the profile file ({path})\n"
        "    hint: write the path from the profile's folder, e.g. ../patches/fix.patch\n"
    )


def test_a_folder_with_a_symlink_out_of_the_project_is_refused(tmp_path):
    project = tmp_path / "project"
    (project / "overlay").mkdir(parents=True)
    (tmp_path / "key").write_text("x")
    (project / "overlay" / "key").symlink_to(tmp_path / "key")
    stderr = refused(project, "    - add_local_dir: {local: overlay, remote: /overlay}\n")
    assert stderr == (
        f"{project / 'p.yaml'}:5:23: error[local-file]: image.steps.0.add_local_dir.local: "
        f"{project / 'overlay' / 'key'} in 'overlay' is a symlink to '{tmp_path / 'key'}', outside the project\n"
        "    hint: copy the file into the project instead of linking to it\n"
    )


def test_a_file_where_a_folder_is_named_is_refused(tmp_path):
    (tmp_path / "fix.patch").write_text("x")
    stderr = refused(tmp_path, "    - add_local_dir: {local: fix.patch, remote: /p}\n")
    assert stderr == (
        f"{tmp_path / 'p.yaml'}:5:23: error[local-file]: image.steps.0.add_local_dir.local: 'fix.patch' is not a "
        "folder\n    hint: give a folder, or use add_local_file\n"
    )


def build_steps(image) -> list[tuple[str, ...]]:
    """The Dockerfile commands of each layer of a modal.Image, base first, read from Modal's own loaders;
    a copied local file or folder shows as ("COPY", local path)."""
    from modal._utils.async_utils import synchronizer

    layers: list[tuple[str, ...]] = []

    def walk(raw) -> None:
        if raw._load is None:
            return
        closure = inspect.getclosurevars(raw._load).nonlocals
        for dependency in raw._deps() if raw._deps else ():
            if type(dependency).__name__ == "_Image":
                walk(dependency)
        if closure.get("dockerfile_function"):
            commands = closure["dockerfile_function"]("2025.06").commands
            layers.append(tuple(c for c in commands if c != "FROM base"))
        if closure.get("context_mount_function"):
            mount = closure["context_mount_function"]("2025.06")
            for entry in mount._entries if mount else ():
                layers.append(("COPY", os.path.realpath(getattr(entry, "local_file", None) or entry.local_dir)))

    walk(synchronizer._translate_in(image))
    return layers


def import_render(path) -> object:
    spec = importlib.util.spec_from_file_location(f"deploy_steps_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


STEPS = (
    "    # Newer kernels than the image ships.\n"
    '    - uv_pip_install: ["sgl-kernel==0.3.21", "transformers[torch]==4.57.1"]\n'
    '    - apt_install: ["patch=2.7.6-7build3"]\n'
    "    - add_local_file: {local: patches/fix.patch, remote: /patches/fix.patch}\n"
    "    - add_local_dir: {local: overlay, remote: /overlay}\n"
    '    - run_commands: ["cd /sgl-workspace/sglang && patch -p1 < /patches/fix.patch"]\n'
    '    - pip_install: ["outlines==0.1.11"]\n'
    "      extra_index_url: https://download.pytorch.org/whl/cu128\n"
)


def write_project(root) -> str:
    (root / "patches").mkdir(parents=True)
    (root / "patches" / "fix.patch").write_text("--- a/python/sglang/x.py\n+++ b/python/sglang/x.py\n")
    (root / "overlay" / "conf").mkdir(parents=True)
    (root / "overlay" / "conf" / "a.json").write_text("{}\n")
    return profile(root, STEPS)


def test_the_render_chains_the_steps_in_order_and_modal_builds_them(tmp_path):
    path = write_project(tmp_path)
    out = tmp_path / "out"
    result = run_cli("render", path, "--out", str(out))
    assert result.returncode == 0, result.stderr
    source = (out / "deploy.py").read_text()
    assert '    # Newer kernels than the image ships.\n    .uv_pip_install("sgl-kernel==0.3.21"' in source
    assert 'UV_VERSION = "0.13.9"' in source
    deploy = import_render(out / "deploy.py")
    layers = build_steps(deploy.sglang_image)
    assert layers[0] == ("FROM lmsysorg/sglang:v0.5.10.post1-cu130",)
    assert layers[1:] == [
        (
            "COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /.uv/uv",
            "RUN /.uv/uv pip install --python $(command -v python) --compile-bytecode sgl-kernel==0.3.21 "
            "'transformers[torch]==4.57.1'",
        ),
        ("RUN apt-get update", "RUN apt-get install -y patch=2.7.6-7build3"),
        ("COPY . /",),
        ("COPY", str(tmp_path / "patches" / "fix.patch")),
        ("COPY . /",),
        ("COPY", str(tmp_path / "overlay")),
        ("RUN cd /sgl-workspace/sglang && patch -p1 < /patches/fix.patch",),
        ("RUN python -m pip install outlines==0.1.11 --extra-index-url https://download.pytorch.org/whl/cu128",),
        tuple(f"ENV {k}={v}" for k, v in {**deploy.ENGINE_ENV, **deploy.jit_cache_env(deploy.CACHE_DIR)}.items()),
    ]


def test_an_edited_patch_changes_the_render_and_an_unchanged_one_renders_the_same_bytes(tmp_path):
    path = write_project(tmp_path)
    renders = []
    for content in ("one\n", "one\n", "two\n", None):
        if content is not None:
            (tmp_path / "patches" / "fix.patch").write_text(content)
        else:
            (tmp_path / "overlay" / "conf" / "a.json").write_text('{"b": 1}\n')
        result = run_cli("render", path, "--out", "-")
        assert result.returncode == 0, result.stderr
        renders.append(result.stdout)
    assert renders[0] == renders[1]
    assert renders[1] != renders[2] and renders[2] != renders[3]
    digest = __import__("hashlib").sha256(b"two\n").hexdigest()
    assert f"    # sha256 of patches/fix.patch: {digest}\n" in renders[2]


def test_a_local_path_is_relative_to_the_file_that_names_it_through_extends(tmp_path):
    base = tmp_path / "bases"
    (base / "patches").mkdir(parents=True)
    (base / "patches" / "fix.patch").write_text("x\n")
    (base / "base.yaml").write_text(
        f"schema_version: 1\nextends: {ROOT / 'profiles' / 'smoke.yaml'}\nimage:\n  steps:\n"
        "    - add_local_file: {local: patches/fix.patch, remote: /patches/fix.patch}\n"
    )
    child = tmp_path / "child.yaml"
    child.write_text("schema_version: 1\nextends: bases/base.yaml\n")
    out = tmp_path / "out"
    result = run_cli("render", str(child), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (
        '.add_local_file(Path(__file__).parent / "../bases/patches/fix.patch", "/patches/fix.patch", copy=True)'
        in (out / "deploy.py").read_text()
    )


def test_a_profile_in_the_project_names_files_from_the_project_and_renders_relative_to_generated(tmp_path):
    project = tmp_path / "project"
    (project / "profiles").mkdir(parents=True)
    (project / "patches").mkdir()
    (project / "patches" / "fix.patch").write_text("x\n")
    (project / "profiles" / "mine.yaml").write_text(
        f"schema_version: 1\nextends: {ROOT / 'profiles' / 'smoke.yaml'}\nimage:\n  steps:\n"
        "    - add_local_file: {local: ../patches/fix.patch, remote: /patches/fix.patch}\n"
    )
    env = {**os.environ, "DEPLOYGEN_PROJECT": str(project)}
    import subprocess

    result = subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), "render", "mine"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    rendered = project / "generated" / "mine" / "deploy.py"
    assert '.add_local_file(Path(__file__).parent / "../../patches/fix.patch", "/patches/fix.patch", copy=True)' in (
        rendered.read_text()
    )
    layers = build_steps(import_render(rendered).sglang_image)
    assert ("COPY", str(project / "patches" / "fix.patch")) in layers
