"""Rendered deploy.py files: golden, deterministic, ruff-clean, importable, and true to the profile."""

from __future__ import annotations

import ast
import importlib.util
import math
import subprocess
import sys

import jinja2
import jinja2.meta
import pytest

from conftest import ROOT, child, run_cli
from deploygen.load import deployable_profiles
from deploygen.pipeline import check
from deploygen.render import output_path, render_deployment
from deploygen.validate import derived

PROFILES = [p.name for p in deployable_profiles()]
RUFF = str(ROOT / ".venv" / "bin" / "ruff") if (ROOT / ".venv" / "bin" / "ruff").exists() else "ruff"


def rendered(name: str) -> str:
    return render_deployment(check(name).deployment)


@pytest.mark.parametrize("name", PROFILES)
def test_committed_render_is_the_golden_file(name):
    """Regenerate with `make render-all` after an intended change."""
    assert output_path(check(name).deployment.profile).read_text() == rendered(name)


@pytest.mark.parametrize("name", PROFILES)
def test_rendering_twice_gives_the_same_bytes(name):
    assert rendered(name) == rendered(name)


def test_header_names_sources_digest_and_the_regenerate_command():
    head = rendered("b200-business-hours").split('"""')[1]
    assert "profiles/glm-5.1-base.yaml, profiles/b200-prod.yaml, profiles/b200-business-hours.yaml" in head
    assert "Do not edit by hand" in head
    assert "make render PROFILE=b200-business-hours" in head
    assert "Inputs digest: " in head


def test_generated_files_pass_ruff_check_and_format():
    files = [str(output_path(check(n).deployment.profile)) for n in PROFILES]
    subprocess.run([RUFF, "check", "--no-cache", *files], check=True, cwd=ROOT)
    subprocess.run([RUFF, "format", "--check", "--no-cache", *files], check=True, cwd=ROOT)


def load_module(name: str):
    path = ROOT / "generated" / name / "deploy.py"
    spec = importlib.util.spec_from_file_location(f"deploy_{name.replace('-', '_').replace('.', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def secret_infos(name: str | None) -> list[str]:
    """How Function.info() shows a named secret; a null secret is no secret at all."""
    return [f"modal.Secret.from_name({name!r})"] if name else []


def shutdown_needs(profile: dict) -> int:
    """Whole seconds a stopping @app.server container needs after SIGTERM: the engine's stop (the grace
    period plus Engine.stop's SIGKILL wait and output drain) and room for the volume commit."""
    from deploygen.runtime.engine import DRAIN_SECONDS, KILL_WAIT_SECONDS
    from deploygen.validate.derived import VOLUME_COMMIT_MARGIN

    grace = profile["lifecycle"]["shutdown"]["grace_period"]
    return math.ceil(grace + KILL_WAIT_SECONDS + DRAIN_SECONDS + VOLUME_COMMIT_MARGIN)


def test_an_exit_grace_period_of_the_profile_is_what_modal_is_told(tmp_path):
    path = child(tmp_path, "server:\n  # Long generations finish within ten minutes.\n  exit_grace_period: 600\n")
    assert run_cli("render", str(path), "--out", str(tmp_path / "out")).returncode == 0
    source = (tmp_path / "out" / "deploy.py").read_text()
    assert "    # Long generations finish within ten minutes.\n    exit_grace_period=600,\n" in source
    spec = importlib.util.spec_from_file_location("deploy_exit_grace", tmp_path / "out" / "deploy.py")
    deploy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy)
    assert deploy.Server.info().exit_grace_period == 600


def modal_told(function) -> dict:
    """What modal's Function._from_local will send at deploy: the autoscaler settings and the HTTP config
    it built from the decorator's arguments (Function.info() does not show autoscaler settings)."""
    from modal._utils.async_utils import synchronizer

    load = synchronizer._translate_in(function)._load
    return {name: cell.cell_contents for name, cell in zip(load.__code__.co_freevars, load.__closure__, strict=True)}


