"""Schedules, triggers and backfills turned into runs: the pure ``Scheduler.tick(now)``
(``tick``), trigger listener threads (``listeners``) over event sources (``sources``).

Part of the service layer: the daemon (``legato.daemon``) calls it; it makes runs through
``legato.services.automation_service`` and never drives them.
"""
