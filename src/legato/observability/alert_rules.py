"""Alert rules: when to tell people, about which pipelines, through which channels.

A rule is an ``AlertRule``: a condition (``CONDITIONS``), the pipelines it covers (names or
glob patterns, and tags), the channels it sends to, a severity, how long a storm is gathered
into one message (``group_interval``) and the condition's own parameters (``within``,
``by``, ``lag``, ``idle``, ``after``; ``check_severity``, ``checks``, ``assets`` choose the
checks a ``check_failed`` rule watches; ``assets`` also the assets an ``asset_stale`` rule
watches). Rules come from legato.toml's ``[alerts.NAME]`` tables
(``parse_rules``) and from ``@pipeline(alerts=[legato.alert(...)])`` (``alert``), which
covers that pipeline only.

Pure vocabulary: whether a rule holds is decided by the services (``legato.services.alerting``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import time, timedelta
from fnmatch import fnmatchcase
from typing import Any

#: A rule's severities, most urgent first (the same as ``channels.SEVERITIES``; not imported
#: from there so that ``import legato`` does not import an HTTP client).
SEVERITIES = ("critical", "error", "warning", "info")
#: Each condition, with the parameters it takes (required ones first) and what it means.
CONDITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "run_failed": ((), "a run failed"),
    "retries_exhausted": ((), "a task failed for good, its retries used up"),
    "run_recovered": ((), "a run succeeded after the pipeline's previous run failed"),
    "run_canceled": ((), "a run was canceled"),
    "sla": (("within", "by"), "a run not finished within a duration or by a time of day"),
    "freshness": (("lag",), "a closed partition with no successful run within a lag"),
    "asset_stale": ((), "an asset stale under its own freshness policy"),
    "stuck": (("idle",), "a running run with no task progress for a while"),
    "queued_too_long": (("after",), "a queued run not started within a while"),
    "no_scheduler": (("after",), "no scheduler has sent a heartbeat for a while"),
    "backfill_finished": ((), "a backfill finished with every run succeeded"),
    "backfill_failed": ((), "a backfill finished with failed runs"),
    "check_failed": ((), "a data-quality check failed or could not be evaluated"),
}
#: Conditions that hold for a while and are resolved when they clear; the others are
#: one-off events (a run canceled, a backfill finished) with nothing to resolve.
RESOLVING = frozenset(
    {"run_failed", "retries_exhausted", "sla", "freshness", "asset_stale", "stuck",
     "queued_too_long", "no_scheduler", "check_failed"}
)
#: Defaults of the parameters a condition may leave out.
DEFAULT_NO_SCHEDULER_AFTER = timedelta(seconds=30)
DEFAULT_GROUP_INTERVAL = timedelta(minutes=1)

_KEYS = {"condition", "pipelines", "tags", "channels", "severity", "group_interval",
         "within", "by", "lag", "idle", "after", "check_severity", "checks", "assets"}
#: The keys that choose which checks a ``check_failed`` rule watches.
_CHECK_KEYS = ("check_severity", "checks", "assets")
#: Which checks' failures a ``check_failed`` rule watches, by the checks' own severity.
CHECK_SEVERITIES = ("block", "warn", "any")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


class AlertConfigError(ValueError):
    """An alert rule is wrong; the message says which and why."""


@dataclass(frozen=True)
class AlertRule:
    """One rule. ``pipelines`` are names or glob patterns (``sales_*``), ``tags`` pipeline
    tags; a pipeline is covered when it matches a pattern or carries a tag (neither given:
    every pipeline). ``no_scheduler`` concerns no pipeline."""

    name: str
    condition: str
    channels: tuple[str, ...]
    pipelines: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    severity: str = "error"
    group_interval: timedelta = DEFAULT_GROUP_INTERVAL
    within: timedelta | None = None  # sla: after the run's start
    by: time | None = None  # sla: a time of day after the run's scheduled tick
    lag: timedelta | None = None  # freshness
    idle: timedelta | None = None  # stuck
    after: timedelta | None = None  # queued_too_long, no_scheduler
    # check_failed: the checks' severity watched, and name patterns of checks and assets.
    check_severity: str = "block"
    checks: tuple[str, ...] = ()
    assets: tuple[str, ...] = ()

    @property
    def resolves(self) -> bool:
        """Whether the condition holds for a while and is resolved when it clears."""
        return self.condition in RESOLVING

    def covers(self, pipeline: str, tags: Collection[str] = ()) -> bool:
        """Whether this rule watches ``pipeline`` (with its ``tags``)."""
        if not self.pipelines and not self.tags:
            return True
        if any(fnmatchcase(pipeline, p) for p in self.pipelines):
            return True
        return any(t in tags for t in self.tags)

    def watches_check(self, check: str, asset: str | None, severity: str) -> bool:
        """Whether this (``check_failed``) rule is about ``check`` of ``asset`` whose own
        severity is ``severity`` (``checks``/``assets``: glob patterns, none given: any)."""
        if self.check_severity != "any" and severity != self.check_severity:
            return False
        if self.checks and not any(fnmatchcase(check, p) for p in self.checks):
            return False
        return asset is not None and self.watches_asset(asset) if self.assets else True

    def watches_asset(self, asset: str) -> bool:
        """Whether ``asset`` matches this rule's ``assets`` patterns (none given: any)."""
        return not self.assets or any(fnmatchcase(asset, p) for p in self.assets)

    def parameters(self) -> dict[str, str]:
        """The condition's parameters as written (for messages and listings)."""
        out: dict[str, str] = {}
        for key in ("within", "lag", "idle", "after"):
            value = getattr(self, key)
            if value is not None:
                out[key] = format_duration(value)
        if self.by is not None:
            out["by"] = self.by.strftime("%H:%M")
        if self.condition == "check_failed":
            out["check_severity"] = self.check_severity
            for key in ("checks", "assets"):
                if getattr(self, key):
                    out[key] = ", ".join(getattr(self, key))
        return out