@pytest.mark.parametrize("name", PROFILES)
def test_modal_objects_carry_the_profile_values(name):
    """Imports with the real modal package, offline, and reads Modal's own objects back."""
    deployment = check(name).deployment
    profile = deployment.profile.data
    deploy = load_module(name)
    gpu, scaling, volumes = profile["gpu"], profile["scaling"], profile["volumes"]
    if gpu["nodes"] > 1:  # a clustered @app.server (tests/test_multinode.py checks its cluster and HTTP settings)
        server = deploy.Server._get_service_function().info()
        assert (server.cluster_info.size, server.cluster_info.rdma) == (gpu["nodes"], gpu["rdma"])
        assert deploy.Server.info().unauthenticated is profile["server"]["unauthenticated"]
    elif profile["server"]["interface"] == "server":
        assert type(deploy.Server).__name__ == "Server"  # modal.Server: what @app.server returns
        function = deploy.Server._get_service_function()
        server = deploy.Server.info()
        told = modal_told(function)
        http, autoscaler = told["http_config"], told["autoscaler_settings"]
        target, limit = deployment.server_concurrency
        assert (server.port, server.startup_timeout) == (profile["server"]["port"], scaling["startup_timeout"])
        assert server.exit_grace_period == deployment.exit_grace_period == shutdown_needs(profile)
        assert server.unauthenticated is profile["server"]["unauthenticated"]
        assert server.routing_region == (profile["server"]["routing_region"] or "us-east")
        assert server.compute_regions == ([scaling["region"]] if scaling["region"] else None)
        assert autoscaler.target_concurrency_float == target
        assert function.info().concurrency_info.max_inputs == limit
        assert (autoscaler.min_containers, told["max_containers"]) == (
            scaling["min_containers"],
            scaling.get("max_containers"),  # unset: no cap
        )
        assert autoscaler.scaledown_window == scaling["scaledown_window"]
        assert autoscaler.buffer_containers == (scaling["buffer_containers"] or 0)
        assert autoscaler.scaleup_window == (scaling["scaleup_window"] or 0)
        assert http.port == profile["server"]["port"]
    else:
        function = deploy.Server._get_class_service_function()
        server = function.info()
        told = modal_told(function)
        assert server.timeout == scaling["timeout"]
        assert server.startup_timeout == scaling["startup_timeout"]
        assert server.concurrency_info.max_inputs == scaling["max_inputs"]
        assert server.concurrency_info.target_inputs == scaling["target_inputs"]
        assert server.method_names == ["serve"]
        web = server.method_details["serve"]
        assert web.unauthenticated is profile["server"]["unauthenticated"]
        autoscaler = told["autoscaler_settings"]
        assert (autoscaler.min_containers, told["max_containers"], autoscaler.scaledown_window) == (
            scaling["min_containers"],
            scaling.get("max_containers"),
            scaling["scaledown_window"],
        )
    assert server.gpus == [(gpu["type"], gpu["count"])]
    # The weights, and the compile cache where the profile has one.
    assert {path: mount.name for path, mount in server.volumes.items()} == {
        volume["mount"]: volume["name"] for volume in volumes.values()
    }
    assert server.secrets == secret_infos(profile["secrets"]["api_key"])

    download = deploy.download_model.info()
    lifecycle = profile["lifecycle"]["download"]
    assert (download.cpu, download.memory_mib, download.timeout) == (
        lifecycle["cpu"],
        lifecycle["memory"],
        lifecycle["timeout"],
    )
    assert download.secrets == secret_infos(profile["secrets"]["huggingface"])
    # vLLM compiles at its first start: its renders have no precompile function (docs/sources.md#vllm-caches).
    if derived.precompiles_deepgemm(deployment.profile):
        compile_info = deploy.compile_deepgemm.info()
        assert compile_info.gpus == [(gpu["type"], gpu["count"])]
        assert (compile_info.cluster_info.size if compile_info.cluster_info else 1) == gpu["nodes"]
        assert compile_info.timeout == profile["lifecycle"]["compile"]["timeout"]
    else:
        # A disabled feature is not rendered at all: no function, no marker, no dead branch.
        assert not hasattr(deploy, "compile_deepgemm") and not hasattr(deploy, "COMPILE_MARKER")

    keepalive = profile["keepalive"]
    if keepalive["mode"] == "ping":
        assert deploy.ENABLE_KEEPALIVE_CRON is True
        assert deploy.keep_warm.info().schedule == f"Cron({keepalive['schedule']!r}, {keepalive['timezone']})"
        proxy = [] if profile["server"]["unauthenticated"] else secret_infos(profile["secrets"]["proxy_auth"])
        assert deploy.keep_warm.info().secrets == proxy
    elif keepalive["mode"] == "autoscaler":
        assert deploy.keep_warm.info().schedule == "Cron('*/5 * * * *', UTC)"
        window = keepalive["window"]
        assert (deploy.KEEPALIVE_DAYS, deploy.KEEPALIVE_START, deploy.KEEPALIVE_END) == (
            window["days"],
            window["start"],
            window["end"],
        )
        assert deploy.KEEPALIVE_LEAD == deployment.keepalive_lead_s
        assert not hasattr(deploy, "ENABLE_KEEPALIVE_CRON")
    else:
        assert not hasattr(deploy, "keep_warm") and not hasattr(deploy, "ENABLE_KEEPALIVE_CRON")


