"""What makes a pipeline run by itself: partitions, schedules, triggers, limits and priority.

Checked when the ``@pipeline`` decorator runs, so a bad cron expression or time zone fails the
import of the pipeline's module with an error naming the pipeline and the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from legato.definitions.errors import DefinitionError
from legato.definitions.triggering import Trigger

if TYPE_CHECKING:
    from legato.definitions.partitioning import PartitionSet
    from legato.definitions.scheduling import Schedule


@dataclass(frozen=True)
class Automation:
    """A pipeline's automation settings (all optional)."""

    partitions: PartitionSet | None = None
    schedules: tuple[Schedule, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    max_active_runs: int | None = None  # None: no limit
    priority: int = 0
    tz: str = "UTC"

    def schedule(self, name: str) -> Schedule:
        """The schedule called ``name``; KeyError otherwise."""
        for s in self.schedules:
            if s.name == name:
                return s
        raise KeyError(name)

    def trigger(self, name: str) -> Trigger:
        """The trigger called ``name``; KeyError otherwise."""
        for t in self.triggers:
            if t.name == name:
                return t
        raise KeyError(name)

    def describe(self) -> dict[str, Any]:
        """JSON-able, for the pipeline's snapshot."""
        return {
            "partitions": None if self.partitions is None else self.partitions.describe(),
            "schedules": [{"name": s.name, **s.describe()} for s in self.schedules],
            "triggers": [t.describe() for t in self.triggers],
            "max_active_runs": self.max_active_runs,
            "priority": self.priority,
            "tz": self.tz,
        }


def build_automation(
    pipeline: str,
    file: str,
    line: int,
    *,
    partitions: Any = None,
    schedule: Any = None,
    triggers: Iterable[Any] = (),
    max_active_runs: int | None = None,
    priority: int = 0,
    tz: str | None = None,
) -> Automation:
    """Check and normalise the ``@pipeline`` automation arguments.

    Raises DefinitionError naming the pipeline and the field that is wrong.
    """

    def fail(field: str, why: object) -> DefinitionError:
        return DefinitionError(f"pipeline {pipeline!r}: {field}: {why}", file, line)

    from legato.definitions.partitioning import PartitionSet
    from legato.definitions.scheduling import Schedule, parse_schedule

    if partitions is not None and not isinstance(partitions, PartitionSet):
        raise fail(
            "partitions",
            f"expected daily(...), hourly(...), static([...]) or multi(...), got {partitions!r}",
        )
    zone = tz
    if zone is None:
        time_dim = partitions.time_dimension if partitions is not None else None
        zone = time_dim.tz if time_dim is not None else "UTC"
    else:
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(zone)
        except Exception:
            raise fail("tz", f"unknown time zone {zone!r}") from None

    given = (
        [] if schedule is None else schedule if isinstance(schedule, list | tuple) else [schedule]
    )
    schedules: list[Schedule] = []
    for i, item in enumerate(given, 1):
        if not isinstance(item, str | Schedule):
            raise fail("schedule", f"expected a cron text, 'every ...' or cron(...), got {item!r}")
        try:
            sched = parse_schedule(item, tz=zone)
        except ValueError as exc:
            raise fail("schedule", exc) from None
        default = "schedule" if len(given) == 1 else f"schedule-{i}"
        schedules.append(replace(sched, name=sched.name or default))
    _unique(fail, "schedule", [s.name or "" for s in schedules])

    trig = list(triggers)
    for t in trig:
        if not isinstance(t, Trigger):
            raise fail(
                "triggers",
                f"expected on_file(...), on_asset(...), on_success(...), webhook(), "
                f"redis_stream(...), nats_stream(...), rabbitmq_queue(...) or mqtt_topic(...), "
                f"got {t!r}",
            )
        if getattr(t, "upstream", None) == pipeline:
            raise fail("triggers", "a pipeline cannot be triggered by its own success")
    _unique(fail, "triggers", [t.name for t in trig])

    if max_active_runs is not None and (
        not isinstance(max_active_runs, int) or max_active_runs < 1
    ):
        raise fail("max_active_runs", f"must be a whole number >= 1, got {max_active_runs!r}")
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise fail("priority", f"must be a whole number, got {priority!r}")
    return Automation(partitions, tuple(schedules), tuple(trig), max_active_runs, priority, zone)


def _unique(fail: Any, field: str, names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise fail(field, f"two {field} are called {n!r}; give one a name=")
        seen.add(n)
