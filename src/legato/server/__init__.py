"""The HTTP server: the REST API and the web UI composed into one app, and serving it.

It sits above both ``legato.api`` and ``legato.web``, which know nothing of each other.
"""