#: The longest duration a rule or a silence may give: past it, a time would leave the calendar.
MAX_DURATION = timedelta(days=3650)


def parse_duration(value: Any, what: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1h30m"`` or a number of seconds; more
    than nothing and at most MAX_DURATION (ten years)."""
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        parts = _DURATION.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if seconds is not None and 0 < seconds <= MAX_DURATION.total_seconds():
        return timedelta(seconds=seconds)
    raise AlertConfigError(
        f"{what} must be a duration like 30s, 15m, 2h or 1d, at most 3650d (got {value!r})"
    )


def format_duration(value: timedelta) -> str:
    """A duration as people write it: ``2h``, ``90s``, ``1h30m``."""
    seconds = value.total_seconds()
    if seconds != int(seconds):
        return f"{seconds:g}s"
    out, left = "", int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            out += f"{left // size}{unit}"
            left %= size
    return out or "0s"


def _time_of_day(value: Any, what: str) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and (m := _TIME_OF_DAY.fullmatch(value.strip())):
        return time(int(m[1]), int(m[2]))
    raise AlertConfigError(f"{what} must be a time of day like \"07:30\" (got {value!r})")


def _names(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, str) and v for v in value
    ):
        raise AlertConfigError(f"{what} must be a list of names")
    return tuple(value)


def build_rule(name: str, settings: Mapping[str, Any], where: str) -> AlertRule:
    """A rule from its settings (a ``[alerts.NAME]`` table or ``alert()``'s arguments);
    ``where`` names it in error messages."""
    if not _NAME.fullmatch(name):
        raise AlertConfigError(f"{where}: a rule's name is letters, digits and _ . : -")
    unknown = sorted(set(settings) - _KEYS)
    if unknown:
        raise AlertConfigError(f"{where}: unknown key {unknown[0]!r}")
    condition = settings.get("condition")
    if condition not in CONDITIONS:
        raise AlertConfigError(
            f"{where}: condition must be one of: {', '.join(CONDITIONS)} (got {condition!r})"
        )
    takes = CONDITIONS[condition][0]
    for key in ("within", "by", "lag", "idle", "after"):
        if settings.get(key) is not None and key not in takes:
            taken = ", ".join(takes) if takes else "no parameters"
            raise AlertConfigError(f"{where}: {condition} takes {taken}, not {key!r}")
    _check_settings(condition, settings, where)
    channels = _names(settings.get("channels", []), f"{where}: channels")
    if not channels:
        raise AlertConfigError(f"{where}: channels must name at least one [channels.NAME]")
    severity = settings.get("severity", "error")
    if severity not in SEVERITIES:
        raise AlertConfigError(
            f"{where}: severity must be one of: {', '.join(SEVERITIES)} (got {severity!r})"
        )

    def duration(key: str) -> timedelta | None:
        value = settings.get(key)
        return None if value is None else parse_duration(value, f"{where}: {key}")

    group = duration("group_interval") or DEFAULT_GROUP_INTERVAL
    rule = AlertRule(
        name=name,
        condition=condition,
        channels=channels,
        pipelines=_names(settings.get("pipelines", []), f"{where}: pipelines"),
        tags=_names(settings.get("tags", []), f"{where}: tags"),
        severity=severity,
        group_interval=group,
        within=duration("within"),
        by=None if settings.get("by") is None else _time_of_day(settings["by"], f"{where}: by"),
        lag=duration("lag"),
        idle=duration("idle"),
        after=duration("after"),
        check_severity=settings.get("check_severity", "block"),
        checks=_names(settings.get("checks", []), f"{where}: checks"),
        assets=_names(settings.get("assets", []), f"{where}: assets"),
    )
    if condition == "sla" and (rule.within is None) == (rule.by is None):
        raise AlertConfigError(f"{where}: sla needs either within (a duration) or by (a time)")
    if condition in ("freshness", "stuck", "queued_too_long"):
        key = takes[0]
        if getattr(rule, key) is None:
            raise AlertConfigError(f"{where}: {condition} needs {key} (a duration)")
    if condition == "no_scheduler" and rule.after is None:
        rule = replace(rule, after=DEFAULT_NO_SCHEDULER_AFTER)
    return rule


def _check_settings(condition: str, settings: Mapping[str, Any], where: str) -> None:
    """AlertConfigError for a check key on another condition, or a check severity given as
    the rule's own (a rule's ``severity`` says how urgent its alert is, not which checks)."""
    if condition != "check_failed":
        for key in _CHECK_KEYS:
            if key == "assets" and condition == "asset_stale":
                continue  # which assets' staleness it watches
            if settings.get(key) is not None:
                raise AlertConfigError(f"{where}: {key!r} belongs to check_failed rules only")
        return
    given = settings.get("severity")
    if given in CHECK_SEVERITIES:
        raise AlertConfigError(
            f"{where}: severity is the alert's ({', '.join(SEVERITIES)}); the checks watched "
            f"by their severity are check_severity = {given!r}"
        )
    wanted = settings.get("check_severity", "block")
    if wanted not in CHECK_SEVERITIES:
        raise AlertConfigError(
            f"{where}: check_severity must be one of: {', '.join(CHECK_SEVERITIES)} "
            f"(got {wanted!r})"
        )


def parse_rules(
    tables: Mapping[str, Mapping[str, Any]], channels: Collection[str] | None = None
) -> dict[str, AlertRule]:
    """The rules ``[alerts.NAME]`` tables describe; AlertConfigError when one is wrong.

    With ``channels`` (the names of ``[channels.NAME]``), a rule naming another channel is
    an error too.
    """
    rules: dict[str, AlertRule] = {}
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise AlertConfigError(f"[alerts.{name}] must be a table")
        rule = build_rule(name, table, f"[alerts.{name}]")
        check_channels(rule, channels, f"[alerts.{name}]")
        rules[name] = rule
    return rules


def check_channels(rule: AlertRule, channels: Collection[str] | None, where: str) -> None:
    """AlertConfigError when ``rule`` names a channel not among ``channels`` (None: any)."""
    if channels is None:
        return
    for channel in rule.channels:
        if channel not in channels:
            known = ", ".join(sorted(channels)) or "none"
            raise AlertConfigError(
                f"{where}: no channel named {channel!r} (the [channels] tables: {known})"
            )


def alert(
    condition: str,
    *,
    channels: Iterable[str],
    name: str | None = None,
    severity: str = "error",
    group_interval: str | timedelta | None = None,
    within: str | timedelta | None = None,
    by: str | time | None = None,
    lag: str | timedelta | None = None,
    idle: str | timedelta | None = None,
    after: str | timedelta | None = None,
    check_severity: str | None = None,
    checks: Iterable[str] | None = None,
    assets: Iterable[str] | None = None,
) -> AlertRule:
    """A rule for ``@pipeline(alerts=[...])``: it covers that pipeline only, and is named
    ``PIPELINE:NAME`` (``name`` defaults to the condition). Durations are text (``"2h"``)
    or timedeltas; ``by`` is ``"HH:MM"``. ``check_severity`` ("block", "warn" or "any"),
    ``checks`` and ``assets`` (name patterns) choose the checks a ``check_failed`` rule
    watches."""

    def seconds(value: str | timedelta | None) -> str | float | None:
        return value.total_seconds() if isinstance(value, timedelta) else value

    settings: dict[str, Any] = {
        "condition": condition,
        "channels": list(channels),
        "severity": severity,
        "group_interval": seconds(group_interval),
        "within": seconds(within),
        "by": by,
        "lag": seconds(lag),
        "idle": seconds(idle),
        "after": seconds(after),
        "check_severity": check_severity,
        "checks": None if checks is None else list(checks),
        "assets": None if assets is None else list(assets),
    }
    given = {k: v for k, v in settings.items() if v is not None}
    label = name or condition
    return build_rule(label, given, f"alert({condition!r})")


def for_pipeline(rule: AlertRule, pipeline: str) -> AlertRule:
    """``rule`` (from ``alert()``) bound to ``pipeline``: named ``PIPELINE:NAME``, covering
    it only."""
    return replace(rule, name=f"{pipeline}:{rule.name}", pipelines=(pipeline,), tags=())
