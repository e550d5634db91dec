"""Checks users write: Python predicates over any kind of output, pandera schemas (pandas
and polars), and what a check that raises gives."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa_pd
import pandera.polars as pa_pl
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from legato import checks
from legato.quality import CheckOutcome, evaluate
from tests.quality.orders import NOW, ORDERS


def run(check: checks.Check, data: Any) -> CheckOutcome:
    return evaluate(check, data, now=NOW)


def ids(outcome: CheckOutcome) -> list[int]:
    return [row["order_id"] for row in outcome.sample]


# The same rule, amount >= 0, as each kind of output is written against.
PREDICATES: dict[str, tuple[Any, Any]] = {
    "pandas": (pd.DataFrame(ORDERS), lambda df: df["amount"] >= 0),
    "polars series": (pl.DataFrame(ORDERS), lambda df: df["amount"] >= 0),
    "polars expression": (pl.DataFrame(ORDERS), lambda df: pl.col("amount") >= 0),
    "arrow": (pa.Table.from_pylist(ORDERS), lambda t: pc.greater_equal(t["amount"], 0)),
    "list of dicts": (ORDERS, lambda rows: [row["amount"] >= 0 for row in rows]),
}


@pytest.mark.parametrize("kind", list(PREDICATES))
def test_predicate_masks(kind: str) -> None:
    data, fn = PREDICATES[kind]
    outcome = run(checks.predicate(fn, name="amount >= 0"), data)
    assert (outcome.outcome, outcome.failed_count, outcome.total_count) == ("failed", 1, 7)
    assert ids(outcome) == [6]
    assert outcome.message == "1 of 7 rows fail amount >= 0"


def test_a_null_in_the_mask_fails_its_row() -> None:
    mask = checks.predicate(lambda t: pa.array([True, None, True]))
    outcome = run(mask, pa.table({"order_id": [1, 2, 3]}))
    assert (outcome.failed_count, ids(outcome)) == (1, [2])


def test_predicate_giving_one_bool() -> None:
    def big_enough(df: pl.DataFrame) -> bool:
        return df.height > 3

    outcome = run(checks.predicate(big_enough), pl.DataFrame(ORDERS))
    assert (outcome.name, outcome.outcome) == ("big_enough", "passed")
    small = run(checks.predicate(big_enough), pl.DataFrame(ORDERS[:2]))
    assert (small.outcome, small.message) == ("failed", "big_enough is false for the data")


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda df: 1 / 0, "ZeroDivisionError: division by zero"),
        (lambda df: [True], "ValueError: the predicate gave 1 values for 7 rows"),
        (lambda df: pa.array([1] * 7), "TypeError: the predicate gave int64 values, not booleans"),
        (lambda df: df["no_such"] > 0, "ColumnNotFoundError"),
    ],
)
def test_a_predicate_that_raises_is_an_error(fn: Any, message: str) -> None:
    outcome = run(checks.predicate(fn), pl.DataFrame(ORDERS))
    assert (outcome.outcome, outcome.failed_count) == ("error", None)
    assert outcome.message.startswith(message)
    assert outcome.blocks


PANDAS_SCHEMA = pa_pd.DataFrameSchema(
    {
        "order_id": pa_pd.Column(int, unique=True),
        "amount": pa_pd.Column(float, pa_pd.Check.ge(0)),
    },
    name="orders",
)
POLARS_SCHEMA = pa_pl.DataFrameSchema(
    {"order_id": pa_pl.Column(pl.Int64), "amount": pa_pl.Column(pl.Float64, pa_pl.Check.ge(0))}
)


class Orders(pa_pl.DataFrameModel):
    amount: float = pa_pl.Field(ge=0)


@pytest.mark.parametrize(
    "data",
    [pd.DataFrame(ORDERS), pa.Table.from_pylist(ORDERS), ORDERS, pl.DataFrame(ORDERS)],
    ids=["pandas", "arrow", "list of dicts", "polars"],
)
def test_pandera_pandas_schema(data: Any) -> None:
    outcome = run(checks.pandera(PANDAS_SCHEMA), data)
    assert (outcome.name, outcome.failed_count) == ("pandera(orders)", 3)
    assert sorted(ids(outcome)) == [3, 3, 6]
    assert "amount: greater_than_or_equal_to(0) (1 rows)" in outcome.message
    assert "order_id: field_uniqueness (2 rows)" in outcome.message


def test_pandera_failing_rows_of_a_labelled_frame() -> None:
    frame = pd.DataFrame(ORDERS, index=[f"row{i}" for i in range(len(ORDERS))])
    outcome = run(checks.pandera(PANDAS_SCHEMA), frame)
    assert sorted(ids(outcome)) == [3, 3, 6]


@pytest.mark.parametrize("schema", [POLARS_SCHEMA, Orders], ids=["schema", "model"])
@pytest.mark.parametrize(
    "data", [pl.DataFrame(ORDERS), pa.Table.from_pylist(ORDERS)], ids=["polars", "arrow"]
)
def test_pandera_polars_schema(schema: Any, data: Any) -> None:
    outcome = run(checks.pandera(schema), data)
    assert (outcome.outcome, outcome.failed_count, ids(outcome)) == ("failed", 1, [6])
    good = [row for row in ORDERS if row["amount"] >= 0]
    assert run(checks.pandera(schema), pl.DataFrame(good)).passed


def test_pandera_failure_of_the_whole_frame() -> None:
    outcome = run(checks.pandera(Orders), pl.DataFrame({"order_id": [1]}))
    assert (outcome.outcome, outcome.failed_count) == ("failed", None)
    assert outcome.message == "Orders: column_in_dataframe: amount"


def test_not_a_pandera_schema() -> None:
    with pytest.raises(ValueError, match="not a pandera schema"):
        checks.pandera({"amount": float})


@pytest.mark.parametrize(
    "data",
    [pd.DataFrame(ORDERS), pl.DataFrame(ORDERS), pa.Table.from_pylist(ORDERS), ORDERS],
    ids=["pandas", "polars", "arrow", "list of dicts"],
)
def test_sql_on_an_output_with_duckdb(data: Any) -> None:
    rows = run(checks.sql("SELECT order_id, amount FROM data WHERE amount < 0"), data)
    assert (rows.outcome, rows.failed_count, rows.total_count) == ("failed", 1, 7)
    assert rows.sample == ({"order_id": 6, "amount": -2.0},)
    count = run(checks.sql("SELECT count(*) FROM data WHERE status IS NULL"), data)
    assert (count.outcome, count.failed_count, count.message) == ("failed", 1, "1 failing rows")
    assert run(checks.sql("SELECT * FROM data WHERE amount > 100"), data).passed
    wrong = run(checks.sql("SELECT nope FROM data"), data)
    assert wrong.outcome == "error" and "nope" in wrong.message
