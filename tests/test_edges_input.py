"""The edges of the input, class by class: OS errors, bounded work, where output goes, what Modal and SGLang
accept, secrets and what reaches a terminal. Every case runs the real command line and checks the exact
message, exit 1, no traceback and nothing written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

GENERATED = ROOT / "generated"
PARENT = f"{ROOT}/profiles/b200-prod.yaml"


def rejected(result: subprocess.CompletedProcess) -> str:
    """The error output of a command that failed as a user error: exit 1, no traceback, nothing written."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "written" not in result.stdout
    return result.stderr


def refused(*args: str, cwd: Path = ROOT) -> str:
    """`render` refuses the profile (rendering validates first): the message."""
    return rejected(run_cli("render", *args, cwd=cwd))


def validate_and_render(*args: str, cwd: Path = ROOT) -> str:
    """Both commands refuse the profile with the same message; the message."""
    validated = rejected(run_cli("validate", *args, cwd=cwd))
    rendered = rejected(run_cli("render", *args, cwd=cwd))
    assert rendered.endswith(validated) or validated.endswith(rendered) or rendered == validated
    return validated


@pytest.fixture
def world_readable_dir():
    """A folder another user can enter (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="deploygen-edges-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run_as_other_user(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python SCRIPT ARGS` as an unprivileged user, so that file permissions apply (root ignores them)."""
    command = [sys.executable, script, *args]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    env = {**os.environ, "HOME": str(cwd), "XDG_CACHE_HOME": str(cwd / ".cache")}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


# 1. Every OS error is a user error.


def test_a_symlink_loop_on_the_command_line_is_named(tmp_path):
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "b.yaml").symlink_to("a.yaml")
    assert validate_and_render("a.yaml", cwd=tmp_path) == (
        "a.yaml: error: cannot read the file: symlink loop (following the links leads back to a link)\n"
        "    hint: point the symlink at a real file\n"
    )


def test_a_symlink_loop_in_extends_is_named(tmp_path):
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    (tmp_path / "child.yaml").write_text("schema_version: 1\nextends: loop.yaml\n")
    assert validate_and_render("child.yaml", cwd=tmp_path) == (
        "loop.yaml: error: cannot read the file: symlink loop (following the links leads back to a link)\n"
        "    hint: point the symlink at a real file\n"
    )


def test_a_broken_symlink_says_it_is_broken_and_names_the_file(tmp_path):
    (tmp_path / "gone.yaml").symlink_to("moved-away.yaml")
    (tmp_path / "child.yaml").write_text("schema_version: 1\nextends: [gone.yaml]\n")
    expected = (
        "gone.yaml: error: cannot read the file: broken symlink to 'moved-away.yaml', which does not exist\n"
        "    hint: fix or remove the symlink\n"
    )
    assert validate_and_render("gone.yaml", cwd=tmp_path) == expected
    assert validate_and_render("child.yaml", cwd=tmp_path) == expected


def test_a_folder_where_a_profile_file_is_expected(tmp_path):
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "child.yaml").write_text("extends: folder.yaml\n")
    expected = "folder.yaml: error: cannot read the file: it is a folder\n    hint: give the path of a file\n"
    assert validate_and_render("folder.yaml", cwd=tmp_path) == expected
    assert validate_and_render("child.yaml", cwd=tmp_path) == expected
    assert validate_and_render("./", cwd=tmp_path).endswith(
        ": error: cannot read the file: it is a folder\n    hint: give the path of a file\n"
    )


def test_a_file_where_a_folder_is_expected(tmp_path):
    (tmp_path / "plain").write_text("")
    assert validate_and_render("plain/child.yaml", cwd=tmp_path) == (
        "plain/child.yaml: error: cannot read the file: a part of the path is a file, not a folder\n"
        "    hint: check the path\n"
    )


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    started = time.monotonic()
    assert validate_and_render("pipe.yaml", cwd=tmp_path) == (
        "pipe.yaml: error: cannot read the file: not a regular file (a pipe, socket or device)\n"
    )
    assert time.monotonic() - started < 10


