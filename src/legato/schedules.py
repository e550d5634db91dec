"""Schedules for ``@pipeline(schedule=...)``: cron (time zone and DST aware) and intervals."""

from legato.definitions.scheduling import Schedule, ScheduleError, cron, every, parse_schedule

__all__ = ["Schedule", "ScheduleError", "cron", "every", "parse_schedule"]
