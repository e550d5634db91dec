"""The service layer: what the CLI (and later the API and web UI) can ask of Legato.

Launch, drive, re-run, resume and cancel runs; list and show them; read their logs.
Thin front ends call these functions; none of them speaks SQL or touches executors directly.
"""
