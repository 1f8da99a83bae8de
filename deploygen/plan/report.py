"""The plan as a user reads it: a terminal table (every number with its source) and a cost chart."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from deploygen.errors import UserError
from deploygen.files import write_atomic
from deploygen.plan.cost import CostModel

SINGULAR = {"GPUs": "GPU", "replicas": "replica", "requests": "request", "slots": "slot"}


def _format(item: dict[str, Any]) -> str:
    value, unit = item["value"], item["unit"]
    if value is None:
        return f"{item.get('none', 'never')} ({item.get('why', 'n/a')})"
    if isinstance(value, str):
        return value
    if unit == "x":
        return f"{value:g}x"
    if unit.startswith("USD"):
        digits = 0 if abs(value) >= 100 else 2
        per = unit.removeprefix("USD")
        return f"${value:,.{digits}f}{per if per != '/month' else ''}"
    if isinstance(value, float) and not value.is_integer():
        text = f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3g}"
    else:
        text = f"{int(value):,}"
    if value == 1:
        unit = SINGULAR.get(unit, unit)
    return f"{text} {unit}".rstrip()


def _rows(section: dict[str, Any], indent: str = "  ") -> list[tuple[str, str, str]]:
    rows = []
    for value in section.values():
        if "value" in value:
            rows.append((indent + value["label"], _format(value), value["source"]))
        else:
            rows += _rows(value, indent)
    return rows


# The cost model's keep-alive inputs: shown only for a profile that has a keep-alive.
KEEPALIVE_INPUTS = ("keepalive_covered_hours", "keepalive_cold_starts", "autoscaler_lead_s", "autoscaler_covered_hours")
# The strategies as the table and the chart name them.
STRATEGY_NAMES = {"scale_to_zero": "scale to zero", "business_hours": "business hours", "always_on": "always-on"}


def render_table(report: dict[str, Any]) -> str:
    deployment = report["deployment"]
    cost = report["cost"]
    keepalive = deployment["keepalive"] != "off"

    def heading(strategy: str, title: str) -> list[tuple[str, str, str]]:
        mark = " (this profile)" if deployment["strategy"] == strategy else ""
        return [(f"  {title}{mark}", "", "")]

    business = "Business-hours keep-alive" if keepalive else "Business-hours keep-alive (hypothetical: no keep-alive)"
    cost_rows = _rows({k: v for k, v in cost.items() if "value" in v})
    if "model" in cost:  # a GPU with no known price has no cost model
        model = {k: v for k, v in cost["model"].items() if keepalive or k not in KEEPALIVE_INPUTS}
        cost_rows += (
            _rows(model)
            + heading("scale_to_zero", "Scale-to-zero")
            + _rows(cost["scale_to_zero"], "    ")
            + heading("business_hours", business)
            + _rows(cost["business_hours"], "    ")
            + heading("always_on", "Always-on")
            + _rows(cost["always_on"], "    ")
            + [("  Spend ceiling (max_containers)", "", "")]
            + _rows(cost["ceiling"], "    ")
            + [("  Break-even active hours", "", "")]
            + _rows(cost["break_even"], "    ")
        )
    sections = [
        ("Memory per GPU", _rows(report["memory"])),
        ("Concurrency", _rows(report["concurrency"])),
        ("Monthly GPU cost", cost_rows),
        ("Cold start", _rows(report["cold_start"])),
    ]
    if report["targets"]:
        sections.append(("Latency targets", _rows(report["targets"])))
    all_rows = [row for _, rows in sections for row in rows]
    label_width = max(len(r[0]) for r in all_rows)
    value_width = max(len(r[1]) for r in all_rows)
    lines = [
        f"{report['profile']}: {report['description']}",
        f"  {deployment['gpu']} ({deployment['arch']}), {deployment['engine']} {deployment['engine_version']}, "
        f"strategy: {deployment['strategy'].replace('_', '-')}; {' -> '.join(report['sources'])}",
    ]
    for title, rows in sections:
        lines += ["", f"{title:<{label_width}}  {'value':>{value_width}}  source"]
        for label, value, source in rows:
            lines.append(f"{label:<{label_width}}  {value:>{value_width}}  {source}".rstrip())
    lines += ["", "Notes"] + [f"  {i}. {note}" for i, note in enumerate(report["notes"], 1)]
    return "\n".join(lines)


# The numbers two plans are compared by: (section, key) and the label the comparison shows.
HEADLINES = (
    ("memory", "weights_per_gpu_gb"),
    ("memory", "static_pool_gb"),
    ("memory", "kv_pool_gb"),
    ("memory", "kv_cache_dtype"),
    ("memory", "kv_pool_tokens"),
    ("memory", "context_length"),
    ("memory", "full_context_requests"),
    ("concurrency", "max_running_requests"),
    ("concurrency", "effective_per_replica"),
    ("concurrency", "fleet_ceiling"),
    ("cold_start", "total_slow_cached_s"),
)


def render_comparison(first: dict[str, Any], second: dict[str, Any]) -> str:
    """Two plans side by side: the deployment, the headline numbers, each plan's monthly costs."""

    def cell(report: dict[str, Any], section: str, key: str) -> str:
        item = report[section].get(key)
        return f"{_format(item)} ({item['label']})" if item else "-"

    def costs(report: dict[str, Any]) -> dict[str, str]:
        cost = report["cost"]
        strategies = {
            "scale-to-zero / month": "scale_to_zero",
            "business hours / month": "business_hours",
            "always-on / month": "always_on",
        }
        return {
            label: _format(cost[key]["total_usd"]) if key in cost else _format(cost["gpu_usd_per_hour"])
            for label, key in strategies.items()
        }

    def deployment(report: dict[str, Any]) -> str:
        d = report["deployment"]
        return f"{d['gpu']} ({d['arch']}), {d['engine']} {d['engine_version']}"

    rows = [("deployment", deployment(first), deployment(second))]
    rows += [(key, cell(first, section, key), cell(second, section, key)) for section, key in HEADLINES]
    rows += [(label, value, costs(second)[label]) for label, value in costs(first).items()]
    widths = [max(len(row[i]) for row in [("", first["profile"], second["profile"]), *rows]) for i in range(3)]
    lines = [f"{'':<{widths[0]}}  {first['profile']:<{widths[1]}}  {second['profile']}"]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows]
    return "\n".join(lines)


