"""HTTP endpoints (FastAPI): for now the webhook trigger endpoint and a health check."""