@pytest.mark.parametrize("name", PROFILES)
def test_the_command_is_the_planned_argv_and_the_guide_constants_exist(name):
    deployment = check(name).deployment
    deploy = load_module(name)
    functions = ["download_model", "verify_setup", "main", "Server"]
    if deployment.engine == "vllm":
        assert deploy._build_vllm_cmd() == deployment.argv
        assert deploy._build_vllm_cmd("k")[-2:] == ["--api-key", "k"]
        constants = ("VLLM_VERSION", "VLLM_IMAGE")
    else:
        assert deploy._build_sglang_cmd() == deployment.argv
        assert deploy._build_sglang_cmd("k")[-2:] == ["--api-key", "k"]
        compile_cmd = deploy._build_sglang_cmd(command=["python3", "-m", "sglang.compile_deep_gemm"])
        assert compile_cmd == deployment.compile_argv
        constants = ("SGLANG_VERSION", "SGLANG_IMAGE")
        functions += ["compile_deepgemm"] if derived.precompiles_deepgemm(deployment.profile) else []
    for constant in ("MODEL_REPO", "MODEL_NAME", "MODEL_PATH", "GPU_TYPE", "GPU_COUNT", "PORT", *constants):
        assert hasattr(deploy, constant), constant
    for function in functions:
        assert hasattr(deploy, function), function


def test_b200_prod_carries_every_guide_value_or_its_correction():
    deploy = load_module("b200-prod")
    cmd = deploy._build_sglang_cmd()
    flags = cmd[len(deploy.SERVE_COMMAND) :]
    pairs = dict(zip(flags, flags[1:], strict=False))
    expected = {
        "--model-path": "/model-cache/GLM-5.1-FP8",
        "--served-model-name": "glm-5.1",
        "--tp-size": "8",  # the guide's `--tp` abbreviation, canonical
        "--host": "0.0.0.0",
        "--port": "8000",
        "--ep-size": "1",
        "--attention-backend": "nsa",
        "--nsa-decode-backend": "trtllm",
        "--nsa-prefill-backend": "trtllm",
        "--moe-runner-backend": "flashinfer_trtllm",
        "--speculative-algorithm": "EAGLE",
        "--speculative-num-steps": "3",
        "--speculative-eagle-topk": "1",
        "--speculative-num-draft-tokens": "4",
        "--reasoning-parser": "glm45",
        "--tool-call-parser": "glm47",
        "--mem-fraction-static": "0.88",
        "--max-running-requests": "48",
        "--max-prefill-tokens": "32768",
        "--context-length": "65536",  # correction of --max-total-tokens 65536 (docs/sources.md#max-total-tokens)
        "--watchdog-timeout": "1200",
        "--kv-cache-dtype": "bfloat16",  # correction: explicit BF16 KV (docs/sources.md#kv-dtype-default)
    }
    for option, value in expected.items():
        assert pairs[option] == value, option
    for flag in ("--trust-remote-code", "--enable-flashinfer-allreduce-fusion", "--enable-metrics"):
        assert flag in cmd
    assert "--max-total-tokens" not in cmd and "--tp" not in cmd
    assert (deploy.APP_NAME, deploy.SGLANG_IMAGE) == ("glm-5.1-production", "lmsysorg/sglang:v0.5.10.post1-cu130")
    assert deploy.ENGINE_ENV["SGLANG_ENABLE_SPEC_V2"] == "1"
    assert deploy.ENGINE_ENV["HF_XET_HIGH_PERFORMANCE"] == "1"
    server = deploy.Server.info()
    told = modal_told(deploy.Server._get_service_function())["autoscaler_settings"]
    # The guide's max_inputs=20 and --max-running-requests 48, as @app.server takes them.
    assert (
        told.target_concurrency_float,
        deploy.Server._get_service_function().info().concurrency_info.max_inputs,
    ) == (
        20,
        48,
    )
    exit_grace = shutdown_needs(check("b200-prod").profile.data)
    assert (server.unauthenticated, server.exit_grace_period, server.startup_timeout) == (False, exit_grace, 1800)
    source = (ROOT / "generated" / "b200-prod" / "deploy.py").read_text()
    assert "min_containers=0" in source and "max_containers=3" in source
    assert "scaledown_window=15 * MINUTES" in source and "startup_timeout=30 * MINUTES" in source


