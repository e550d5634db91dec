"""The durable store: tables, queries and migrations. The only package that speaks SQL.

SQLite (WAL) by default, PostgreSQL by URL. Runs, task runs, attempts, pipeline snapshots
and an append-only event log of every state change live here.
"""
