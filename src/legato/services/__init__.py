"""The service layer: everything a front end may ask of Legato, through one door.

``door.Door`` hands a front end the services bound to who is acting (``actor.Actor``):
runs (``run_service``), the catalog of pipelines and runs (``catalog``), schedules, triggers,
backfills and the queue (``automation_service``), the project (``project``), daemon heartbeats
(``presence``) and the schema (``schema_service``). Every public method of a service is an
action that passes the gate (``gate``), the one place for permissions and the audit log.
``driving`` is the one home for driving runs; ``workspace`` holds the project's settings and
parts (store, executor, clock), which only services see.
"""