def test_templates_see_only_the_view_model():
    """The only name a template reads is `v`, the view computed in deploygen/render/view.py."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "templates"))
    for template in sorted((ROOT / "templates").rglob("*.j2")):
        name = str(template.relative_to(ROOT / "templates"))
        ast_ = env.parse(env.loader.get_source(env, name)[0])
        assert jinja2.meta.find_undeclared_variables(ast_) <= {"v"}, name


def test_generated_file_compiles_under_the_image_python():
    for name in PROFILES:
        ast.parse((ROOT / "generated" / name / "deploy.py").read_text(), feature_version=(3, 11))
    assert sys.version_info >= (3, 11)


def test_formatting_is_cached_per_source_and_gives_the_same_bytes(tmp_path, monkeypatch):
    from deploygen.render.renderer import format_python

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    source = "x = {'a':1}\n"
    assert format_python([source]) == ['x = {"a": 1}\n']
    [cached] = (tmp_path / "deploygen" / "format").iterdir()
    assert cached.read_text() == 'x = {"a": 1}\n'
    # A second run reads the cache: what is there is what it returns, with no ruff process.
    cached.write_text("from the cache\n")
    assert format_python([source, "y  =  2\n"]) == ["from the cache\n", "y = 2\n"]


def render_child(tmp_path, body: str) -> str:
    return render_deployment(check(str(child(tmp_path, body))).deployment)


def test_a_comment_above_a_value_travels_to_the_same_value_in_the_file(tmp_path):
    source = render_child(
        tmp_path,
        "sglang:\n"
        "  # FP8 KV loses accuracy on GLM-5.1: https://github.com/sgl-project/sglang/issues/22671\n"
        "  kv-cache-dtype: bfloat16\n"
        "scaling:\n"
        "  # Bursty traffic: keep a replica 20 minutes.\n"
        "  scaledown_window: 1200\n"
        "image:\n"
        "  env:\n"
        "    # Our own switch.\n"
        "    MY_SWITCH: '1'\n",
    )
    assert (
        "        # FP8 KV loses accuracy on GLM-5.1: https://github.com/sgl-project/sglang/issues/22671\n"
        '        "--kv-cache-dtype", "bfloat16",\n'
    ) in source
    assert "    # Bursty traffic: keep a replica 20 minutes.\n    scaledown_window=20 * MINUTES,\n" in source
    assert '    # Our own switch.\n    "MY_SWITCH": "1",\n' in source
    # The child replaced the base's value, and with it the base's comment.
    assert "15 minutes idle before scale-in" not in source


def test_a_changed_comment_changes_only_its_lines_of_the_render(tmp_path):
    before = render_child(tmp_path, "sglang:\n  # reason one\n  mem-fraction-static: 0.85\n")
    after = render_child(tmp_path, "sglang:\n  # reason two\n  mem-fraction-static: 0.85\n")
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b and "digest" not in a
    ]
    assert changed == [("        # reason one", "        # reason two")]


def test_a_comment_cannot_break_out_of_its_line(tmp_path):
    hostile = 'end """ \' \\ \t tab \u202e bidi \u00e9'
    source = render_child(tmp_path, f"sglang:\n  # {hostile}\n  mem-fraction-static: 0.85\n")
    tree = ast.parse(source)
    assert compile(tree, "deploy.py", "exec")
    assert '        # end """ \' \\ \\t tab \\u202e bidi \u00e9\n' in source
    cmd_lines = source.split("def _build_sglang_cmd")[1].split("# fmt: on")[0]
    assert '"--mem-fraction-static", "0.85",' in cmd_lines


