"""Schedules, triggers and backfills turned into runs; the daemon loop."""
