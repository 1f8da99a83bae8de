"""The cost model: monthly GPU cost of a deployment under the three strategies, as a function of traffic.

`CostModel` is the only home of the cost formulas; the plan's cost section, its break-even points and
the chart all read them from it.
"""

from __future__ import annotations

import dataclasses
import functools
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from deploygen.errors import UserError
from deploygen.facts import read_data
from deploygen.load import ResolvedProfile
from deploygen.paths import DATA_DIR
from deploygen.plan.quantities import quantity, where
from deploygen.validate.schema import DEFAULT_ORIGIN

DAYS_PER_MONTH = 30
HOURS_PER_MONTH = DAYS_PER_MONTH * 24
# June 2026: 30 days (720 h) with no daylight-saving change in US, EU or Australian time zones, so a
# cron in any of them covers the same wall-clock hours on every day of the month.
REFERENCE_MONTH = (datetime(2026, 6, 1), datetime(2026, 7, 1))
PRICES_PATH = DATA_DIR / "prices.yaml"
PRICES = "data/prices.yaml"


@functools.cache
def prices() -> dict[str, Any]:
    return read_data(PRICES_PATH)


# Why a profile without scaling.max_containers has no ceiling: Modal's default is no cap.
NO_CAP = "Modal starts as many replicas as traffic asks for"


def container_reservations(profile: ResolvedProfile) -> dict[str, tuple[str, float, str]]:
    """The serving container's priced reservations: {"cpu" | "memory": (label, USD/h, source)}, only
    those the profile sets."""
    server, table = profile.data["server"], prices()
    out = {}
    for name, unit_price, per in (
        ("cpu", "cpu_usd_per_core_second", "cores"),
        ("memory", "memory_usd_per_gib_second", "GiB"),
    ):
        value = server.get(name)
        if value is None:
            continue
        request = value[0] if isinstance(value, list) else value
        amount = request / 1024 if name == "memory" else request  # memory is in MiB, priced per GiB
        pair = " (the request of [request, limit])" if isinstance(value, list) else ""
        out[name] = (
            f"container {name}, {amount:g} {per}",
            amount * table[unit_price] * 3600,
            f"{where(profile, 'server', name)}{pair} x {PRICES} {unit_price} x 3600",
        )
    return out


def container_terms(reserved: dict[str, tuple[str, float, str]]) -> str:
    """The reserved CPU and memory in a price formula: " + container cpu + container memory"."""
    return "".join(f" + container {name}" for name in reserved)


def max_replicas(profile: ResolvedProfile) -> int | None:
    """The replicas Modal may run at once (containers / gpu.nodes); None without a cap."""
    cap = profile.data["scaling"].get("max_containers")
    return None if cap is None else cap // profile.data["gpu"]["nodes"]


@dataclass(frozen=True)
class CostModel:
    """Monthly GPU cost of one deployment under the three strategies, as a function of active hours a day."""

    replica_usd_per_hour: float
    # Billed per scale-to-zero activation (one a day): the scaledown_window tail and the cold start.
    idle_tail_h: float
    cold_start_h: float
    # Hours a month the keep-alive cron (ping mode) keeps one replica up.
    covered_hours: float
    always_on_replicas: int
    # Hours a month the autoscaler keep-alive keeps one replica up (its window, lead and tail).
    autoscaler_covered_hours: float = 0.0

    def autoscaler(self) -> CostModel:
        """The same deployment kept warm by the autoscaler keep-alive instead of the ping cron."""
        return dataclasses.replace(self, covered_hours=self.autoscaler_covered_hours)

    @property
    def activation_overhead_h(self) -> float:
        return self.idle_tail_h + self.cold_start_h

    def scale_to_zero_parts(self, active_h: float) -> dict[str, float]:
        """Traffic, the idle tail and the cold start of one activation a day, over the month."""
        rate = self.replica_usd_per_hour * DAYS_PER_MONTH
        return {"active": active_h * rate, "idle_tail": self.idle_tail_h * rate, "cold_start": self.cold_start_h * rate}

    def scale_to_zero(self, active_h: float) -> float:
        return sum(self.scale_to_zero_parts(active_h).values())

    def overflow_hours(self, active_h: float) -> float:
        """Traffic hours a month that do not fit inside the keep-alive's covered hours."""
        return max(0.0, DAYS_PER_MONTH * active_h - self.covered_hours)

    def business_hours_parts(self, active_h: float) -> dict[str, float]:
        # Traffic falls inside the covered hours first; what does not fit is billed like scale-to-zero.
        rate = self.replica_usd_per_hour
        return {"covered": self.covered_hours * rate, "overflow": self.overflow_hours(active_h) * rate}

    def business_hours(self, active_h: float) -> float:
        return sum(self.business_hours_parts(active_h).values())

    def always_on(self, active_h: float = 0) -> float:
        return self.always_on_replicas * HOURS_PER_MONTH * self.replica_usd_per_hour

    def break_even_business_hours(self) -> float | None:
        """Active hours a day where scale-to-zero costs what the keep-alive does; None if never in 0-24."""
        hours = self.covered_hours / DAYS_PER_MONTH - self.activation_overhead_h
        return hours if 0 <= hours <= 24 else None

    def break_even_always_on(self) -> float | None:
        hours = self.always_on_replicas * 24 - self.activation_overhead_h
        return hours if 0 <= hours <= 24 else None

    @classmethod
    def from_plan(cls, report: dict[str, Any]) -> CostModel:
        model = report["cost"]["model"]
        return cls(
            model["replica_usd_per_hour"]["value"],
            model["scaledown_window_s"]["value"] / 3600,
            model["cold_start_s"]["value"] / 3600,
            model["keepalive_covered_hours"]["value"],
            model["always_on_replicas"]["value"],
            model["autoscaler_covered_hours"]["value"],
        )


