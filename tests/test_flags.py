"""SGLang flags: every option and value is checked against the catalog of the pinned SGLang version."""

from __future__ import annotations

import argparse
import json

import pytest

from conftest import ROOT, child, run_cli
from deploygen.errors import UserError
from deploygen.load import deployable_profiles
from deploygen.pipeline import check
from deploygen.sglang.catalog import Catalog, load_catalog
from deploygen.validate.flags import argv_problems, entry_point_problems

# Messages show shipped profiles relative to the working directory, as for a user in the checkout.
pytestmark = pytest.mark.usefixtures("in_repository")

PROFILES = [p.name for p in deployable_profiles()]
# The SGLang profiles; vLLM's commands are parsed by the rebuilt vLLM parser in test_vllm_render.py.
SGLANG_PROFILES = [p.name for p in deployable_profiles() if p.data.get("engine", "sglang") == "sglang"]
# GLM-5.1 on B200 with SGLang 0.5.23 and its own flag names, built on the shipped base.
SGLANG_0_5_23 = """\
gpu: {type: B200, count: 8}
image:
  sglang_image: lmsysorg/sglang:v0.5.23-cu130
  sglang_version: 0.5.23
volumes:
  compile_cache: {name: glm51-deepgemm-cache, mount: /dg-cache}
sglang:
  attention-backend: dsa
  dsa-decode-backend: trtllm
  dsa-prefill-backend: trtllm
  mem-fraction-static: 0.88
"""


def on_0_5_23(tmp_path, sglang: str):
    """A 0.5.23 profile plus extra `sglang:` lines; the first of them is line 3 of the returned file."""
    base = tmp_path / "glm-0.5.23.yaml"
    base.write_text(f"schema_version: 1\nextends: {ROOT}/profiles/glm-5.1-base.yaml\n{SGLANG_0_5_23}")
    path = tmp_path / "child.yaml"
    path.write_text(f"extends: glm-0.5.23.yaml\nsglang:\n{sglang}")
    return path


def errors(path, strict: bool = False) -> list[str]:
    with pytest.raises(UserError) as caught:
        check(str(path), strict=strict)
    return [str(p) for p in caught.value.problems]


def flags_in(argv: list[str], option: str) -> list[str]:
    """The tokens after `option` up to the next option."""
    start = argv.index(option) + 1
    end = next((i for i in range(start, len(argv)) if argv[i].startswith("--")), len(argv))
    return argv[start:end]


def test_the_guides_command_on_0_5_23_is_rejected_with_the_renamed_flags(tmp_path):
    profile = child(
        tmp_path,
        "image:\n  sglang_image: lmsysorg/sglang:v0.5.23\n  sglang_version: 0.5.23\n",
        name="guide-on-latest",
    )
    result = run_cli("validate", str(profile))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        "profiles/b200-prod.yaml:25:3: error[sglang-unknown-flag]: sglang.nsa-decode-backend: "
        "SGLang 0.5.23 has no option --nsa-decode-backend\n"
        "    hint: renamed since SGLang 0.5.14: use `dsa-decode-backend`\n"
    ) in result.stderr
    assert (
        "profiles/b200-prod.yaml:26:3: error[sglang-unknown-flag]: sglang.nsa-prefill-backend: "
        "SGLang 0.5.23 has no option --nsa-prefill-backend\n"
        "    hint: renamed since SGLang 0.5.14: use `dsa-prefill-backend`\n"
    ) in result.stderr


def test_the_tp_abbreviation_is_rejected_and_the_full_option_named(tmp_path):
    profile = child(tmp_path, "sglang:\n  tp: 8\n")
    assert errors(profile) == [
        f"{profile}:4:3: error[sglang-unknown-flag]: sglang.tp: SGLang 0.5.10 has no option --tp\n"
        "    hint: `tp` is only an abbreviation; write the full option `tp-size`"
    ]


