"""How a value is written to and read from the result store, chosen by the value's type.

Frame libraries are never imported to *choose* a format: a value can only be a pandas,
polars or Arrow frame if that library is already in ``sys.modules``, so the check is a dict
lookup and an identity test. Subclasses (a GeoDataFrame, say) are pickled, because Parquet
would silently give back the base class.

Whether the chosen format keeps a given frame exactly is decided in ``legato.results.exact``.
"""

from __future__ import annotations

import pickle
import sys
from typing import IO, Any

from legato.domain.refs import RESULT_FORMATS

NONE = "none"
PICKLE = "pickle"
PANDAS = "parquet-pandas"
POLARS = "parquet-polars"
ARROW = "parquet-arrow"
IPC_PANDAS = "ipc-pandas"
IPC_POLARS = "ipc-polars"
IPC_ARROW = "ipc-arrow"
# One pickled value among others in a shared file (the elements of a mapped node run in
# one batch): the ref's URI is "<file>#<index>" (see ResultStore.put_parts).
PART = "pickle-part"
FORMATS = (NONE, PICKLE, PANDAS, POLARS, ARROW, IPC_PANDAS, IPC_POLARS, IPC_ARROW, PART)

# What a task may ask for with @task(result_format=...): "auto" lets the store choose.
AUTO = RESULT_FORMATS[0]
REQUESTS = RESULT_FORMATS

# File name suffix per format; "none" writes no file.
SUFFIX = {
    PICKLE: ".pkl",
    PANDAS: ".parquet",
    POLARS: ".parquet",
    ARROW: ".parquet",
    IPC_PANDAS: ".arrow",
    IPC_POLARS: ".arrow",
    IPC_ARROW: ".arrow",
    PART: ".parts",
}

# (module that must already be imported, attribute holding the frame class, format)
_FRAMES = (
    ("pandas", "DataFrame", PANDAS),
    ("polars", "DataFrame", POLARS),
    ("pyarrow", "Table", ARROW),
)

# The format a request gives each kind of frame (keyed by the Parquet flavour).
_FLAVOURS = {
    "parquet": {PANDAS: PANDAS, POLARS: POLARS, ARROW: ARROW},
    "arrow-ipc": {PANDAS: IPC_PANDAS, POLARS: IPC_POLARS, ARROW: IPC_ARROW},
}

Source = str | IO[bytes]


def format_of(value: Any) -> str:
    """The format a value is stored in: "none", a Parquet flavour for frames, else "pickle"."""
    if value is None:
        return NONE
    cls = type(value)
    top = cls.__module__.partition(".")[0]
    for module, attr, fmt in _FRAMES:
        if top == module:
            mod = sys.modules.get(module)
            if mod is not None and cls is getattr(mod, attr, None):
                return fmt
    return PICKLE


def flavour(request: str, fmt: str) -> str | None:
    """The format ``request`` ("parquet", "arrow-ipc") gives a value that ``format_of`` calls
    ``fmt``; None if that request cannot hold such a value (it is not a frame)."""
    return _FLAVOURS[request].get(fmt)


def write(fmt: str, value: Any, f: IO[bytes]) -> None:
    """Write ``value`` to the binary file ``f`` in format ``fmt``."""
    if fmt in (PICKLE, PART):  # a part file: a tuple of pickled values
        pickle.dump(value, f, protocol=5)
    elif fmt == PANDAS:
        value.to_parquet(f)
    elif fmt == POLARS:
        value.write_parquet(f)
    elif fmt == ARROW:
        import pyarrow.parquet as pq

        pq.write_table(value, f)
    elif fmt == IPC_PANDAS:
        import pyarrow as pa
        import pyarrow.feather as feather

        # Through pyarrow rather than DataFrame.to_feather: it keeps any index, on every
        # pandas version, and the pandas metadata read_feather needs to rebuild the frame.
        feather.write_feather(pa.Table.from_pandas(value), f)
    elif fmt == IPC_POLARS:
        value.write_ipc(f)
    elif fmt == IPC_ARROW:
        import pyarrow.feather as feather

        feather.write_feather(value, f)
    else:
        raise ValueError(f"cannot write format {fmt!r}")


def read(fmt: str, source: Source) -> Any:
    """Read a value of format ``fmt`` from a local path or a binary file object."""
    if fmt in (PICKLE, PART):
        if isinstance(source, str):
            with open(source, "rb") as f:
                return pickle.load(f)
        return pickle.load(source)
    if fmt == PANDAS:
        import pandas as pd

        return pd.read_parquet(source)
    if fmt == POLARS:
        import polars as pl

        return pl.read_parquet(source)
    if fmt == ARROW:
        import pyarrow.parquet as pq

        return pq.read_table(source)
    if fmt == IPC_PANDAS:
        import pandas as pd

        return pd.read_feather(source)
    if fmt == IPC_POLARS:
        import polars as pl

        return pl.read_ipc(source)
    if fmt == IPC_ARROW:
        import pyarrow.feather as feather

        # memory_map=False: the file may be replaced or deleted while the table is in use.
        return feather.read_table(source, memory_map=False)
    if fmt == NONE:
        return None
    raise ValueError(f"unknown result format {fmt!r}")