@dataclass(frozen=True)
class Coverage:
    hours: float
    # Separate stretches of uptime: each one begins with a cold start.
    stretches: int
    # Days of the month on which the cron pings at all.
    ping_days: int


def keepalive_coverage(schedule: str, timezone: str, window_s: int, cold_start_s: float = 0) -> Coverage:
    """How long a cron keeps one replica up over the reference month.

    A ping that finds no replica starts one: it stays up through the cold start and `window_s` after
    the ping is answered. A ping that finds one warm keeps it up until `window_s` after that ping.
    Pings closer together than that join into one stretch of uptime.
    """
    from croniter import croniter  # only `plan` walks a cron

    tz = zoneinfo.ZoneInfo(timezone)
    start, end = (day.replace(tzinfo=tz).timestamp() for day in REFERENCE_MONTH)
    runs = croniter(schedule, datetime.fromtimestamp(start, tz) - timedelta(seconds=cold_start_s + window_s + 1))
    stretches: list[list[float]] = []
    days: set[str] = set()
    while (ping := runs.get_next(float)) < end:
        if ping >= start:
            days.add(datetime.fromtimestamp(ping, tz).date().isoformat())
        if stretches and ping <= stretches[-1][1]:
            stretches[-1][1] = max(stretches[-1][1], min(ping + window_s, end))
        else:
            stretches.append([ping, min(ping + cold_start_s + window_s, end)])
    inside = [(max(low, start), high) for low, high in stretches if high > start]
    return Coverage(sum(high - low for low, high in inside) / 3600, len(inside), len(days))


def autoscaler_coverage(window: dict[str, Any], timezone: str, lead_s: float, tail_s: float) -> Coverage:
    """How long the autoscaler keep-alive keeps one replica up over the reference month: each window day
    from `lead_s` before the window opens until `tail_s` after it closes (the schedule's period until
    min_containers is lowered, then scaledown_window idle)."""
    from deploygen.runtime.keepalive import warm_periods

    tz = zoneinfo.ZoneInfo(timezone)
    start, end = (day.replace(tzinfo=tz) for day in REFERENCE_MONTH)
    periods = set()
    around = start
    while around < end + timedelta(days=7):
        periods.update(warm_periods(window["days"], window["start"], window["end"], timezone, lead_s, around))
        around += timedelta(days=7)
    inside = [
        (max(low, start), min(high + timedelta(seconds=tail_s), end))
        for low, high in sorted(periods)
        if high + timedelta(seconds=tail_s) > start and low < end
    ]
    return Coverage(sum((high - low).total_seconds() for low, high in inside) / 3600, len(inside), len(inside))


def _break_even(label: str, hours: float | None, formula: str) -> dict[str, Any]:
    return quantity(
        label,
        None if hours is None else round(hours, 3),
        "h/day",
        formula,
        **({} if hours is not None else {"why": "no crossing within 0-24 h/day"}),
    )