def test_a_word_for_an_integer_flag_is_a_type_error_not_a_crash(tmp_path):
    profile = child(tmp_path, 'sglang:\n  max-running-requests: "many"\n')
    assert errors(profile) == [
        f"{profile}:4:3: error[sglang-flag-value]: sglang.max-running-requests: "
        "--max-running-requests takes an integer, not 'many'"
    ]


def test_a_value_outside_the_choices_suggests_the_closest_one(tmp_path):
    profile = child(tmp_path, "sglang:\n  kv-cache-dtype: bf61\n")
    assert errors(profile) == [
        f"{profile}:4:3: error[sglang-flag-value]: sglang.kv-cache-dtype: --kv-cache-dtype 'bf61' is not one of "
        "auto, fp8_e5m2, fp8_e4m3, bf16, bfloat16, fp4_e2m1 (did you mean 'bf16'?)"
    ]


def test_a_bare_flag_takes_true_or_false_not_a_string(tmp_path):
    profile = child(tmp_path, 'sglang:\n  enable-metrics: "yes"\n')
    assert errors(profile) == [
        f"{profile}:4:3: error[sglang-flag-value]: sglang.enable-metrics: "
        "--enable-metrics is a bare flag: write `true` (or `false` to leave it out), not 'yes'"
    ]


def test_a_bare_flag_set_to_false_is_left_out_of_the_command(tmp_path):
    argv = check(str(child(tmp_path, "sglang:\n  enable-metrics: false\n"))).deployment.argv
    assert "--enable-metrics" not in argv


def test_a_boolean_optional_flag_writes_its_no_form_for_false(tmp_path):
    off = check(str(child(tmp_path, "sglang:\n  experts-shared-outer-loras: false\n", name="off"))).deployment
    on = check(str(child(tmp_path, "sglang:\n  experts-shared-outer-loras: true\n", name="on"))).deployment
    assert "--no-experts-shared-outer-loras" in off.argv and "--experts-shared-outer-loras" not in off.argv
    assert "--experts-shared-outer-loras" in on.argv and "--no-experts-shared-outer-loras" not in on.argv


def test_a_boolean_optional_flag_given_a_string_names_its_no_form(tmp_path):
    profile = child(tmp_path, 'sglang:\n  experts-shared-outer-loras: "no"\n')
    assert errors(profile) == [
        f"{profile}:4:3: error[sglang-flag-value]: sglang.experts-shared-outer-loras: "
        "--experts-shared-outer-loras takes true or false (false writes --no-experts-shared-outer-loras), not 'no'"
    ]


def test_a_list_flag_renders_one_token_per_item_and_passes_the_argv_check(tmp_path):
    deployment = check(str(child(tmp_path, "sglang:\n  cuda-graph-bs: [1, 2, 4]\n"))).deployment
    assert flags_in(deployment.argv, "--cuda-graph-bs") == ["1", "2", "4"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("8", "takes a list of values, not 8"),
        ("[1, x]", "takes an integer, not 'x'"),
        ("[]", "takes at least one value, not an empty list"),
    ],
)
def test_a_list_flag_rejects_a_scalar_a_bad_item_and_an_empty_list(tmp_path, value, reason):
    profile = child(tmp_path, f"sglang:\n  cuda-graph-bs: {value}\n")
    assert errors(profile) == [
        f"{profile}:4:3: error[sglang-flag-value]: sglang.cuda-graph-bs: --cuda-graph-bs {reason}"
    ]


def test_a_json_flag_must_hold_json(tmp_path):
    profile = child(tmp_path, "sglang:\n  preferred-sampling-params: '{temperature: 0.6}'\n")
    assert errors(profile) == [
        f"{profile}:4:3: error[sglang-flag-value]: sglang.preferred-sampling-params: --preferred-sampling-params "
        "takes JSON, and '{temperature: 0.6}' is not JSON (Expecting property name enclosed in double quotes at "
        "character 1)"
    ]