CHART_FORMATS = (".svg", ".png")


def check_chart_path(path: Path) -> None:
    if path.suffix.lower() not in CHART_FORMATS:
        raise UserError(f"--chart {path}: write a .svg or .png file")


def check_chartable(report: dict[str, Any]) -> None:
    """A GPU with no known price has no cost to draw."""
    if "model" not in report["cost"]:
        raise UserError(f"--chart: {report['cost']['gpu_usd_per_hour']['why']}, so there is no cost to chart")


def chart_bytes(report: dict[str, Any], fmt: str) -> bytes:
    """Monthly cost against active hours a day for the three strategies, break-even points marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    check_chartable(report)
    model = CostModel.from_plan(report)
    hours = [h / 10 for h in range(241)]
    formulas = {
        "scale-to-zero": model.scale_to_zero,
        "business hours, ping keep-alive": model.business_hours,
        "business hours, autoscaler keep-alive": model.autoscaler().business_hours,
        "always-on": model.always_on,
    }
    curves = {name: [formula(h) for h in hours] for name, formula in formulas.items()}
    deployment = report["deployment"]
    own = {
        "scale_to_zero": "scale-to-zero",
        "business_hours": f"business hours, {deployment['keepalive']} keep-alive",
        "always_on": "always-on",
    }[deployment["strategy"]]
    with matplotlib.rc_context({"svg.hashsalt": "deploygen", "svg.fonttype": "path"}):
        figure = Figure(figsize=(9, 5.5), dpi=100)
        axes = figure.subplots()
        for name, costs in curves.items():
            mine = name == own
            axes.plot(hours, costs, label=f"{name} (this profile)" if mine else name, linewidth=3.5 if mine else 1.5)
        # Label the keep-alive crossing above its point and the always-on one below its flat line.
        for label, even, offset in (
            ("= business hours", model.break_even_business_hours(), (-10, 14)),
            ("= always-on", model.break_even_always_on(), (-10, -34)),
        ):
            if even is None:
                continue
            cost = model.scale_to_zero(even)
            axes.plot([even], [cost], marker="o", color="black", zorder=5)
            # Near the left edge the label goes right of its point so it stays inside the axes.
            left = even < 6
            axes.annotate(
                f"scale-to-zero {label}\n{even:.1f} h/day, ${cost:,.0f}",
                (even, cost),
                textcoords="offset points",
                xytext=(-offset[0], offset[1]) if left else offset,
                ha="left" if left else "right",
                fontsize=8,
            )
        active = report["cost"]["active_hours_per_day"]["value"]
        # The profile's own strategy, marked on its curve at the planned active hours.
        own_cost = formulas[own](active)
        axes.plot([active], [own_cost], marker="D", color="black", zorder=6)
        axes.annotate(
            f"this profile: {STRATEGY_NAMES[deployment['strategy']]}",
            (active, own_cost),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=9,
            fontweight="bold",
        )
        axes.axvline(active, color="grey", linestyle=":", linewidth=1)
        axes.annotate(f"plan: {active:g} h/day", (active, 0), xytext=(3, 3), textcoords="offset points", fontsize=8)
        rate = report["cost"]["model"]["replica_usd_per_hour"]["value"]
        axes.set_title(
            f"{report['profile']}: monthly GPU cost, {report['deployment']['gpu']} at ${rate:,.2f}/h per replica",
            fontsize=10,
        )
        axes.set_xlabel("active hours per day")
        axes.set_ylabel("USD per month (30 days, GPU only)")
        axes.set_xlim(0, 24)
        axes.set_ylim(0, max(max(c) for c in curves.values()) * 1.1)
        axes.set_xticks(range(0, 25, 2))
        axes.yaxis.set_major_formatter(StrMethodFormatter("${x:,.0f}"))
        axes.grid(True, alpha=0.3)
        axes.legend(loc="upper left")
        figure.tight_layout()
        buffer = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        figure.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def write_chart(report: dict[str, Any], path: Path) -> None:
    """Write the chart atomically; the format follows the file's suffix (.svg or .png)."""
    check_chart_path(path)
    write_atomic(path, chart_bytes(report, path.suffix.lower().removeprefix(".")))
