"""The result store: task outputs kept where any worker can read them (a folder or fsspec URL).

Pickle by default; Parquet for pandas, polars and Arrow frames when it gives them back
exactly, else Arrow IPC (Arrow, polars) or pickle (pandas): see ``legato.results.exact``.
"""

from legato.results.result_errors import ResultError
from legato.results.result_store import ResultStore

__all__ = ["ResultError", "ResultStore"]
