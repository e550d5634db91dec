"""The ``legato`` command (Typer and Rich): a thin front end over the service door.

``main`` (run, rerun, resume, cancel, runs, show, logs, pipelines, init), ``operate`` (up, web,
scheduler, schedules, triggers, backfills, queue), ``db_commands`` (``legato db``); every
command acts as the local user (``Actor.local_user``).
"""
