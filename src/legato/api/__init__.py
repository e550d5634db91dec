"""The REST API (FastAPI) under ``/api/v1``: routes per area, pydantic bodies, error mapping,
server-sent event streams. It only calls the service door (``legato.services.door``).
"""
