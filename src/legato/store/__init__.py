"""The durable store: tables, queries and migrations. The only package that speaks SQL.

SQLite (WAL) by default, PostgreSQL by URL. Runs, task runs, attempts, pipeline snapshots
and an append-only event log of every state change live here.

Modules: ``records`` (the immutable records and errors - the contract), ``store`` (``Store``,
``new_run_id``), ``db`` (engines), ``schema`` (tables), ``migrate`` (Alembic, imported only when
a database needs migrating), ``statements``/``rows`` (SQL and row conversion, internal).
"""
