"""Fixtures for connector tests: a bucket on the local S3-compatible server (tests/conftest.py's
``s3_endpoint``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class S3:
    """A bucket on the local S3 server, and the storage options that reach it."""

    bucket: str
    options: dict[str, Any]

    def url(self, path: str) -> str:
        return f"s3://{self.bucket}/{path}"


@pytest.fixture
def s3(s3_endpoint: str) -> S3:
    """A new, empty bucket on the local S3 server."""
    import uuid

    import s3fs

    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": s3_endpoint, "region_name": "eu-west-1"},
    }
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(**options).mkdir(bucket)
    return S3(bucket, options)
