"""The durable store: tables, queries and migrations. The only package that speaks SQL.

SQLite (WAL) by default, PostgreSQL by URL. ``store.Store`` composes one part per aggregate
over one ``database.Database``: ``run_store`` (runs, task runs, attempts, events, snapshots,
leases one run at a time, the driver's step), ``claim_store`` (several schedulers claiming
runs), ``queue_store``, ``schedule_store``, ``trigger_store``, ``backfill_store``,
``pool_store``, ``browse_store`` (lists and operator marks), ``daemon_store`` (heartbeats).
Consumers depend on the faces in ``faces``. Where SQLite and PostgreSQL differ is said in
``dialect`` (and the lease clock in ``statements``). ``db`` makes engines, ``schema`` holds the
tables, ``migrate`` runs Alembic (imported only when a database needs migrating), ``rows``
converts rows to the records of ``legato.domain``.
"""