def test_an_unreadable_profile_is_permission_denied(world_readable_dir):
    profile = world_readable_dir / "secret.yaml"
    profile.write_text(f"schema_version: 1\nextends: {PARENT}\n")
    profile.chmod(0o000)
    result = run_as_other_user(str(ROOT / "generate.py"), "validate", "secret.yaml", cwd=world_readable_dir)
    assert rejected(result) == (
        "secret.yaml: error: cannot read the file: permission denied\n"
        "    hint: give yourself access to it and to the folders above it\n"
    )


def test_a_profile_in_a_folder_that_cannot_be_entered_is_permission_denied(world_readable_dir):
    closed = world_readable_dir / "closed"
    closed.mkdir()
    (closed / "p.yaml").write_text("schema_version: 1\n")
    closed.chmod(0o000)
    (world_readable_dir / "child.yaml").write_text("schema_version: 1\nextends: closed/p.yaml\n")
    result = run_as_other_user(str(ROOT / "generate.py"), "validate", "child.yaml", cwd=world_readable_dir)
    assert rejected(result) == (
        "closed/p.yaml: error: cannot read the file: permission denied\n"
        "    hint: give yourself access to it and to the folders above it\n"
    )


# 2. Bounded work.


def chain(folder: Path, length: int) -> Path:
    """p0 extends p1 extends ... p{length-1}."""
    for index in range(length):
        body = f"extends: p{index + 1}.yaml\n" if index < length - 1 else "schema_version: 1\n"
        (folder / f"p{index}.yaml").write_text(body)
    return folder / "p0.yaml"


def test_a_thousand_deep_extends_chain_stops_at_the_depth_limit_quickly(tmp_path):
    chain(tmp_path, 1000)
    started = time.monotonic()
    assert validate_and_render("p0.yaml", cwd=tmp_path) == (
        "p15.yaml:1:1: error: extends: `extends` chain is deeper than 16 files: "
        "p0.yaml -> p1.yaml -> p2.yaml -> ... -> p16.yaml\n"
        "    hint: flatten the chain: a profile needs a base or two, not a tower\n"
    )
    assert time.monotonic() - started < 20  # two commands; about 0.3 s each alone


def test_a_chain_at_the_depth_limit_loads(tmp_path):
    chain(tmp_path, 16)
    # It loads (the schema then asks for the missing sections).
    assert "missing required field 'description'" in rejected(run_cli("validate", "p0.yaml", cwd=tmp_path))


def test_each_parent_is_loaded_once_however_many_paths_reach_it(tmp_path):
    # Each level extends the next one twice: 2^15 = 32,768 paths to the last file, 16 files.
    levels = 15
    for index in range(levels):
        (tmp_path / f"l{index}.yaml").write_text(f"extends: [l{index + 1}.yaml, l{index + 1}.yaml]\n")
    (tmp_path / f"l{levels}.yaml").write_text("description: [not, a, string]\n")
    started = time.monotonic()
    result = rejected(run_cli("validate", "l0.yaml", cwd=tmp_path))
    assert time.monotonic() - started < 10  # about 0.4 s alone; 22 s before parents were loaded once
    assert f"l{levels}.yaml:1:1: error: description: ['not', 'a', 'string'] is a list, expected string" in result


def test_a_graph_of_more_than_32_files_is_refused(tmp_path):
    names = [f"base{index}.yaml" for index in range(40)]
    for name in names:
        (tmp_path / name).write_text("schema_version: 1\n")
    (tmp_path / "wide.yaml").write_text("extends:\n" + "".join(f"  - {name}\n" for name in names))
    assert validate_and_render("wide.yaml", cwd=tmp_path) == (
        "wide.yaml:33:5: error: extends: the profile's `extends` graph has more than 32 files\n"
        "    hint: merge some base profiles into one\n"
    )


