"""Data-quality checks for ``@task(checks=[...])``: the built-ins, Python predicates and
pandera schemas (docs/checks.md)."""

from legato.definitions.check_builtins import (
    accepted_values,
    freshness,
    not_null,
    pandera,
    predicate,
    relationship,
    row_count,
    schema,
    sql,
    unique,
)
from legato.definitions.check_spec import SEVERITIES, Check

__all__ = [
    "SEVERITIES",
    "Check",
    "accepted_values",
    "freshness",
    "not_null",
    "pandera",
    "predicate",
    "relationship",
    "row_count",
    "schema",
    "sql",
    "unique",
]