def test_a_value_that_argparse_would_read_as_an_option_is_rejected(tmp_path):
    profile = child(tmp_path, "sglang:\n  chat-template: --port\n")
    assert errors(profile) == [
        f"{profile}:4:3: error[sglang-flag-value]: sglang.chat-template: --chat-template value '--port' starts "
        "with '-', so SGLang's parser would read it as an option"
    ]


def test_a_deprecated_flag_on_0_5_23_warns_with_its_replacement_and_fails_strict(tmp_path):
    flag = load_catalog("0.5.23").by_option["--enable-flashinfer-allreduce-fusion"]
    assert flag.deprecated
    assert flag.help.startswith("(Deprecated: use --flashinfer-allreduce-fusion-backend=auto)")
    profile = on_0_5_23(tmp_path, "  enable-flashinfer-allreduce-fusion: true\n")
    expected = (
        f"{profile}:3:3: warning[sglang-deprecated-flag]: sglang.enable-flashinfer-allreduce-fusion: "
        "--enable-flashinfer-allreduce-fusion is deprecated in SGLang 0.5.23\n"
        "    hint: use `flashinfer-allreduce-fusion-backend: auto`"
    )
    assert expected in [str(w) for w in check(str(profile)).findings]
    assert errors(profile, strict=True) == [expected]


def test_attention_backend_nsa_on_0_5_23_warns_that_it_is_a_deprecated_alias(tmp_path):
    """The catalog lists `nsa` as a plain choice (argparse cannot say more); it is only a deprecated alias of
    `dsa` there (docs/sources.md#flag-renames), recorded in data/sglang-deprecated-values.yaml."""
    flag = load_catalog("0.5.23").by_option["--attention-backend"]
    assert "nsa" in flag.choices and "dsa" in flag.choices
    profile = on_0_5_23(tmp_path, "  attention-backend: nsa\n")
    expected = (
        f"{profile}:3:3: warning[sglang-deprecated-value]: sglang.attention-backend: --attention-backend nsa "
        "is a deprecated alias in SGLang 0.5.23 (since 0.5.14)\n"
        "    hint: use `attention-backend: dsa`"
    )
    assert [str(w) for w in check(str(profile)).findings if w.code == "sglang-deprecated-value"] == [expected]
    assert errors(profile, strict=True) == [expected]


def test_attention_backend_nsa_on_0_5_10_is_the_current_name(tmp_path):
    profile = child(tmp_path, "sglang:\n  attention-backend: nsa\n")
    assert [w for w in check(str(profile)).findings if w.code == "sglang-deprecated-value"] == []


def test_a_flag_whose_sglang_action_raises_at_launch_is_an_error(tmp_path):
    profile = child(tmp_path, "sglang:\n  enable-piecewise-cuda-graph: true\n")
    assert errors(profile) == [
        f"{profile}:4:3: error[sglang-removed-flag]: sglang.enable-piecewise-cuda-graph: SGLang 0.5.10 refuses "
        "--enable-piecewise-cuda-graph at launch: Deprecated: Piecewise cuda graph is enabled by default. "
        "Use --enforce-piecewise-cuda-graph to skip auto-disable conditions.\n"
        "    hint: remove it"
    ]
    assert check(str(child(tmp_path, "sglang:\n  enable-piecewise-cuda-graph: false\n", name="off")))


@pytest.mark.parametrize(
    ("flag", "value", "instead"),
    [
        ("port", "9000", "server.port"),
        ("api-key", "sk-local", "secrets.api_key (the name of a Modal secret holding API_KEY)"),
        ("model-path", "/weights", "model.path"),
        ("nnodes", "2", "gpu.nodes"),
        (
            "dist-init-addr",
            "10.0.0.1:20000",
            "server.rendezvous_port (rank 0's cluster address is known only at start)",
        ),
    ],
)
def test_a_flag_the_generator_derives_points_to_the_section_that_sets_it(tmp_path, flag, value, instead):
    profile = child(tmp_path, f"sglang:\n  {flag}: {value}\n")
    assert errors(profile) == [
        f"{profile}:4:3: error[sglang-derived-flag]: sglang.{flag}: --{flag} is set by the generator\n"
        f"    hint: set {instead} instead"
    ]


