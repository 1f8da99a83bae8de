"""Public deployments written by others, as example profiles: the findings validate reports for each are
exactly the ones its header declares, each with why it is real (docs/examples.md).

Every `profiles/examples/*.yaml` is read here; adding one needs no change to this file. A header line
`# expect: SEVERITY[CODE] FIELD` declares one finding, and the comment lines indented below it say why it
is real; `# expect-wrong:` declares a finding the example's author judges wrong (a rule under correction),
so the example keeps passing until the rule is fixed and then fails, asking for the line to go.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

EXAMPLES_DIR = ROOT / "profiles" / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))
EXPECT = re.compile(r"^# (expect|expect-wrong): (error|warning|info)\[([a-z0-9-]+)\] (\S+)$")
FINDING = re.compile(
    r"^(?P<file>\S+?\.yaml)(?::\d+:\d+)?: (?P<severity>error|warning|info)\[(?P<code>[a-z0-9-]+)\]: (?P<field>\S+): "
)


def declared(path: Path) -> tuple[set[tuple[str, str, str]], list[str]]:
    """The findings an example declares, and its declarations that say nothing about why."""
    lines = path.read_text().splitlines()
    findings, unexplained = set(), []
    for number, line in enumerate(lines):
        match = EXPECT.match(line)
        if match:
            findings.add(match.group(2, 3, 4))
            following = lines[number + 1] if number + 1 < len(lines) else ""
            if not following.startswith("#   "):
                unexplained.append(line)
    return findings, unexplained


@pytest.fixture(scope="module")
def reported() -> dict[str, set[tuple[str, str, str]]]:
    """What `validate` reports for every example, in one real run of the command line."""
    result = run_cli("validate", *(str(path.relative_to(ROOT)) for path in EXAMPLES))
    assert "Traceback" not in result.stderr
    findings: dict[str, set[tuple[str, str, str]]] = {path.name: set() for path in EXAMPLES}
    for line in (result.stdout + result.stderr).splitlines():
        match = FINDING.match(line)
        if match:
            findings[Path(match["file"]).name].add((match["severity"], match["code"], match["field"]))
    return findings


def test_there_are_examples():
    assert EXAMPLES, "profiles/examples/ holds the public deployments (docs/examples.md)"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_an_example_cites_its_source_and_says_why_each_finding_is_real(path):
    header = path.read_text().split("\nschema_version:", 1)[0]
    assert re.search(r"https://\S+", header), f"{path.name}: cite the published deployment's URL in the header"
    _, unexplained = declared(path)
    assert not unexplained, f"{path.name}: say why, in '#   ' lines below each of {unexplained}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_an_example_reports_exactly_the_findings_it_declares(path, reported):
    expected, _ = declared(path)
    got = reported[path.name]
    assert got == expected, (
        f"{path.name}: reported but not declared {sorted(got - expected)}; "
        f"declared but not reported {sorted(expected - got)}"
    )


def test_examples_are_validated_but_never_rendered_into_generated():
    listed = run_cli("list").stdout
    example = EXAMPLES[0]
    assert example.stem not in listed
    result = run_cli("render", str(example.relative_to(ROOT)))
    assert result.returncode == 1
    assert not (ROOT / "generated" / example.stem).exists()


def validate_output(name: str) -> list[str]:
    return run_cli("validate", f"profiles/examples/{name}.yaml").stderr.splitlines()


def where(name: str, line: str) -> str:
    """FILE:LINE:COL of the example's first line that reads `line` (its key, at the key's column)."""
    path = EXAMPLES_DIR / f"{name}.yaml"
    number = path.read_text().splitlines().index(line) + 1
    return f"profiles/examples/{name}.yaml:{number}:{len(line) - len(line.lstrip()) + 1}"


def test_the_cookbooks_tp_is_refused_as_an_abbreviation_of_tp_size():
    lines = validate_output("glm-5.1-h200-cookbook")
    at = lines.index(
        f"{where('glm-5.1-h200-cookbook', '  tp: 8')}: error[sglang-unknown-flag]: sglang.tp: "
        "SGLang 0.5.23 has no option --tp"
    )
    assert lines[at + 1] == "    hint: `tp` is only an abbreviation; write the full option `tp-size`"


def test_the_cookbooks_speculative_algo_is_refused_as_an_abbreviation():
    name = "qwen3.5-397b-h200-cookbook"
    lines = validate_output(name)
    at = lines.index(
        f"{where(name, '  speculative-algo: NEXTN')}: error[sglang-unknown-flag]: "
        "sglang.speculative-algo: SGLang 0.5.9 has no option --speculative-algo"
    )
    assert lines[at + 1] == (
        "    hint: `speculative-algo` is only an abbreviation; write the full option `speculative-algorithm`"
    )


def test_the_docs_mem_fraction_is_refused_as_an_abbreviation_of_mem_fraction_static():
    name = "llama-3.1-8b-eagle3-h100-docs"
    lines = validate_output(name)
    at = lines.index(
        f"{where(name, '  mem-fraction: 0.6')}: error[sglang-unknown-flag]: sglang.mem-fraction: "
        "SGLang 0.5.10 has no option --mem-fraction"
    )
    assert lines[at + 1] == (
        "    hint: `mem-fraction` is only an abbreviation; write the full option `mem-fraction-static`"
    )


def test_a_model_card_recipe_still_emits_flags_its_release_deprecates(tmp_path):
    """Once its draft model is in the weights volume (the fix validate asks for), the card's recipe shows the
    flags its release keeps only as deprecated."""
    example = EXAMPLES_DIR / "qwen3.6-35b-dflash-b200-model-card.yaml"
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(
        f"schema_version: 1\nextends: {example}\n"
        "sglang:\n  speculative-draft-model-path: /model-cache/Qwen3.6-35B-A3B-DFlash\n"
    )
    result = run_cli("validate", str(fixed))
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    at = lines.index(
        f"{where(example.stem, '  enable-flashinfer-allreduce-fusion: true')}: warning[sglang-deprecated-flag]: "
        "sglang.enable-flashinfer-allreduce-fusion: --enable-flashinfer-allreduce-fusion is deprecated in SGLang 0.5.19"
    )
    assert lines[at + 1] == "    hint: use `flashinfer-allreduce-fusion-backend: auto`"
    at = lines.index(
        f"{where(example.stem, '  mamba-scheduler-strategy: extra_buffer')}: warning[sglang-deprecated-flag]: "
        "sglang.mamba-scheduler-strategy: --mamba-scheduler-strategy is deprecated in SGLang 0.5.19"
    )
    assert lines[at + 1] == "    hint: use `mamba-radix-cache-strategy`"


def test_a_draft_model_named_by_its_hub_id_is_caught_in_a_published_recipe():
    name = "qwen3.6-35b-dflash-b200-model-card"
    lines = validate_output(name)
    at = lines.index(
        f"{where(name, '  speculative-draft-model-path: z-lab/Qwen3.6-35B-A3B-DFlash')}: error[draft-model-offline]: "
        "sglang.speculative-draft-model-path: --speculative-draft-model-path 'z-lab/Qwen3.6-35B-A3B-DFlash' is not a "
        "path in the container: deploy.py starts SGLang with HF_HUB_OFFLINE=1 and download_model fetches model.repo "
        "only, so SGLang cannot download the draft model when it starts"
    )
    assert lines[at + 1] == (
        "    hint: download z-lab/Qwen3.6-35B-A3B-DFlash into the weights volume and give its path there "
        "(e.g. /model-cache/Qwen3.6-35B-A3B-DFlash)"
    )


def test_glm_5_on_b200_without_a_kv_dtype_is_told_it_gets_fp8_kv():
    lines = validate_output("glm-5-b200-cookbook")
    at = lines.index(
        f"{where('glm-5-b200-cookbook', 'sglang:')}: error[dsa-kv-dtype]: sglang.kv-cache-dtype: without an "
        "explicit --kv-cache-dtype SGLang picks FP8 KV for this DSA model on SM100"
    )
    assert lines[at + 1] == "    hint: set `kv-cache-dtype: bfloat16` (or fp8_e4m3 if you accept its accuracy loss)"