def test_a_two_gigabyte_profile_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: no disk used, but read whole it would take 2 GB of memory
    started = time.monotonic()
    assert validate_and_render("huge.yaml", cwd=tmp_path) == (
        "huge.yaml:1:1: error: file is 2,147,483,648 bytes; a profile is at most 262,144\n"
        "    hint: split shared values into a base profile and use `extends`\n"
    )
    assert time.monotonic() - started < 10


# 3. Output stays in generated/<name>/.


@pytest.mark.parametrize("file_name", ["...yaml", "..yaml", "-x.yaml", "a b.yaml", "_x.yaml"])
def test_a_file_name_that_is_not_a_safe_profile_name_is_refused(tmp_path, file_name):
    (tmp_path / file_name).write_text(f"schema_version: 1\nextends: {PARENT}\n")
    name = file_name.removesuffix(".yaml")
    result = rejected(run_cli("render", "--", file_name, cwd=tmp_path))
    assert result == (
        f"{file_name}: error: {name!r} is not a profile name: the render goes to generated/<name>/, so a name is "
        "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit\n"
        "    hint: rename the file, e.g. my-profile.yaml\n"
    )
    assert not (tmp_path / "deploy.py").exists()
    assert not (GENERATED / "deploy.py").exists()
    assert not (ROOT / "deploy.py").exists()


# 4. Only what Modal and SGLang accept: YAML read as YAML 1.2 reads it, as the editor does.


def child(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "child.yaml"
    path.write_text(f"schema_version: 1\nextends: {PARENT}\n{body}")
    return path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "gpu:\n  count: 010\n",
            ":4:10: error: 010 is ambiguous: YAML 1.1 tools read a leading 0 as octal, YAML 1.2 as decimal\n"
            "    hint: write 10 without the leading zeros, or quote it\n",
        ),
        ("gpu:\n  count: 1:30\n", ":4:3: error: gpu.count: '1:30' is a string, expected integer\n"),
        (
            "server:\n  unauthenticated: yes\n",
            ":4:3: error: server.unauthenticated: 'yes' is a string, expected boolean\n",
        ),
        (
            "server:\n  unauthenticated: on\n",
            ":4:3: error: server.unauthenticated: 'on' is a string, expected boolean\n",
        ),
        (
            "scaling:\n  max_containers: 1_000\n",
            ":4:3: error: scaling.max_containers: '1_000' is a string, expected integer\n",
        ),
        (
            "description: !!binary aGVsbG8=\n",
            ":3:14: error: YAML tag 'tag:yaml.org,2002:binary' is not allowed in profiles\n",
        ),
        ("description: !!bool yes\n", ":3:14: error: 'yes' is not a YAML 1.2 bool\n"),
        (
            "abstract: yes\n",
            ":3:1: error: abstract: 'yes' is a string, expected true or false\n"
            "    hint: write `abstract: true` for a base that is never rendered\n",
        ),
        (
            "abstract: 1\n",
            ":3:1: error: abstract: 1 is an integer, expected true or false\n"
            "    hint: write `abstract: true` for a base that is never rendered\n",
        ),
    ],
    ids=["octal", "sexagesimal", "yes", "on", "underscore", "binary", "bool-tag", "abstract-yes", "abstract-int"],
)
def test_yaml_1_1_surprises_are_read_as_yaml_1_2_or_refused(tmp_path, body, expected):
    path = child(tmp_path, body)
    assert f"{path}{expected}" in refused(str(path))


def test_yaml_1_2_numbers_are_numbers(tmp_path):
    path = child(tmp_path, "lifecycle:\n  health:\n    poll_interval: 1e-1\n  download:\n    memory: 0x8000\n")
    result = run_cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    explained = run_cli("explain", str(path)).stdout
    assert "lifecycle.health.poll_interval: 0.1 " in explained
    assert "lifecycle.download.memory: 32768 " in explained