def test_two_aliases_of_one_option_are_rejected(tmp_path):
    profile = child(tmp_path, "sglang:\n  tp-size: 8\n  tensor-parallel-size: 8\n")
    assert errors(profile) == [
        f"{profile}:5:3: error[sglang-duplicate-flag]: sglang.tensor-parallel-size: "
        "--tensor-parallel-size sets the same option as --tp-size\n"
        "    hint: keep one of them"
    ]


def test_the_argv_check_rejects_an_abbreviation_token():
    problems = argv_problems(["--tp", "8"], load_catalog("0.5.10"))
    assert str(problems[0]) == (
        "error[sglang-argv]: launch_server of SGLang 0.5.10 has no option '--tp' (abbreviations are never accepted)"
    )


def test_the_argv_check_takes_timeout_only_for_compile_deep_gemm():
    catalog = load_catalog("0.5.10")
    assert argv_problems(["--timeout", "3600"], catalog, compile_step=True) == []
    assert [str(p) for p in argv_problems(["--timeout", "3600"], catalog)][0] == (
        "error[sglang-argv]: launch_server of SGLang 0.5.10 has no option '--timeout' "
        "(abbreviations are never accepted)"
    )


def test_the_argv_check_reads_every_item_of_a_list_flag():
    catalog = load_catalog("0.5.10")
    assert argv_problems(["--cuda-graph-bs", "1", "2", "4", "--enable-metrics"], catalog) == []
    assert [str(p) for p in argv_problems(["--kv-cache-dtype", "--enable-metrics"], catalog)] == [
        "error[sglang-argv]: --kv-cache-dtype needs a value"
    ]


# argparse types of the catalog's flags; any other type takes the string as it is.
TYPES = {"int": int, "float": float, "human_readable_int": int, "loads": json.loads, "json_list_type": json.loads}


def real_parser(catalog: Catalog, compile_step: bool = False) -> argparse.ArgumentParser:
    """SGLang's parser rebuilt from the catalog, with abbreviations off as the generator assumes."""
    parser = argparse.ArgumentParser(prog="sglang", allow_abbrev=False, add_help=False, exit_on_error=False)
    for flag in (*catalog.flags, *(catalog.compile_only if compile_step else ())):
        if flag.is_boolean_optional:
            positive = [o for o in flag.option_strings if not o.startswith("--no-")]
            parser.add_argument(*positive, dest=flag.dest, action=argparse.BooleanOptionalAction)
        elif not flag.takes_value:
            parser.add_argument(*flag.option_strings, dest=flag.dest, action="store_true")
        else:
            kind = TYPES.get((flag.type or "str").rsplit(".", 1)[-1], str)
            parser.add_argument(*flag.option_strings, dest=flag.dest, nargs=flag.nargs, type=kind, choices=flag.choices)
    return parser


def test_the_rebuilt_parser_refuses_abbreviations():
    _, left_over = real_parser(load_catalog("0.5.10")).parse_known_args(["--tp", "8"])
    assert left_over == ["--tp", "8"]


@pytest.mark.parametrize("name", SGLANG_PROFILES)
def test_every_shipped_command_parses_with_the_real_parser_to_the_profile_values(name):
    deployment = check(name).deployment
    catalog = deployment.catalog
    start, problems = entry_point_problems(deployment.argv, deployment.profile.data["image"]["sglang_version"])
    assert problems == [] and start in (2, 3)
    args, left_over = real_parser(catalog).parse_known_args(deployment.argv[start:])
    assert left_over == []
    for option, value in deployment.profile.data["sglang"].items():
        assert getattr(args, catalog.by_option[f"--{option}"].dest) == value, option
    assert args.model_path == deployment.profile.data["model"]["path"]
    assert args.port == deployment.profile.data["server"]["port"]
    compile_args, left_over = real_parser(catalog, compile_step=True).parse_known_args(
        [*deployment.compile_argv[3:], "--timeout", "3600"]
    )
    assert left_over == [] and compile_args.timeout == 3600


