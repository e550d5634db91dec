"""Reading a resource's settings imports none of its client libraries: a project declaring
them pays for a library only in the worker that opens the resource."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from legato.resources.kind import kind_class

settings = {
    "sql": {"url": "duckdb:///w.duckdb", "pool_size": 2},
    "http": {"base_url": "https://api.example.com", "auth": {"token": "t"}, "rate_limit": 5},
    "files": {"url": "s3://bucket/prefix", "options": {"key": "k", "secret": "s"}},
    "duckdb": {"path": "w.duckdb", "pool": "warehouse"},
}
for kind, given in settings.items():
    kind_class(kind)("r", {"kind": kind, **given})
heavy = {"sqlalchemy", "httpx", "fsspec", "s3fs", "duckdb", "duckdb_engine"}
print(",".join(sorted(heavy & {m.split(".")[0] for m in sys.modules})) or "none")
"""


def test_declaring_resources_imports_no_client_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "none"