def cost_section(
    profile: ResolvedProfile, active_hours: float, cold_start_s: float
) -> tuple[dict[str, Any], list[str]]:
    """The plan's cost section, and the notes it needs."""
    data = profile.data
    gpu_type, count, nodes = data["gpu"]["type"], data["gpu"]["count"], data["gpu"]["nodes"]
    table = prices()
    if gpu_type not in table["gpu_usd_per_hour"]:
        known = ", ".join(table["gpu_usd_per_hour"])
        raise UserError(f"{PRICES} has no price for {gpu_type} (priced: {known}); add it to plan {profile.name}")
    gpu_price = table["gpu_usd_per_hour"][gpu_type]
    if gpu_price is None:
        # A GPU Modal offers with no public price found: no cost, said plainly, never a guess.
        why = f"no public Modal price in {PRICES} gpu_usd_per_hour.{gpu_type}"
        unpriced = quantity(f"{gpu_type} price per GPU", None, "USD/h", PRICES, why=why, none="unknown")
        return {"gpu_usd_per_hour": unpriced}, [
            f"No cost: {why}. `modal billing rates` prints your workspace's rates; set "
            f"gpu_usd_per_hour.{gpu_type} in {PRICES} to plan one."
        ]
    region = data["scaling"].get("region")
    if region:
        multiplier = table["region_multiplier"]["broad"]
        region_source = (
            f"{PRICES} region_multiplier.broad for {where(profile, 'scaling', 'region')}; "
            f"a narrow region costs {table['region_multiplier']['narrow']}x"
        )
    else:
        multiplier, region_source = 1.0, "scaling.region unset: Modal picks the region, no surcharge"
    # The container's reserved CPU and memory (server.cpu, server.memory), billed per container at
    # least at the request: a [request, limit] pair is priced at its request.
    reserved = container_reservations(profile)
    container_rate = sum(usd for _, usd, _ in reserved.values())
    # A cluster bills every node: the price per node-hour times the nodes of a replica.
    node_rate = (gpu_price * count + container_rate) * multiplier
    rate = node_rate * nodes
    window = data["scaling"]["scaledown_window"]

    keepalive = data["keepalive"]
    schedule, timezone = keepalive["schedule"], keepalive["timezone"]
    if keepalive["mode"] == "ping":
        cron_source = f"{where(profile, 'keepalive', 'schedule')} in {timezone}"
    else:
        if profile.origin(("keepalive", "schedule")) == DEFAULT_ORIGIN:
            schedule_from = f"default {schedule!r}"
        else:
            schedule_from = where(profile, "keepalive", "schedule")
        cron_source = f"no ping cron (keepalive.mode {keepalive['mode']}): {schedule_from} in {timezone}"
    coverage = keepalive_coverage(schedule, timezone, window, cold_start_s)
    covered = coverage.hours
    from deploygen.plan.deployment import AUTOSCALER_PERIOD_S, keepalive_lead_s

    lead = keepalive_lead_s(profile)
    autoscaled = autoscaler_coverage(keepalive["window"], timezone, lead, AUTOSCALER_PERIOD_S + window)
    # Modal counts containers; a replica is `nodes` of them.
    always_on = max(data["scaling"]["min_containers"] // nodes, 1)
    model = CostModel(rate, window / 3600, cold_start_s / 3600, covered, always_on, autoscaled.hours)
    gpu_source = f"{PRICES} gpu_usd_per_hour.{gpu_type} ({table['as_of']})"
    out: dict[str, Any] = {
        "gpu_usd_per_hour": quantity(f"{gpu_type} price per GPU", gpu_price, "USD/h", gpu_source),
        "gpu_count": quantity(
            "GPUs per node" if nodes > 1 else "GPUs per replica", count, "GPUs", where(profile, "gpu", "count")
        ),
        **{
            f"{name}_usd_per_hour": quantity(label, round(usd, 4), "USD/h", source)
            for name, (label, usd, source) in reserved.items()
        },
        "region_multiplier": quantity("region multiplier", multiplier, "x", region_source),
        "active_hours_per_day": quantity("active hours per day", active_hours, "h/day", "--active-hours"),
    }
    if nodes > 1:
        out["nodes"] = quantity("nodes per replica", nodes, "nodes", where(profile, "gpu", "nodes"))
        out["node_usd_per_hour"] = quantity(
            "price per node-hour",
            round(node_rate, 4),
            "USD/h",
            f"(GPU price x GPUs per node{container_terms(reserved)}) x region multiplier",
        )
    out["model"] = {
        "replica_usd_per_hour": quantity(
            "replica price",
            round(rate, 4),
            "USD/h",
            "price per node-hour x nodes per replica"
            if nodes > 1
            else f"(GPU price x GPUs per replica{container_terms(reserved)}) x region multiplier",
        ),
        "scaledown_window_s": quantity(
            "idle tail per activation", window, "s", where(profile, "scaling", "scaledown_window")
        ),
        "cold_start_s": quantity(
            "cold start billed per activation", cold_start_s, "s", "cold start, slow volume, cache present"
        ),
        "activation_overhead_h": quantity(
            "billed per activation",
            round(model.activation_overhead_h, 6),
            "h",
            "(idle tail + cold start) / 3600; one activation a day",
        ),
        "keepalive_covered_hours": quantity(
            "hours the keep-alive cron keeps a replica up",
            round(covered, 4),
            "h/month",
            f"{cron_source}, June 2026; a ping holds a replica for scaledown_window, a cold one for its start too",
        ),
        "keepalive_cold_starts": quantity(
            "keep-alive cold starts",
            coverage.stretches,
            "per month",
            "one per stretch of pings closer together than scaledown_window",
        ),
        "autoscaler_lead_s": quantity(
            "autoscaler keep-alive lead time",
            lead,
            "s",
            "cold start (slow volume, cache present) in whole minutes + one 5-minute schedule period",
        ),
        "autoscaler_covered_hours": quantity(
            "hours the autoscaler keep-alive keeps a replica up",
            round(autoscaled.hours, 4),
            "h/month",
            f"{where(profile, 'keepalive', 'window')} in {timezone}, June 2026: each window day from the lead "
            "before it opens until one schedule period + scaledown_window after it closes",
        ),
        "always_on_replicas": quantity(
            "always-on replicas",
            model.always_on_replicas,
            "replicas",
            f"max(1, {where(profile, 'scaling', 'min_containers')}" + (f" / gpu.nodes {nodes})" if nodes > 1 else ")"),
        ),
    }
    parts = model.scale_to_zero_parts(active_hours)
    out["scale_to_zero"] = {
        "active_usd": quantity(
            "traffic",
            round(parts["active"], 2),
            "USD/month",
            f"{active_hours:g} h/day x {DAYS_PER_MONTH} days x replica price",
        ),
        "idle_tail_usd": quantity(
            "idle tail",
            round(parts["idle_tail"], 2),
            "USD/month",
            f"{DAYS_PER_MONTH} activations x scaledown_window x replica price",
        ),
        "cold_start_usd": quantity(
            "cold starts",
            round(parts["cold_start"], 2),
            "USD/month",
            f"{DAYS_PER_MONTH} activations x cold start x replica price",
        ),
        "total_usd": quantity(
            "scale-to-zero",
            round(model.scale_to_zero(active_hours), 2),
            "USD/month",
            "traffic + idle tail + cold starts",
        ),
    }
    business = model.business_hours_parts(active_hours)
    out["business_hours"] = {
        "covered_usd": quantity(
            "cron-covered hours", round(business["covered"], 2), "USD/month", "covered hours x replica price"
        ),
        "overflow_usd": quantity(
            "traffic outside them",
            round(business["overflow"], 2),
            "USD/month",
            f"(active hours x {DAYS_PER_MONTH} - covered hours, if positive) x replica price",
        ),
        "total_usd": quantity(
            "business-hours keep-alive",
            round(model.business_hours(active_hours), 2),
            "USD/month",
            "cron-covered hours + traffic outside them",
        ),
    }
    autoscaler_model = model.autoscaler()
    autoscaler_parts = autoscaler_model.business_hours_parts(active_hours)
    out["business_hours_autoscaler"] = {
        "covered_usd": quantity(
            "window hours with lead and tail",
            round(autoscaler_parts["covered"], 2),
            "USD/month",
            "autoscaler covered hours x replica price",
        ),
        "overflow_usd": quantity(
            "traffic outside them",
            round(autoscaler_parts["overflow"], 2),
            "USD/month",
            f"(active hours x {DAYS_PER_MONTH} - covered hours, if positive) x replica price",
        ),
        "total_usd": quantity(
            "business hours, autoscaler keep-alive",
            round(autoscaler_model.business_hours(active_hours), 2),
            "USD/month",
            "covered hours + traffic outside them",
        ),
    }
    out["always_on"] = {
        "total_usd": quantity(
            "always-on",
            round(model.always_on(active_hours), 2),
            "USD/month",
            f"always-on replicas x {HOURS_PER_MONTH} h x replica price",
        ),
    }
    replicas = max_replicas(profile)
    out["ceiling"] = {
        "total_usd": quantity(
            "every replica up all month",
            None if replicas is None else round(replicas * HOURS_PER_MONTH * rate, 2),
            "USD/month",
            "scaling.max_containers unset"
            if replicas is None
            else f"replicas at most x {HOURS_PER_MONTH} h x replica price",
            **({"why": NO_CAP, "none": "unbounded"} if replicas is None else {}),
        ),
    }
    out["break_even"] = {
        "vs_business_hours_h": _break_even(
            "scale-to-zero = business hours at",
            model.break_even_business_hours(),
            f"covered hours / {DAYS_PER_MONTH} - billed per activation",
        ),
        "vs_always_on_h": _break_even(
            "scale-to-zero = always-on at",
            model.break_even_always_on(),
            "always-on replicas x 24 - billed per activation",
        ),
    }
    notes = []
    if keepalive["mode"] == "ping" and coverage.stretches > coverage.ping_days:
        notes.append(
            f"The keep-alive cron pings less often than scaledown_window ({window} s): the replica scales down "
            f"between pings, so {coverage.stretches:,} pings a month are each a cold start. Ping more often "
            "than scaledown_window (or raise it) for the business-hours strategy to keep anything warm."
        )
    return out, notes


def decimal(value: float) -> str:
    """A small price as a plain decimal (0.0000131), never in exponent notation."""
    return f"{value:.12f}".rstrip("0")