# --- the entry point -------------------------------------------------------------------------------------


def _release(ships_serve: bool) -> str:
    """A catalogued release that does (or does not) ship the `sglang` script, read from the index."""
    from deploygen.sglang.catalog import available_versions, ships_sglang_serve

    return next(v for v in available_versions() if ships_sglang_serve(v) == ships_serve)


def test_the_argv_check_accepts_sglang_serve_and_launch_server_where_the_release_ships_them():
    version = _release(ships_serve=True)
    assert entry_point_problems(["sglang", "serve", "--model-path", "/m"], version) == (2, [])
    assert entry_point_problems(["python3", "-m", "sglang.launch_server", "--model-path", "/m"], version) == (3, [])
    assert entry_point_problems(["python3", "-m", "sglang.launch_server"], _release(ships_serve=False)) == (3, [])


def test_the_argv_check_refuses_sglang_serve_for_a_release_without_the_sglang_script():
    from deploygen.sglang.catalog import entry_points

    version = _release(ships_serve=False)
    scripts = ", ".join(entry_points(version)["console_scripts"]) or "none"
    start, problems = entry_point_problems(["sglang", "serve", "--model-path", "/m"], version)
    assert start == 2 and [str(p) for p in problems] == [
        f"error[sglang-argv]: SGLang {version} has no `sglang serve` (its wheel's console scripts: {scripts}; "
        f"`sglang serve` comes with SGLang {_release(ships_serve=True)}): start it with "
        "`python3 -m sglang.launch_server`"
    ]
    start, problems = entry_point_problems(["python3", "-m", "sglang.serve", "--model-path", "/m"], version)
    assert start == 0 and [str(p) for p in problems] == [
        "error[sglang-argv]: 'python3 -m sglang.serve' does not start SGLang's server: use `sglang serve` or "
        "`python3 -m sglang.launch_server`"
    ]


@pytest.mark.parametrize("ships_serve", [True, False])
def test_the_render_starts_sglang_with_the_entry_point_its_release_ships(tmp_path, ships_serve):
    from deploygen.sglang.catalog import catalog_version_for

    version = _release(ships_serve)
    # The oldest release of either kind, under smoke's flags (which every catalog has).
    path = child(
        tmp_path,
        f"image:\n  sglang_image: lmsysorg/sglang:v{version}-cu129\n  sglang_version: {version}\n",
        parent="smoke",
    )
    deployment = check(str(path)).deployment
    assert deployment.catalog.version == catalog_version_for(version)
    expected = ["sglang", "serve"] if ships_serve else ["python3", "-m", "sglang.launch_server"]
    assert deployment.argv[: len(expected)] == expected and deployment.argv[len(expected)] == "--model-path"
    source = (tmp_path / "out").joinpath("deploy.py")
    assert run_cli("render", str(path), "--out", str(tmp_path / "out")).returncode == 0
    assert f"\nSERVE_COMMAND = {json.dumps(expected)}\n" in source.read_text()


@pytest.mark.parametrize(
    ("flag", "value", "replacement"),
    [
        ("cuda-graph-max-bs", 32, "cuda-graph-max-bs-decode"),
        ("mamba-scheduler-strategy", "extra_buffer", "mamba-radix-cache-strategy"),
    ],
)
def test_a_deprecated_alias_a_later_release_dropped_names_its_replacement(tmp_path, flag, value, replacement):
    profile = child(
        tmp_path,
        "image:\n  sglang_image: lmsysorg/sglang:v0.5.20-cu130\n  sglang_version: 0.5.20\n"
        f"sglang:\n  {flag}: {value}\n",
    )
    result = run_cli("validate", str(profile))
    assert result.returncode == 1
    assert (
        f"{profile}:7:3: error[sglang-unknown-flag]: sglang.{flag}: SGLang 0.5.20 has no option --{flag}\n"
        f"    hint: renamed since SGLang 0.5.14: use `{replacement}`\n"
    ) in result.stderr