@pytest.mark.parametrize(
    ("extends", "expected"),
    [
        ("[]", ":2:1: error: extends: `extends` is an empty list\n    hint: name a profile, or remove the key\n"),
        (
            "1",
            ":2:1: error: extends: 1 is not a profile: `extends` takes a profile name, a relative path, or a "
            "list of them\n    hint: write e.g. `extends: glm-5.1-base`\n",
        ),
        (
            "{a: 1}",
            ":2:1: error: extends: a mapping is not a profile: `extends` takes a profile name, a relative "
            "path, or a list of them\n",
        ),
        ("[b200-prod, null]", ":2:22: error: extends: None is not a profile"),
        ("''", ":2:1: error: extends: '' is not a profile"),
    ],
    ids=["empty-list", "number", "mapping", "null-item", "empty-string"],
)
def test_extends_is_type_checked(tmp_path, extends, expected):
    path = tmp_path / "typed.yaml"
    path.write_text(f"schema_version: 1\nextends: {extends}\n")
    assert f"{path}{expected}" in refused(str(path))


MOUNT_HINT = (
    "    hint: Mount path in every container that uses the volume: a canonical absolute path (no `.` or `..` "
    "part, no `//`, no trailing `/`) outside the system folders.\n"
)
SYSTEM_HINT = "    hint: mount volumes on a dedicated path such as /model-cache\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "volumes:\n  compile_cache:\n    mount: /dg/../model-cache\n",
            ":5:5: error: volumes.compile_cache.mount: '/dg/../model-cache' is not a valid value\n" + MOUNT_HINT,
        ),
        (
            "volumes:\n  compile_cache:\n    mount: //model-cache\n",
            ":5:5: error: volumes.compile_cache.mount: '//model-cache' is not a valid value\n" + MOUNT_HINT,
        ),
        (
            "volumes:\n  compile_cache:\n    mount: /x/..\n",
            ":5:5: error: volumes.compile_cache.mount: '/x/..' is not a valid value\n" + MOUNT_HINT,
        ),
        (
            "volumes:\n  compile_cache:\n    mount: /dg/./cache\n",
            ":5:5: error: volumes.compile_cache.mount: '/dg/./cache' is not a valid value\n" + MOUNT_HINT,
        ),
        (
            "volumes:\n  compile_cache:\n    mount: /dg-cache/\n",
            ":5:5: error: volumes.compile_cache.mount: '/dg-cache/' is not a valid value\n" + MOUNT_HINT,
        ),
        (
            "volumes:\n  compile_cache:\n    mount: /usr/local/dg\n",
            ":5:5: error: volumes.compile_cache.mount: '/usr/local/dg' is not allowed here\n" + SYSTEM_HINT,
        ),
        (
            "volumes:\n  weights:\n    mount: /tmp\n",
            ":5:5: error: volumes.weights.mount: '/tmp' is not allowed here\n" + SYSTEM_HINT,
        ),
        ("model:\n  path: /proc/self\n", ":4:3: error: model.path: '/proc/self' is not allowed here\n" + SYSTEM_HINT),
        (
            "model:\n  path: /model-cache/../etc/GLM\n",
            ":4:3: error: model.path: '/model-cache/../etc/GLM' is not a valid value\n",
        ),
    ],
    ids=["dotdot", "double-slash", "trailing-dotdot", "dot", "trailing-slash", "usr", "tmp", "proc", "model-dotdot"],
)
def test_mount_and_model_paths_are_canonical_and_outside_system_folders(tmp_path, body, expected):
    path = child(tmp_path, body)
    assert f"{path}{expected}" in refused(str(path))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "scaling:\n  scaledown_window: 3601\n",
            ":4:3: error: scaling.scaledown_window: 3601 is greater than the maximum of 3600\n",
        ),
        ("scaling:\n  timeout: 86401\n", ":4:3: error: scaling.timeout: 86401 is greater than the maximum of 86400\n"),
        (
            "scaling:\n  max_containers: 4294967296\n",
            ":4:3: error: scaling.max_containers: 4294967296 is greater than the maximum of 4294967295\n",
        ),
        (
            "keepalive:\n  timeout: 86401\n",
            ":4:3: error: keepalive.timeout: 86401 is greater than the maximum of 86400\n",
        ),
        (
            "lifecycle:\n  download:\n    cpu: 0.01\n",
            ":5:5: error: lifecycle.download.cpu: 0.01 is less than the minimum of 0.125\n",
        ),
        (
            "scaling:\n  max_containers: " + "1" + "0" * 400 + "\n",
            ":4:19: error: number is too large: profiles take integers up to 9,007,199,254,740,991 (2^53 - 1)\n",
        ),
        ("sglang:\n  context-length: 1" + "0" * 20 + "\n", ":4:19: error: number is too large"),
        ("targets:\n  ttft_ms: 1e300\n", ":4:3: error: targets.ttft_ms: 1e+300 is not a valid value\n"),
    ],
    ids=["scaledown", "timeout", "containers-u32", "keepalive", "cpu", "ten-to-the-400", "flag-huge", "ttft"],
)
def test_numbers_stay_in_modal_s_ranges(tmp_path, body, expected):
    path = child(tmp_path, body)
    assert f"{path}{expected}" in refused(str(path))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('"a\\nb"', "'a\\nb'"),
        ('"tab\\there"', "'tab\\there'"),
        ('"\\e[31mred"', "'\\x1b[31mred'"),
        ('"\\x85"', "'\\x85'"),
    ],
    ids=["newline", "tab", "escape", "c1"],
)
def test_an_environment_value_with_a_control_character_is_refused(tmp_path, value, shown):
    path = child(tmp_path, f"image:\n  env:\n    NOTE: {value}\n")
    assert refused(str(path)).startswith(
        f"{path}:5:5: error: image.env.NOTE: {shown} is not a valid value\n"
        "    hint: Text without control characters (no newline, tab, escape or C1 code).\n"
    )


