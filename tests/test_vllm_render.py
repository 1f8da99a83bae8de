"""The vLLM render: it imports with the real modal, carries the profile's values, and its `vllm serve`
command is accepted by the pinned vLLM's parser rebuilt from its catalog (abbreviations off)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import modal
import pytest

from conftest import ROOT, run_cli
from deploygen.load import deployable_profiles
from deploygen.pipeline import check
from deploygen.render import render_deployment

VLLM_PROFILES = [p.name for p in deployable_profiles() if p.data.get("engine") == "vllm"]


def load_cli():
    # Loaded by path under a private name: importing it as `vllm` would shadow a real vLLM in this process.
    path = ROOT / "tests" / "standin" / "vllm" / "_standin.py"
    spec = importlib.util.spec_from_file_location("standin_vllm_parser", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STANDIN = load_cli()


def load_render(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rebuilt_parser(version: str):
    catalog = json.loads((ROOT / "schema" / "vllm" / f"{version}.json").read_text())
    return STANDIN.build_parser(catalog, allow_abbrev=False)


def test_a_vllm_profile_is_shipped():
    assert VLLM_PROFILES, "profiles/ should ship at least one `engine: vllm` profile"


@pytest.mark.parametrize("name", VLLM_PROFILES)
def test_the_render_imports_with_modal_and_its_argv_parses_with_the_values_of_the_profile(name):
    assert modal.__version__ == "1.6.4"
    checked = check(name)
    data = checked.profile.data
    deploy = load_render(ROOT / "generated" / name / "deploy.py", f"deploy_vllm_{name.replace('-', '_')}")
    cmd = deploy._build_vllm_cmd("the-key")
    assert cmd[:3] == ["vllm", "serve", data["model"]["path"]]
    args = rebuilt_parser(data["image"]["vllm_version"]).parse_args(cmd[2:])
    assert args.model_tag == data["model"]["path"]
    assert args.served_model_name == [data["model"]["name"]]
    assert args.port == data["server"]["port"]
    assert args.api_key == ["the-key"]
    tp = data["vllm"].get("tensor-parallel-size", data["gpu"]["count"])
    assert args.tensor_parallel_size == tp
    catalog = checked.catalog
    for option, value in data["vllm"].items():
        flag = catalog.by_option[f"--{option.split('.')[0]}"]
        parsed = getattr(args, flag.dest)
        if "." in option:
            assert parsed[option.split(".", 1)[1]] == value, option
        elif isinstance(value, dict):
            assert parsed == value, option
        elif flag.takes_value:
            assert parsed == pytest.approx(value) if isinstance(value, float) else str(parsed) == str(value), option
        else:
            assert parsed is value, option
    assert deploy.VLLM_IMAGE == data["image"]["vllm_image"]
    assert deploy.Server is not None and deploy.app.name == data["app"]["name"]


def test_negative_dotted_and_list_values_render_as_vllm_parses_them(tmp_path):
    base = ROOT / "profiles" / f"{VLLM_PROFILES[0]}.yaml"
    child = tmp_path / "child.yaml"
    child.write_text(
        f"extends: {base}\n"
        "vllm:\n"
        "  enable-prefix-caching: false\n"
        "  compilation-config.cudagraph_mode: FULL_AND_PIECEWISE\n"
    )
    checked = check(str(child))
    argv = checked.deployment.argv
    assert "--disable-prefix-caching" in argv
    assert argv[argv.index("--compilation-config.cudagraph_mode") + 1] == "FULL_AND_PIECEWISE"
    source = render_deployment(checked.deployment)
    deploy_path = tmp_path / "deploy.py"
    deploy_path.write_text(source)
    deploy = load_render(deploy_path, "deploy_vllm_child")
    args = rebuilt_parser(checked.profile.data["image"]["vllm_version"]).parse_args(deploy._build_vllm_cmd()[2:])
    assert args.enable_prefix_caching is False
    assert args.compilation_config == {"cudagraph_mode": "FULL_AND_PIECEWISE"}


def test_diff_shows_the_engine_switch():
    profile = VLLM_PROFILES[0]
    result = run_cli("diff", "h200", profile)
    assert result.returncode == 0, result.stderr
    values = result.stdout.split("Resolved values that differ")[1]
    assert "\n  engine: sglang -> vllm  (schema/profile.schema.json (default) -> profiles/" in values
    assert "-def _build_sglang_cmd(" in result.stdout and "+def _build_vllm_cmd(" in result.stdout


def test_the_planner_compares_the_two_engines():
    profile = VLLM_PROFILES[0]
    result = run_cli("plan", "h200", profile)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["h200", profile]
    assert lines[1].startswith("deployment") and "SGLang 0.5.10.post1" in lines[1] and "vLLM 0.33.0" in lines[1]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "(SGLang max-running-requests)" in rows["max_running_requests"]
    assert "(vLLM max-num-seqs)" in rows["max_running_requests"]
    assert "max-model-len (per-request ceiling)" in rows["context_length"]
