"""Keeping a replica warm: business hours through the autoscaler, or the guide's ping, and proxy auth."""

from __future__ import annotations

import os
import zoneinfo
from datetime import datetime, timedelta

from deploygen.runtime.engine import log

DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
PROXY_KEY_ENV = "MODAL_PROXY_KEY"
PROXY_SECRET_ENV = "MODAL_PROXY_SECRET"


class ProxyAuthMissing(RuntimeError):
    """The deployment sits behind Modal's proxy auth and no proxy auth token was given."""


def proxy_auth_headers(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The `Modal-Key` / `Modal-Secret` headers of a proxy auth token, from MODAL_PROXY_KEY / _SECRET."""
    environ = os.environ if environ is None else environ
    key, secret = environ.get(PROXY_KEY_ENV, ""), environ.get(PROXY_SECRET_ENV, "")
    if not key or not secret:
        missing = " and ".join(name for name, value in ((PROXY_KEY_ENV, key), (PROXY_SECRET_ENV, secret)) if not value)
        raise ProxyAuthMissing(
            f"the deployment requires Modal proxy auth (server.unauthenticated is false) but {missing} "
            "is not set: create a proxy auth token (https://modal.com/docs/guide/webhook-proxy-auth) and export "
            f"{PROXY_KEY_ENV}=wk-... {PROXY_SECRET_ENV}=ws-..."
        )
    return {"Modal-Key": key, "Modal-Secret": secret}


def _clock(text: str) -> timedelta:
    hours, minutes = (int(part) for part in text.split(":"))
    return timedelta(hours=hours, minutes=minutes)


def warm_periods(days: list[str], start: str, end: str, timezone: str, lead_s: float, around: datetime):
    """The periods (UTC datetimes) in which the window wants replicas warm, near `around`: each window
    day's [start - lead, end), in the window's time zone (daylight saving time included)."""
    tz = zoneinfo.ZoneInfo(timezone)
    local = around.astimezone(tz).date()
    periods = []
    for offset in range(-1, 9):
        day = local + timedelta(days=offset)
        if DAYS[day.weekday()] not in days:
            continue
        midnight = datetime.combine(day, datetime.min.time(), tz)
        opens = (midnight + _clock(start)).astimezone(zoneinfo.ZoneInfo("UTC"))
        closes = (midnight + _clock(end)).astimezone(zoneinfo.ZoneInfo("UTC"))
        periods.append((opens - timedelta(seconds=lead_s), closes))
    return periods


def desired_min_containers(
    days: list[str],
    start: str,
    end: str,
    timezone: str,
    lead_s: float,
    inside: int,
    outside: int,
    now: datetime | None = None,
) -> int:
    """The min_containers the window asks for at `now` (default: this moment): `inside` from a lead
    time before the window opens until it closes, `outside` otherwise. A pure function of the time, so
    running it again (or after a missed run) sets the same value."""
    now = now or datetime.now(zoneinfo.ZoneInfo("UTC"))
    for low, high in warm_periods(days, start, end, timezone, lead_s, now):
        if low <= now < high:
            return inside
    return outside


def ping(url: str, timeout: float, headers: dict[str, str]) -> int | None:
    """One keep-alive request. A 503 or a timeout while the replica starts is expected (the ping itself
    started it); anything else that is not a 200 is logged as a problem. Returns the status, or None."""
    import requests

    try:
        response = requests.get(url, timeout=timeout, headers=headers)
    except requests.Timeout:
        log(f"[keepalive] {url}: no answer within {timeout}s; expected while a replica starts")
        return None
    except requests.RequestException as exc:
        log(f"[keepalive] {url}: request failed ({type(exc).__name__})")
        return None
    if response.status_code == 200:
        log(f"[keepalive] {url} -> HTTP 200")
    elif response.status_code == 503:
        log(f"[keepalive] {url} -> HTTP 503; expected while a replica starts")
    else:
        log(f"[keepalive] {url} -> HTTP {response.status_code}: {response.text[:200]}")
    return response.status_code