# A copy of the product in a folder of its own: its profiles/, generated/ and data files can be broken
# without touching the checkout, and another user can read it.

PRODUCT = ("generate.py", "pyproject.toml", "deploygen", "schema", "data", "templates", "profiles", "generated")


@pytest.fixture
def repo(world_readable_dir):
    for name in PRODUCT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, world_readable_dir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, world_readable_dir / name)
    return world_readable_dir


def in_copy(repo: Path, *args: str, preexec=None) -> subprocess.CompletedProcess:
    """`generate.py ARGS` of the copy, with a cache of its own."""
    env = {**os.environ, "XDG_CACHE_HOME": str(repo / ".cache")}
    return subprocess.run(
        [sys.executable, str(repo / "generate.py"), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        preexec_fn=preexec,
    )


def no_temp_files(folder: Path) -> None:
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_an_unexpected_exception_is_an_internal_error_with_the_command_not_a_traceback(repo):
    (repo / "schema" / "sglang" / "0.5.10.json").write_text("{not json")
    result = in_copy(repo, "validate", "b200-prod")
    assert rejected(result) == (
        "internal error, please report it with the command and this message:\n"
        "    command: generate.py validate b200-prod\n"
        "    error: JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)\n"
    )


def test_the_internal_error_message_hides_a_secret_given_on_the_command_line(repo):
    (repo / "schema" / "sglang" / "0.5.10.json").write_text("[]")
    result = in_copy(repo, "validate", "b200-prod", "--strict")
    assert "command: generate.py validate b200-prod --strict\n" in rejected(result)


def test_a_read_only_generated_folder_is_a_located_error_and_the_render_stays(repo):
    folder = repo / "generated" / "b200-prod"
    (folder / "deploy.py").write_text("# the previous render\n")
    folder.chmod(0o555)
    result = run_as_other_user(str(repo / "generate.py"), "render", "b200-prod", cwd=repo)
    assert rejected(result) == (
        "generated/b200-prod/deploy.py: error: cannot write the render: permission denied\n"
        "    hint: give yourself access to it and to the folders above it\n"
    )
    assert (folder / "deploy.py").read_text() == "# the previous render\n"
    no_temp_files(folder)


def test_a_full_disk_is_a_located_error_and_the_render_stays(repo):
    """The file-size limit (ulimit -f) makes the one write fail as a full disk does; the formatted source
    comes from the format cache of a first render, so no other file is written."""
    import resource

    folder = repo / "generated" / "b200-prod"
    (folder / "deploy.py").unlink()
    assert in_copy(repo, "render", "b200-prod").returncode == 0  # warms the format cache
    (folder / "deploy.py").write_text("# the previous render\n")

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    result = in_copy(repo, "render", "b200-prod", preexec=small_files)
    assert rejected(result) == (
        "generated/b200-prod/deploy.py: error: cannot write the render: file too large for the file system or "
        "the file-size limit (ulimit -f)\n"
        "    hint: raise the limit\n"
    )
    assert (folder / "deploy.py").read_text() == "# the previous render\n"
    no_temp_files(folder)


def test_no_space_left_on_a_small_file_system_is_a_located_error(repo):
    folder = repo / "generated" / "b200-prod"
    (folder / "deploy.py").write_text("# the previous render\n")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        (folder / "deploy.py").write_text("# the previous render\n")
        result = in_copy(repo, "render", "b200-prod")
        assert rejected(result) == (
            "generated/b200-prod/deploy.py: error: cannot write the render: no space left on the device\n"
            "    hint: free some disk space and run the command again\n"
        )
        assert (folder / "deploy.py").read_text() == "# the previous render\n"
        no_temp_files(folder)
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_render_never_goes_through_a_symlink_out_of_the_repository(repo, tmp_path):
    folder = repo / "generated" / "b200-prod"
    shutil.rmtree(folder)
    folder.symlink_to(tmp_path)
    result = in_copy(repo, "render", "b200-prod")
    assert rejected(result) == (
        f"generated/b200-prod: error: cannot write the render: this folder leads to {str(tmp_path)!r}; renders "
        "are written only in the repository's own generated/<name>/\n"
        "    hint: replace the symlink with a real folder\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_renders_are_0644(repo):
    (repo / "generated" / "b200-prod" / "deploy.py").unlink()
    result = subprocess.run(
        ["sh", "-c", f"umask 022 && {sys.executable} generate.py render b200-prod"], cwd=repo, capture_output=True
    )
    assert result.returncode == 0, result.stderr
    assert (repo / "generated" / "b200-prod" / "deploy.py").stat().st_mode & 0o777 == 0o644


def break_siblings(repo: Path) -> None:
    """Broken profiles next to the shipped ones: a 200-deep chain, a pipe, a loop, a 2 GB file, bad YAML."""
    profiles = repo / "profiles"
    for index in range(200):
        (profiles / f"zz-chain-{index}.yaml").write_text(f"extends: zz-chain-{index + 1}\n")
    os.mkfifo(profiles / "zz-pipe.yaml")
    (profiles / "zz-loop.yaml").symlink_to("zz-loop.yaml")
    with open(profiles / "zz-huge.yaml", "wb") as handle:
        handle.truncate(2 * 1024**3)
    (profiles / "zz-bad.yaml").write_text("a: [1, 2\n")


def test_broken_sibling_profiles_never_slow_or_hide_the_one_validated(repo):
    break_siblings(repo)
    started = time.monotonic()
    result = in_copy(repo, "validate", "b200-prod")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("profiles/b200-prod.yaml: valid")
    assert time.monotonic() - started < 30  # a second or two alone
    # An abstract base still names its children.
    assert "render one of: b200-always-on" in rejected(in_copy(repo, "render", "glm-5.1-base"))


def test_validate_all_reports_every_profile_not_just_the_first_that_fails(repo):
    profiles = repo / "profiles"
    (profiles / "aa-bad.yaml").write_text("a: [1, 2\n")
    (profiles / "ab-loop.yaml").symlink_to("ab-loop.yaml")
    (profiles / "ac-wrong.yaml").write_text("schema_version: 1\nextends: b200-prod\ngpu:\n  count: 8.0\n")
    result = in_copy(repo, "validate", "--all")
    errors = rejected(result)
    assert "profiles/aa-bad.yaml:2:1: error: while parsing a flow sequence" in errors
    assert "profiles/ab-loop.yaml: error: cannot read the file: symlink loop" in errors
    assert "profiles/ac-wrong.yaml:4:3: error: gpu.count: 8.0 is a number, expected integer\n" in errors
    valid = [line for line in result.stdout.splitlines() if line.endswith(("valid", "notes)"))]
    assert errors.endswith(f"3 of {len(valid) + 3} profiles are not valid\n")
    assert "\nprofiles/b200-prod.yaml: valid" in "\n" + result.stdout
    # render --all and check report them all too, and write nothing.
    for command in (("render", "--all"), ("check",)):
        errors = rejected(in_copy(repo, *command))
        assert "aa-bad.yaml" in errors and "ab-loop.yaml" in errors and "ac-wrong.yaml" in errors
    # list shows every profile, the broken ones with why.
    listed = in_copy(repo, "list")
    assert listed.returncode == 1
    assert "ab-loop                      invalid    profiles/ab-loop.yaml: error: cannot read the file: symlink " in (
        listed.stdout
    )
    assert "b200-prod                    8x B200" in listed.stdout


# 4. Integers are integers; a flag value is never read as an option.


def test_an_integer_field_refuses_a_float(tmp_path):
    path = child(tmp_path, "gpu:\n  count: 8.0\n")
    assert validate_and_render(str(path)) == f"{path}:4:3: error: gpu.count: 8.0 is a number, expected integer\n"


@pytest.mark.parametrize("value", ["--api-key=x y", "-h x", "--help", "-x"])
def test_a_flag_value_that_argparse_would_read_as_an_option_is_refused(tmp_path, value):
    path = child(tmp_path, f'sglang:\n  chat-template: "{value}"\n')
    assert refused(str(path)) == (
        f"{path}:4:3: error[sglang-flag-value]: sglang.chat-template: --chat-template value {value!r} starts with "
        "'-', so SGLang's parser would read it as an option\n"
    )


# 5. Secrets by meaning and by shape; never echoed.

SECRET_HINT = "    hint: store it with `modal secret create` and name the Modal secret under `secrets`\n"
TOKENS = {
    "huggingface": "hf_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3",
    "openai": "sk-proj-" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6",
    "github": "ghp_" + "x1Y2z3A4b5C6d7E8f9G0h1I2j3K4l5M6n7O8",
    "github-fine-grained": "github_pat_11ABCDEFG0" + "abcdefghijklmnopqrstuvwxyz0123456789",
    "modal-id": "ak-" + "1a2B3c4D5e6F7g8H9i0J1k",
    "modal-secret": "as-" + "9z8Y7x6W5v4U3t2S1r0Q9p",
    "aws": "AKIA" + "IOSFODNN7EXAMPLE",
    "random": "q8J2mZ7xK4vN9pR3tY6wB1cD5fG0hLs",
}


@pytest.mark.parametrize("token", TOKENS.values(), ids=TOKENS.keys())
def test_a_token_shaped_value_is_refused_and_never_shown(tmp_path, token):
    path = child(tmp_path, f"description: deploy with {token} please\n")
    result = refused(str(path))
    assert result == (
        f"{path}:3:1: error[inline-secret]: description: this value looks like an API key or token; secrets never "
        "go in a profile\n" + SECRET_HINT
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "sglang:\n  admin-api-key: letmein\n",
            ":4:3: error[inline-secret]: sglang.admin-api-key: --admin-api-key takes a secret, and a literal here "
            "would be written into deploy.py\n",
        ),
        (
            "sglang:\n  ssl-keyfile-password: hunter2\n",
            ":4:3: error[inline-secret]: sglang.ssl-keyfile-password: --ssl-keyfile-password takes a secret",
        ),
        (
            "image:\n  env:\n    MODAL_AUTH: abc\n",
            ":5:5: error[inline-secret]: image.env.MODAL_AUTH: image.env.MODAL_AUTH looks like a secret; its value "
            "would be baked into the image\n",
        ),
        (
            "image:\n  env:\n    HF_TOKEN: abc\n",
            ":5:5: error[inline-secret]: image.env.HF_TOKEN: image.env.HF_TOKEN looks like a secret",
        ),
        (
            "keepalive:\n  url: https://admin:hunter2@glm.modal.run\n",
            ":4:3: error: keepalive.url: this value (not shown: it looks like a secret) is not a valid value\n",
        ),
        (
            'secrets:\n  api_key: "Bearer sk-proj-abcdefghijklmnopqrstuvwxyz"\n',
            ":4:3: error: secrets.api_key: this value (not shown: it looks like a secret) is not a valid value\n",
        ),
    ],
    ids=["admin-api-key", "ssl-keyfile-password", "MODAL_AUTH", "HF_TOKEN", "url-userinfo", "bearer-in-schema"],
)
def test_a_secret_by_name_takes_no_literal_and_no_message_echoes_it(tmp_path, body, expected):
    path = child(tmp_path, body)
    result = refused(str(path))
    assert f"{path}{expected}" in result
    for secret in ("letmein", "hunter2", "sk-proj-abc"):
        assert secret not in result