def load_render(tmp_path, source: str):
    path = tmp_path / "deploy.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"deploy_{tmp_path.name.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def served_function(deploy, interface: str):
    return (
        deploy.Server._get_service_function() if interface == "server" else deploy.Server._get_class_service_function()
    )


@pytest.mark.parametrize("interface", ["server", "cls"])
def test_container_cpu_memory_and_disk_reach_modal_as_set(tmp_path, interface):
    body = (
        f"server:\n  interface: {interface}\n  cpu: [8, 16]\n  memory: 98304\n  ephemeral_disk: 524288\n"
        "scaling:\n  max_inputs: 16\n"
    )
    source = render_deployment(check(str(child(tmp_path, body, parent="smoke"))).deployment)
    assert "    cpu=(8, 16),\n    memory=98304,\n    ephemeral_disk=524288,\n" in source
    info = served_function(load_render(tmp_path, source), interface).info()
    assert (info.cpu, info.memory_mib, info.ephemeral_disk_mib) == ((8, 16), 98304, 524288)


@pytest.mark.parametrize("interface", ["server", "cls"])
def test_an_unset_container_reservation_is_left_to_modal(tmp_path, interface):
    source = render_deployment(
        check(str(child(tmp_path, f"server:\n  interface: {interface}\n", parent="smoke"))).deployment
    )
    info = served_function(load_render(tmp_path, source), interface).info()
    assert (info.cpu, info.memory_mib, info.ephemeral_disk_mib) == (None, None, None)


@pytest.mark.parametrize("interface", ["server", "cls"])
def test_max_containers_unset_means_no_cap_as_on_modal(tmp_path, interface):
    body = f"server:\n  interface: {interface}\nscaling:\n  max_inputs: 16\n  max_containers: null\n"
    source = render_deployment(check(str(child(tmp_path, body, parent="smoke"))).deployment)
    assert "max_containers=" not in source
    told = modal_told(served_function(load_render(tmp_path, source), interface))
    assert told["max_containers"] is None
    assert told["autoscaler_settings"].HasField("max_containers") is False


@pytest.mark.parametrize("interface", ["server", "cls"])
def test_a_profile_with_no_compile_step_and_no_cache_volume_mounts_only_the_weights(tmp_path, interface):
    body = f"server:\n  interface: {interface}\nscaling:\n  max_inputs: 16\nvolumes:\n  compile_cache: null\n"
    deployment = check(str(child(tmp_path, body, parent="smoke"))).deployment
    source = render_deployment(deployment)
    assert "cache_volume" not in source and "CACHE_VOLUME" not in source and "CACHE_MOUNT" not in source
    assert (
        "# No compile step and no compile-cache volume (volumes.compile_cache unset): JIT caches\n"
        "# stay on the container's disk and each cold start rebuilds them.\n"
        'CACHE_DIR = f"/root/.cache/jit/{GPU_ARCH}-{IMAGE_SLUG}"\n'
    ) in source
    deploy = load_render(tmp_path, source)
    weights = deployment.profile.data["volumes"]["weights"]
    info = served_function(deploy, interface).info()
    assert {path: mount.name for path, mount in info.volumes.items()} == {weights["mount"]: weights["name"]}
    assert {path: mount.name for path, mount in deploy.verify_setup.info().volumes.items()} == {
        weights["mount"]: weights["name"]
    }


def test_a_cluster_reserves_the_container_resources_on_every_node_and_may_have_no_cap(tmp_path):
    body = "server:\n  cpu: 32\n  memory: 524288\nscaling:\n  max_containers: null\n"
    deployment = check(str(child(tmp_path, body, parent="glm-5.1-fp8-h100x16"))).deployment
    source = render_deployment(deployment)
    assert "max_containers=" not in source
    function = load_render(tmp_path, source).Server._get_service_function()
    info = function.info()
    assert (info.cluster_info.size, info.cpu, info.memory_mib) == (deployment.profile.data["gpu"]["nodes"], 32, 524288)
    assert modal_told(function)["max_containers"] is None
