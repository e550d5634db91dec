"""Alert rules from legato.toml and from ``legato.alert``: what each reads, and the error a
wrong rule gets."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest

import legato
from legato.definitions.errors import DefinitionError
from legato.observability.alert_rules import (
    CONDITIONS,
    AlertConfigError,
    AlertRule,
    format_duration,
    parse_duration,
    parse_rules,
)


def test_a_rule_table_reads_its_condition_scope_channels_and_parameters() -> None:
    rules = parse_rules(
        {
            "late": {
                "condition": "sla",
                "by": "07:30",
                "pipelines": ["sales_*", "ledger"],
                "tags": ["finance"],
                "channels": ["ops", "pager"],
                "severity": "critical",
                "group_interval": "10m",
            },
            "slow": {"condition": "sla", "within": "1h30m", "channels": "ops"},
        },
        channels={"ops", "pager"},
    )
    late = rules["late"]
    assert (late.by, late.severity, late.group_interval) == (
        time(7, 30), "critical", timedelta(minutes=10)
    )
    assert late.covers("sales_eu") and late.covers("ledger") and late.covers("x", {"finance"})
    assert not late.covers("inventory", {"ops"})
    assert rules["slow"].within == timedelta(hours=1, minutes=30)
    assert rules["slow"].covers("anything")  # no pipelines nor tags: every pipeline
    assert rules["slow"].parameters() == {"within": "1h30m"}


def test_no_scheduler_defaults_its_wait_and_every_condition_is_known() -> None:
    rule = parse_rules({"n": {"condition": "no_scheduler", "channels": ["ops"]}})["n"]
    assert rule.after == timedelta(seconds=30)
    assert set(CONDITIONS) == {
        "run_failed", "retries_exhausted", "run_recovered", "run_canceled", "sla",
        "freshness", "asset_stale", "stuck", "queued_too_long", "no_scheduler",
        "backfill_finished", "backfill_failed", "check_failed",
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"condition": "on_fire", "channels": ["ops"]}, "condition must be one of"),
        ({"condition": "run_failed"}, "channels must name at least one"),
        ({"condition": "run_failed", "channels": ["ops"], "colour": 1}, "unknown key 'colour'"),
        ({"condition": "run_failed", "channels": ["ops"], "lag": "1h"}, "takes no parameters"),
        ({"condition": "sla", "channels": ["ops"]}, "needs either within"),
        ({"condition": "sla", "channels": ["ops"], "within": "1h", "by": "07:00"},
         "needs either within"),
        ({"condition": "sla", "channels": ["ops"], "by": "25:00"}, "time of day"),
        ({"condition": "freshness", "channels": ["ops"]}, "needs lag"),
        ({"condition": "stuck", "channels": ["ops"], "idle": "soon"}, "must be a duration"),
        ({"condition": "run_failed", "channels": ["ops"], "severity": "meh"}, "severity"),
        ({"condition": "run_failed", "channels": ["sms"]}, "no channel named 'sms'"),
    ],
)
def test_a_wrong_rule_is_refused_with_its_name_and_the_reason(
    table: dict[str, Any], message: str
) -> None:
    with pytest.raises(AlertConfigError, match=message) as refused:
        parse_rules({"mine": table}, channels={"ops"})
    assert "[alerts.mine]" in str(refused.value)


def test_durations_read_as_people_write_them() -> None:
    assert parse_duration("90s", "x") == timedelta(seconds=90)
    assert parse_duration("2h", "x") == timedelta(hours=2)
    assert parse_duration("1d12h", "x") == timedelta(days=1, hours=12)
    assert parse_duration(45, "x") == timedelta(seconds=45)
    assert format_duration(timedelta(hours=1, minutes=30)) == "1h30m"
    assert parse_duration("3650d", "x") == timedelta(days=3650)
    for wrong in ("", "5", "-1h", "1 hour", "0s", "3651d", "9999999d", 1e300, -5):
        with pytest.raises(AlertConfigError):
            parse_duration(wrong, "x")


def test_an_alert_on_a_pipeline_covers_that_pipeline_only() -> None:
    @legato.task
    def work() -> None: ...

    @legato.pipeline(
        tags=["finance"],
        alerts=[
            legato.alert("run_failed", channels=["ops"]),
            legato.alert("sla", within="2h", channels=["pager"], name="slow"),
        ],
    )
    def sales() -> None:
        work()

    failed, slow = sales.alerts
    assert isinstance(failed, AlertRule)
    assert (failed.name, failed.pipelines, slow.name) == (
        "sales:run_failed", ("sales",), "sales:slow"
    )
    assert slow.within == timedelta(hours=2)
    assert failed.covers("sales") and not failed.covers("sales_eu", {"finance"})


def test_a_wrong_alert_on_a_pipeline_fails_at_import() -> None:
    with pytest.raises(AlertConfigError, match="sla needs either within"):
        legato.alert("sla", channels=["ops"])

    @legato.task
    def work() -> None: ...

    with pytest.raises(DefinitionError, match="two alerts share a name"):

        @legato.pipeline(
            alerts=[legato.alert("run_failed", channels=["a"]),
                    legato.alert("run_failed", channels=["b"])]
        )
        def twice() -> None:
            work()