def test_list_never_shows_a_secret_looking_value(repo):
    token = TOKENS["openai"]
    (repo / "profiles" / "leaky.yaml").write_text(
        f"schema_version: 1\nextends: b200-prod\ndescription: key {token} here\n"
    )
    listed = in_copy(repo, "list")
    assert "leaky                        8x B200    key *** here\n" in listed.stdout
    assert token not in listed.stdout + listed.stderr
    for command in ("explain", "plan", "validate", "render"):
        result = in_copy(repo, command, "leaky")
        assert token not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr


# 6. Safe to print.


def test_control_characters_in_profile_strings_are_shown_escaped_everywhere(repo):
    (repo / "profiles" / "ansi.yaml").write_text(
        'schema_version: 1\nextends: b200-prod\ndescription: "\\e[2J\\e[31mred\\rgone\\u202eevil\\x85"\n'
    )
    shown = "\\x1b[2J\\x1b[31mred\\rgone\\u202eevil\\x85"
    listed = in_copy(repo, "list").stdout
    assert f"ansi                         8x B200    {shown}\n" in listed
    explained = in_copy(repo, "explain", "ansi")
    assert explained.returncode == 0, explained.stderr
    assert "\x1b" not in explained.stdout and "\r" not in explained.stdout and "\u202e" not in explained.stdout
    for command in ("list", "explain", "plan", "diff"):
        result = in_copy(
            repo,
            command,
            *(["ansi"] if command in ("explain", "plan") else []),
            *(["ansi", "b200-prod"] if command == "diff" else []),
        )
        for unsafe in ("\x1b", "\r", "\u202e", "\x85"):
            assert unsafe not in result.stdout + result.stderr, command


def test_an_error_about_a_file_name_with_an_escape_shows_it_escaped(tmp_path):
    name = "\x1b[31mred.yaml"
    (tmp_path / name).write_text("schema_version: 1\n")
    result = rejected(run_cli("render", name, cwd=tmp_path))
    assert "\x1b" not in result
    assert result.startswith("\\x1b[31mred.yaml: error: '\\x1b[31mred' is not a profile name")


def test_a_bad_key_is_blamed_on_its_own_line(tmp_path):
    path = child(tmp_path, "image:\n  env:\n    GOOD: x\n    bad-name: y\n")
    assert validate_and_render(str(path)).startswith(f"{path}:6:5: error: image.env.bad-name: invalid key 'bad-name'\n")
    path = child(tmp_path, "sglang:\n  Bad_Flag: 1\n")
    assert validate_and_render(str(path)).startswith(f"{path}:4:3: error: sglang.Bad_Flag: invalid key 'Bad_Flag'\n")
