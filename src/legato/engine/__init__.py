"""The run engine: readiness, retries, timeouts, resume and re-runs of one run (``driver``
and its parts ``driver_*``, ``book``, ``plan``), many runs in one thread (``conductor``), pool
slots (``pools``) and retry conditions (``conditions``). The state tables live in
``legato.domain.states``.

It drives runs against the store's ``DriverStore`` face and an executor; it never speaks SQL.
"""
