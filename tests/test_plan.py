"""The capacity and cost planner: memory per GPU, concurrency, monthly cost, cold start, chart."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import pytest

from conftest import child, run_cli
from deploygen.cli import build_parser
from deploygen.errors import UserError
from deploygen.facts import gpu_facts
from deploygen.load import deployable_profiles
from deploygen.pipeline import check
from deploygen.plan.capacity import plan
from deploygen.plan.cost import CostModel, keepalive_coverage, prices
from deploygen.validate import derived


def planned(name: str, **kwargs):
    checked = check(name)
    return plan(checked.profile, checked.catalog, **kwargs)


def quantities(node, path=()):
    """Every {"value", "unit", "source"} in a plan, with its path."""
    if isinstance(node, dict):
        if "value" in node:
            yield path, node
            return
        for key, value in node.items():
            yield from quantities(value, (*path, key))


def run_plan(*argv: str) -> int:
    args = build_parser().parse_args(["plan", *argv])
    return args.func(args)


DEPLOYABLE = [profile.name for profile in deployable_profiles()]


@pytest.mark.parametrize("name", DEPLOYABLE)
def test_every_number_of_every_shipped_profile_is_finite_and_sourced(name):
    report = planned(name)
    found = list(quantities(report))
    assert len(found) > 40
    for path, quantity in found:
        where = ".".join(path)
        assert isinstance(quantity["source"], str) and quantity["source"].strip(), where
        assert isinstance(quantity["unit"], str), where
        value = quantity["value"]
        if value is None:
            assert quantity["why"], where
        elif not isinstance(value, str):
            assert isinstance(value, (int, float)) and math.isfinite(value), where
    assert json.loads(json.dumps(report)) == report


def test_b200_prod_memory_matches_the_hand_calculation():
    memory = planned("b200-prod")["memory"]
    assert memory["weights_per_gpu_gb"]["value"] == 712 / 8 == 89
    assert memory["static_pool_gb"]["value"] == pytest.approx(192 * 0.88) == 168.96
    assert memory["kv_pool_gb"]["value"] == pytest.approx(79.96)
    assert memory["headroom_gb"]["value"] == pytest.approx(192 - 168.96)
    assert memory["kv_bytes_per_token"]["value"] == 100_152
    assert memory["kv_pool_tokens"]["value"] == int(79.96e9 // 100_152) == 798_386
    assert memory["full_context_requests"]["value"] == 798_386 // 65_536 == 12
    assert memory["kv_cache_dtype"]["source"] == "sglang.kv-cache-dtype (profiles/glm-5.1-base.yaml:84)"
    assert (
        memory["weights_per_gpu_gb"]["source"]
        == "data/models/glm-5.1-fp8.yaml checkpoint_bytes 712,000,000,000 B / (tp 8 x pp 1)"
    )


def test_b200_prod_concurrency_is_what_app_server_admits_up_to_max_concurrency():
    # @app.server: a replica is added above target_concurrency 20, Modal answers 429 above max_concurrency 48,
    # and SGLang runs all 48 at once.
    concurrency = planned("b200-prod")["concurrency"]
    assert concurrency["target_concurrency"]["value"] == 20
    assert concurrency["max_concurrency"]["value"] == 48
    assert concurrency["max_concurrency"]["label"] == "@app.server max_concurrency (HTTP 429 above)"
    assert concurrency["effective_per_replica"]["value"] == min(48, 48) == 48
    assert concurrency["idle_sglang_slots"]["value"] == 0
    assert "queued_in_sglang" not in concurrency
    assert concurrency["fleet_ceiling"]["value"] == 3 * 48 == 144
    assert concurrency["scale_out_at"]["value"] == 20
    assert concurrency["scale_out_at"]["source"] == "scaling.target_concurrency (profiles/glm-5.1-base.yaml:58)"


def test_the_cls_form_is_capped_by_max_inputs_not_max_running_requests(tmp_path):
    concurrency = planned(str(child(tmp_path, "server:\n  interface: cls\n")))["concurrency"]
    assert "target_concurrency" not in concurrency
    assert concurrency["effective_per_replica"]["value"] == min(20, 48) == 20
    assert concurrency["idle_sglang_slots"]["value"] == 48 - 20 == 28
    assert concurrency["fleet_ceiling"]["value"] == 3 * 20 == 60
    assert concurrency["scale_out_at"]["value"] == 20
    assert concurrency["scale_out_at"]["source"] == "target_inputs unset: max_inputs"


def test_a_max_concurrency_above_the_engines_slots_queues_inside_it(tmp_path):
    concurrency = planned(str(child(tmp_path, "scaling:\n  max_concurrency: 64\n")))["concurrency"]
    assert concurrency["effective_per_replica"]["value"] == 48
    assert concurrency["queued_in_sglang"]["value"] == 64 - 48
    assert concurrency["queued_in_sglang"]["source"] == "max_concurrency - max-running-requests"


def test_without_max_concurrency_the_engines_slots_are_the_limit(tmp_path):
    profile = child(tmp_path, "scaling:\n  max_concurrency: null\n")
    concurrency = planned(str(profile))["concurrency"]
    assert concurrency["max_concurrency"]["value"] == 48
    assert concurrency["max_concurrency"]["source"] == (
        "max_concurrency unset: sglang.max-running-requests (profiles/glm-5.1-base.yaml:85)"
    )
    assert concurrency["fleet_ceiling"]["value"] == 3 * 48


def test_b200_prod_monthly_cost_of_the_three_strategies():
    cost = planned("b200-prod", active_hours=8)["cost"]
    replica = 6.25 * 8
    assert cost["model"]["replica_usd_per_hour"]["value"] == replica == 50
    scale_to_zero = cost["scale_to_zero"]
    assert scale_to_zero["active_usd"]["value"] == 8 * 30 * 6.25 * 8 == 12_000
    # One activation a day: the 900 s scaledown tail and a cold start (712 GB at 1 GB/s + 30 s warmup).
    assert scale_to_zero["idle_tail_usd"]["value"] == 30 * 900 / 3600 * replica == 375
    assert scale_to_zero["cold_start_usd"]["value"] == pytest.approx(30 * (712 + 30) / 3600 * replica, abs=0.01)
    assert scale_to_zero["total_usd"]["value"] == pytest.approx(12_000 + 375 + 309.17, abs=0.01)
    assert cost["always_on"]["total_usd"]["value"] == 720 * 6.25 * 8 == 36_000
    # No cron in b200-prod: the default */14 6-22 MON-FRI; June 2026 has 22 weekdays, each covered
    # from 06:00 to 22:56 + 15 min.
    covered = 22 * (17 + 11 / 60)
    assert cost["model"]["keepalive_covered_hours"]["value"] == pytest.approx(covered, abs=1e-3)
    assert cost["business_hours"]["total_usd"]["value"] == pytest.approx(covered * replica, abs=0.01)
    assert "default '*/14 6-22 * * MON-FRI'" in cost["model"]["keepalive_covered_hours"]["source"]
    per_activation = (900 + 742) / 3600
    assert cost["break_even"]["vs_business_hours_h"]["value"] == pytest.approx(covered / 30 - per_activation, abs=1e-3)
    assert cost["break_even"]["vs_always_on_h"]["value"] == pytest.approx(24 - per_activation, abs=1e-3)


def test_a_cluster_is_planned_at_its_tp_and_billed_per_node_hour_for_every_node():
    import yaml

    from deploygen.paths import DATA_DIR
    from deploygen.validate import derived

    checked = check("glm-5.1-fp8-h100x16")
    gpu = checked.profile.data["gpu"]
    report = plan(checked.profile, checked.catalog)
    memory, cost, concurrency = report["memory"], report["cost"], report["concurrency"]
    gpus = gpu["nodes"] * gpu["count"]
    checkpoint = derived.model_facts(checked.profile).checkpoint_gb
    assert memory["weights_per_gpu_gb"]["value"] == pytest.approx(checkpoint / gpus)
    assert memory["weights_per_gpu_gb"]["source"].endswith(f"/ (tp {gpus} x pp 1)")
    price = yaml.safe_load((DATA_DIR / "prices.yaml").read_text())["gpu_usd_per_hour"][gpu["type"]]
    assert cost["node_usd_per_hour"]["value"] == pytest.approx(price * gpu["count"])
    assert cost["model"]["replica_usd_per_hour"]["value"] == pytest.approx(price * gpus)
    assert cost["always_on"]["total_usd"]["value"] == pytest.approx(720 * price * gpus)
    # Modal counts containers; a replica is a cluster of gpu.nodes of them.
    scaling = checked.profile.data["scaling"]
    assert concurrency["max_replicas"]["value"] == scaling["max_containers"] // gpu["nodes"]
    assert concurrency["max_replicas"]["source"].endswith(f"/ gpu.nodes {gpu['nodes']}")
    # Each node reads the whole checkpoint, all at once: the load takes what it takes on one node.
    assert report["cold_start"]["weights_load_slow_s"]["value"] == checkpoint
    assert "on each of the 2 nodes in parallel" in report["cold_start"]["weights_load_slow_s"]["source"]
    assert any("3,200 Gbps per node" in note and "Only rank 0 receives HTTP" in note for note in report["notes"])


def test_a_cluster_without_rdma_names_the_slower_link(tmp_path):
    profile = child(
        tmp_path, "gpu:\n  type: H100\n  count: 8\n  nodes: 2\n  rdma: false\n", parent="glm-5.1-fp8-h100x16"
    )
    notes = planned(str(profile))["notes"]
    assert any("the private IPv6 network only, about 50 Gbps" in note for note in notes)


def test_the_autoscaler_keep_alive_is_priced_from_its_window_lead_and_tail():
    report = planned("b200-business-hours")
    model = report["cost"]["model"]
    lead = model["autoscaler_lead_s"]["value"]
    # The cold start (slow volume, kernels cached) in whole minutes, plus the 5-minute schedule.
    assert lead == -(-report["cold_start"]["total_slow_cached_s"]["value"] // 60) * 60 + 300
    # June 2026 has 22 weekdays; each keeps a replica from the lead before 08:00 Berlin time until
    # one schedule period plus scaledown_window after 20:00.
    covered = 22 * (12 + lead / 3600 + (300 + 900) / 3600)
    assert model["autoscaler_covered_hours"]["value"] == pytest.approx(covered, abs=1e-3)
    replica = model["replica_usd_per_hour"]["value"]
    autoscaler = report["cost"]["business_hours_autoscaler"]
    assert autoscaler["total_usd"]["value"] == pytest.approx(covered * replica, abs=0.01)


def test_the_ping_keep_alive_is_costed_with_its_own_cron(tmp_path):
    profile = child(
        tmp_path,
        "keepalive:\n  mode: ping\n  schedule: '*/10 7-18 * * MON-FRI'\nsecrets:\n  proxy_auth: proxy-token\n",
        parent="b200-business-hours",
    )
    source = planned(str(profile))["cost"]["model"]["keepalive_covered_hours"]["source"]
    assert source.startswith(f"keepalive.schedule ({profile}:5) in Europe/Berlin")


def test_a_pinned_region_multiplies_the_price_and_says_so(tmp_path):
    report = planned(str(child(tmp_path, "scaling:\n  region: us\n")))
    assert report["cost"]["region_multiplier"]["value"] == 1.5
    assert report["cost"]["always_on"]["total_usd"]["value"] == 720 * 6.25 * 8 * 1.5
    assert any("1.5x" in note for note in report["notes"])


def test_max_total_tokens_caps_the_pool_and_is_shared_by_running_requests(tmp_path):
    memory = planned(str(child(tmp_path, "sglang:\n  max-total-tokens: 65536\n")))["memory"]
    assert memory["pool_tokens_capped"]["value"] == 65_536
    assert memory["tokens_per_running_request"]["value"] == 65_536 // 48 == 1_365
    assert memory["full_context_requests"]["value"] == 1


def test_hybrid_model_kv_pool_leaves_room_for_linear_attention_state():
    memory = planned("qwen3.5-397b-b200x4")["memory"]
    pool = 192 * 0.8 - 400 / 4
    assert memory["kv_pool_gb"]["value"] == pytest.approx(pool)
    assert memory["mamba_full_memory_ratio"]["value"] == 0.9
    assert memory["full_attention_kv_pool_gb"]["value"] == pytest.approx(pool / 1.9, abs=1e-4)
    # 2 KV heads at TP 4: each GPU holds one of them.
    assert memory["kv_bytes_per_token"]["value"] == 30_720 // 2
    assert memory["kv_pool_tokens"]["value"] == int(pool / 1.9 * 1e9 // 15_360)


def test_a_cron_that_pings_less_often_than_the_scaledown_window_cold_starts_every_ping(tmp_path):
    # smoke's default cron pings every 14 minutes; its scaledown_window is 120 s.
    assert planned("smoke")["cost"]["model"]["keepalive_cold_starts"]["value"] == 22 * 17 * 5
    # b200-business-hours keeps a replica 900 s after a ping (and its cold start): an hourly ping comes too late.
    profile = child(
        tmp_path,
        "keepalive:\n  mode: ping\n  schedule: '0 8-19 * * MON-FRI'\nsecrets:\n  proxy_auth: proxy-token\n",
        parent="b200-business-hours",
    )
    report = planned(str(profile))
    assert report["cost"]["model"]["keepalive_cold_starts"]["value"] == 22 * 12
    assert (
        "The keep-alive cron pings less often than scaledown_window (900 s): the replica scales down between "
        "pings, so 264 pings a month are each a cold start. Ping more often than scaledown_window (or raise it) "
        "for the business-hours strategy to keep anything warm." in report["notes"]
    )


def plan_rows(*argv: str, capsys) -> list[str]:
    assert run_plan(*argv) == 0
    return [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]


def test_a_profile_without_keep_alive_shows_no_keep_alive_lines_and_calls_business_hours_hypothetical(capsys):
    assert check("smoke").profile.data["keepalive"]["mode"] == "off"
    rows = plan_rows("smoke", capsys=capsys)
    assert not [row for row in rows if "keep-alive cron" in row or "keepalive off" in row or "pings" in row]
    assert "Scale-to-zero (this profile)" in rows
    assert "Business-hours keep-alive (hypothetical: no keep-alive)" in rows
    assert (
        "3. Business hours is a hypothetical comparison: this profile has no keep-alive (keepalive.mode off); "
        "it is priced with the keepalive.schedule cron." in rows
    )


def test_a_profile_with_keep_alive_shows_its_keep_alive_lines(capsys):
    profiles = [check(name).profile for name in DEPLOYABLE]
    with_keepalive = [
        p.name for p in profiles if p.data["keepalive"]["mode"] != "off" and p.data["scaling"]["min_containers"] == 0
    ]
    assert with_keepalive, "no shipped profile has a keep-alive"
    rows = plan_rows(with_keepalive[0], capsys=capsys)
    assert "Business-hours keep-alive (this profile)" in rows
    assert any(row.startswith("hours the autoscaler keep-alive keeps a replica up ") for row in rows)
    assert (
        "3. Business hours: traffic falls inside the cron-covered hours first; the rest is billed like "
        "scale-to-zero. The cron's first ping each day is itself a cold start." in rows
    )


def test_a_bf16_model_has_no_deepgemm_compile_and_an_fp8_one_with_the_compile_step_does(capsys):
    facts = derived.model_facts(check("smoke").profile)
    assert facts.quantization == "none"
    rows = plan_rows("smoke", capsys=capsys)
    assert "JIT compile 0 s no DeepGEMM compile: its kernels are FP8 only (model quantization none)" in rows
    assert not [row for row in rows if "FP8" in row and "DeepGEMM" not in row]
    cold = planned("smoke")["cold_start"]
    assert cold["total_slow_uncached_s"]["value"] == cold["total_slow_cached_s"]["value"]
    fp8 = [
        p.name
        for p in (check(name).profile for name in DEPLOYABLE)
        if derived.precompiles_deepgemm(p) and derived.model_facts(p).quantization == "fp8"
    ]
    assert fp8, "no shipped profile compiles an FP8 model"
    rows = plan_rows(fp8[0], capsys=capsys)
    assert "JIT compile, no cache 900 s 12-15 min on first boot (docs/sources.md#third-party-cluster-report)" in rows


def test_the_chart_marks_the_profiles_own_strategy(tmp_path):
    chart = tmp_path / "smoke.svg"
    assert run_plan("smoke", "--chart", str(chart)) == 0
    # Text is drawn as paths; each label keeps its text in a comment.
    text = chart.read_text()
    assert "<!-- this profile: scale to zero -->" in text
    assert "<!-- scale-to-zero (this profile) -->" in text
    assert "(this profile) -->" not in text.replace("<!-- scale-to-zero (this profile) -->", "")


def test_keepalive_coverage_holds_each_cold_start_and_the_window_after_it():
    coverage = keepalive_coverage("0 9 * * *", "Europe/Berlin", 3600, cold_start_s=600)
    assert (coverage.stretches, coverage.ping_days) == (30, 30)
    assert coverage.hours == pytest.approx(30 * (600 + 3600) / 3600)


def test_active_hours_outside_a_day_are_refused():
    with pytest.raises(UserError, match="active hours per day must be between 0 and 24, not 25"):
        planned("b200-prod", active_hours=25)


def test_table_shows_each_number_with_its_source(capsys):
    assert run_plan("b200-prod") == 0
    out = capsys.readouterr().out
    rows = [" ".join(line.split()) for line in out.splitlines()]
    assert "KV tokens that fit 798,386 tokens KV pool bytes / KV bytes per token" in rows
    assert "fleet in-flight ceiling 144 requests replicas at most x effective per replica" in rows
    assert "always-on $36,000 always-on replicas x 720 h x replica price" in rows
    assert "traffic $12,000 8 h/day x 30 days x replica price" in rows


def test_json_output_parses_and_matches_the_plan(capsys):
    assert run_plan("b200-prod", "--json", "--active-hours", "6") == 0
    report = json.loads(capsys.readouterr().out)
    assert report == planned("b200-prod", active_hours=6)
    assert report["cost"]["scale_to_zero"]["active_usd"]["value"] == 6 * 30 * 50


def test_svg_chart_is_written_valid_and_byte_for_byte_reproducible(tmp_path, capsys):
    first, second = tmp_path / "one.svg", tmp_path / "two.svg"
    assert run_plan("b200-prod", "--chart", str(first)) == 0
    assert run_plan("b200-prod", "--chart", str(second)) == 0
    assert first.stat().st_size > 0
    assert ET.parse(first).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    assert first.read_bytes() == second.read_bytes()
    assert f"{first}: written" in capsys.readouterr().err


def test_png_chart_is_written(tmp_path):
    chart = tmp_path / "cost.png"
    assert run_plan("smoke", "--json", "--chart", str(chart)) == 0
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_chart_in_another_format_is_refused_before_planning(tmp_path):
    with pytest.raises(UserError, match=r"--chart .*cost\.pdf: write a \.svg or \.png file"):
        run_plan("b200-prod", "--chart", str(tmp_path / "cost.pdf"))
    assert not (tmp_path / "cost.pdf").exists()


def test_an_abstract_base_is_not_planned():
    with pytest.raises(UserError, match="glm-5.1-base.yaml is an abstract base"):
        run_plan("glm-5.1-base")


@pytest.mark.parametrize("name", DEPLOYABLE)
@pytest.mark.parametrize("hours", [0, 3.5, 8, 24])
def test_every_cost_in_the_plan_is_the_cost_models_formula(name, hours):
    report = planned(name, active_hours=hours)
    cost, model = report["cost"], CostModel.from_plan(report)
    assert cost["scale_to_zero"]["total_usd"]["value"] == pytest.approx(model.scale_to_zero(hours), abs=0.01)
    assert cost["business_hours"]["total_usd"]["value"] == pytest.approx(model.business_hours(hours), abs=0.01)
    assert cost["always_on"]["total_usd"]["value"] == pytest.approx(model.always_on(hours), abs=0.01)
    parts = sum(v["value"] for k, v in cost["scale_to_zero"].items() if k != "total_usd")
    assert parts == pytest.approx(cost["scale_to_zero"]["total_usd"]["value"], abs=0.02)


GPU_TYPES = sorted(gpu_facts())


@pytest.mark.parametrize("gpu_type", GPU_TYPES)
def test_plan_handles_every_gpu_of_the_data_file(tmp_path, gpu_type):
    facts = gpu_facts()[gpu_type]
    profile = child(
        tmp_path,
        f"gpu:\n  type: {gpu_type}\n  count: 1\nvolumes:\n  compile_cache:\n    name: probe-{facts['arch']}\n",
        parent="smoke",
    )
    checked = check(str(profile))
    report = plan(checked.profile, checked.catalog)
    assert report["deployment"]["arch"] == facts["arch"]
    assert report["memory"]["gpu_memory_gb"]["value"] == facts["memory_gb"]
    price = prices()["gpu_usd_per_hour"][gpu_type]
    cost = report["cost"]
    if price is None:
        assert cost == {
            "gpu_usd_per_hour": {
                "label": f"{gpu_type} price per GPU",
                "value": None,
                "unit": "USD/h",
                "source": "data/prices.yaml",
                "why": f"no public Modal price in data/prices.yaml gpu_usd_per_hour.{gpu_type}",
                "none": "unknown",
            }
        }
        assert (
            f"No cost: no public Modal price in data/prices.yaml gpu_usd_per_hour.{gpu_type}. `modal billing rates` "
            f"prints your workspace's rates; set gpu_usd_per_hour.{gpu_type} in data/prices.yaml to plan one."
        ) in report["notes"]
    else:
        assert cost["model"]["replica_usd_per_hour"]["value"] == pytest.approx(price)
        assert cost["always_on"]["total_usd"]["value"] == pytest.approx(720 * price)
    assert run_plan(str(profile)) == 0


def test_every_gpu_modal_offers_is_in_the_schema_and_priced_or_said_unpriced():
    from deploygen.validate.schema import profile_schema

    assert profile_schema()["$defs"]["gpu"]["properties"]["type"]["enum"] == list(gpu_facts())
    assert set(prices()["gpu_usd_per_hour"]) == set(gpu_facts())
    table = prices()["gpu_usd_per_hour"]
    # A pinned or upgradable name is billed as its base GPU (data/prices.yaml).
    assert table["H100!"] == table["H100"] and table["B200+"] == table["B200"]


def test_a_gpu_with_no_known_price_is_planned_without_a_cost_and_without_a_chart(tmp_path, capsys):
    unpriced = next(name for name, price in prices()["gpu_usd_per_hour"].items() if price is None)
    arch = gpu_facts()[unpriced]["arch"]
    body = f"gpu:\n  type: {unpriced}\n  count: 1\nvolumes:\n  compile_cache:\n    name: probe-{arch}\n"
    profile = child(tmp_path, body, parent="smoke")
    assert run_plan(str(profile)) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(f"  {unpriced} price per GPU"))
    assert line.split("  ")[-2:] == [
        f"unknown (no public Modal price in data/prices.yaml gpu_usd_per_hour.{unpriced})",
        "data/prices.yaml",
    ]
    assert "Scale-to-zero" not in out and "Costs are GPU only" not in out
    result = run_cli("plan", str(profile), "--chart", str(tmp_path / "cost.svg"))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: --chart: no public Modal price in data/prices.yaml gpu_usd_per_hour.{unpriced}, "
        "so there is no cost to chart\n"
    )
    assert not (tmp_path / "cost.svg").exists()


def test_no_max_containers_is_planned_as_no_cap_and_an_unbounded_worst_case(tmp_path, capsys):
    profile = child(tmp_path, "scaling:\n  max_containers: null\n", parent="smoke")
    checked = check(str(profile))
    report = plan(checked.profile, checked.catalog)
    why = "Modal starts as many replicas as traffic asks for"
    assert report["concurrency"]["max_replicas"] == {
        "label": "replicas at most",
        "value": None,
        "unit": "replicas",
        "source": "scaling.max_containers unset",
        "why": why,
        "none": "no cap",
    }
    assert report["concurrency"]["fleet_ceiling"]["value"] is None
    assert report["cost"]["ceiling"]["total_usd"]["value"] is None
    assert (
        "scaling.max_containers is unset: Modal caps neither the replicas nor the spend under load. "
        "Set it to bound both."
    ) in report["notes"]
    assert run_plan(str(profile)) == 0
    rows = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert f"replicas at most no cap ({why}) scaling.max_containers unset" in rows
    assert f"fleet in-flight ceiling unbounded ({why}) scaling.max_containers unset" in rows
    assert f"every replica up all month unbounded ({why}) scaling.max_containers unset" in rows


def test_a_capped_fleet_has_a_worst_case_of_every_replica_up_all_month():
    report = planned("smoke")
    rate = report["cost"]["model"]["replica_usd_per_hour"]["value"]
    replicas = report["concurrency"]["max_replicas"]["value"]
    ceiling = report["cost"]["ceiling"]["total_usd"]
    assert ceiling["value"] == pytest.approx(replicas * 720 * rate)
    assert ceiling["source"] == "replicas at most x 720 h x replica price"


def test_reserved_container_cpu_and_memory_are_priced_at_their_request(tmp_path):
    profile = child(tmp_path, "server:\n  cpu: 8\n  memory: [98304, 131072]\n", parent="smoke")
    checked = check(str(profile))
    cost = plan(checked.profile, checked.catalog)["cost"]
    table = prices()
    cpu_rate, memory_rate = 8 * table["cpu_usd_per_core_second"] * 3600, 96 * table["memory_usd_per_gib_second"] * 3600
    assert cost["cpu_usd_per_hour"] == {
        "label": "container cpu, 8 cores",
        "value": round(cpu_rate, 4),
        "unit": "USD/h",
        "source": f"server.cpu ({profile}:4) x data/prices.yaml cpu_usd_per_core_second x 3600",
    }
    assert cost["memory_usd_per_hour"]["source"] == (
        f"server.memory ({profile}:5) (the request of [request, limit]) x data/prices.yaml memory_usd_per_gib_second "
        "x 3600"
    )
    gpu = table["gpu_usd_per_hour"]["L4"]
    replica = cost["model"]["replica_usd_per_hour"]
    assert replica["value"] == pytest.approx(gpu + cpu_rate + memory_rate, abs=1e-4)
    assert replica["source"] == "(GPU price x GPUs per replica + container cpu + container memory) x region multiplier"
    notes = plan(checked.profile, checked.catalog)["notes"]
    assert notes[0] == (
        "Costs are GPU plus the container's server.cpu and server.memory at the request; Modal bills the greater of "
        "request and use (docs/sources.md#modal-resources) (data/prices.yaml)."
    )
