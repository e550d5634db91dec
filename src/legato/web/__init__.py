"""The web UI: server-rendered pages, their templates and static files, and the SVG drawings."""
