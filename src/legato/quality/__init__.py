"""Data-quality checks evaluated: the built-ins (not null, unique, accepted values, row
count, schema, relationships, freshness, SQL and Python predicates, pandera schemas) run
column-wise on pandas, polars and Arrow outputs and on SQL tables through a resource, each
giving an outcome, a failed-row count and a sample of the failing rows."""

from legato.quality.evaluate import evaluate, evaluate_all
from legato.quality.outcome import SAMPLE_ROWS, CheckOutcome

__all__ = ["SAMPLE_ROWS", "CheckOutcome", "evaluate", "evaluate_all"]
