"""The run engine: run and task state machines, readiness, retries, timeouts, resume and re-runs.

It drives one run at a time against the store and an executor; it never speaks SQL itself.
"""
