"""A pipeline module that imports the connectors at its top pays nothing for their
libraries until a task calls them."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from legato.connectors import files, http
heavy = {"httpx", "pyarrow", "pandas", "polars", "jmespath", "s3fs", "fsspec"}
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & heavy)) or "none")
"""


def test_importing_the_connectors_imports_none_of_their_libraries() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.stdout.strip() == "none", done.stdout + done.stderr
