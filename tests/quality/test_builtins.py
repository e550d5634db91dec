"""The built-in checks on every kind of output: pandas, polars, an Arrow table (several
chunks) and record batch, and a list of dicts give the same outcome, failed count, total
and failing rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from legato import checks
from legato.quality import SAMPLE_ROWS, CheckOutcome, evaluate, evaluate_all
from legato.quality.outcome import jsonable
from tests.quality.orders import CUSTOMERS, NOW, ORDERS


def _arrow(rows: list[dict[str, Any]]) -> pa.Table:
    table = pa.Table.from_pylist(rows)
    # Chunks of 3 rows: a check must see every chunk, and sample across them.
    return pa.Table.from_batches(table.to_batches(max_chunksize=3))


KINDS: dict[str, Callable[[list[dict[str, Any]]], Any]] = {
    "pandas": pd.DataFrame,
    "polars": pl.DataFrame,
    "arrow": _arrow,
    "record batch": lambda rows: pa.RecordBatch.from_pylist(rows),
    "list of dicts": list,
}


@pytest.fixture(params=list(KINDS))
def make(request: pytest.FixtureRequest) -> Callable[[list[dict[str, Any]]], Any]:
    return KINDS[request.param]


def run(check: checks.Check, data: Any, **kw: Any) -> CheckOutcome:
    outcome = evaluate(check, data, now=NOW, **kw)
    # Whatever the outcome, it can be stored and served as JSON.
    json.dumps(outcome.to_json())
    return outcome


def ids(outcome: CheckOutcome) -> list[int]:
    return [row["order_id"] for row in outcome.sample]


def failed(outcome: CheckOutcome, count: int, sample: list[int]) -> None:
    assert (outcome.outcome, outcome.failed_count, outcome.total_count) == (
        "failed", count, len(ORDERS)
    ), outcome.message
    assert ids(outcome) == sample
    assert str(count) in outcome.message


def passed(outcome: CheckOutcome, total: int | None = len(ORDERS)) -> None:
    assert outcome.outcome == "passed", outcome.message
    assert outcome.total_count == total
    assert outcome.failed_count in (0, None) and outcome.sample == ()


def test_not_null(make: Callable[..., Any]) -> None:
    data = make(ORDERS)
    failed(run(checks.not_null("status"), data), 1, [4])
    failed(run(checks.not_null("status", "created_at"), data), 2, [4, 5])
    passed(run(checks.not_null("order_id", "amount"), data))


def test_not_null_counts_nan_as_null() -> None:
    for data in (pl.DataFrame({"x": [1.0, float("nan")]}), pa.table({"x": [1.0, float("nan")]})):
        outcome = run(checks.not_null("x"), data)
        assert (outcome.outcome, outcome.failed_count) == ("failed", 1)


def test_unique(make: Callable[..., Any]) -> None:
    data = make(ORDERS)
    outcome = run(checks.unique("order_id"), data)
    failed(outcome, 2, [3, 3])
    assert "1 repeated values" in outcome.message
    # A combination is unique when its columns together are.
    passed(run(checks.unique("order_id", "customer_id"), data))
    failed(run(checks.unique("customer_id", "status"), data), 2, [1, 6])


def test_unique_leaves_nulls_alone(make: Callable[..., Any]) -> None:
    rows = [{"k": None, "v": 1}, {"k": None, "v": 2}, {"k": 1, "v": 3}]
    passed(run(checks.unique("k"), make(rows)), total=3)


@pytest.mark.parametrize(
    "keys",
    [
        list(range(1000)),  # increasing: compared with the next
        [*range(500, 1000), *range(500)],  # dense integers: counted by value
        pa.array([7, -3, 0, 2], pa.int8()),
        pa.array([2**64 - 1, 2**64 - 3], pa.uint64()),
        [5, 3, 9000, 1],  # integers neither in order nor dense: sorted
        [2.5, -1.0, 7.25],
        [datetime(2026, 1, 2), datetime(2026, 1, 1)],
        pa.array([3, 1, 2], pa.date32()),
        ["b", "a", "c"],  # hashed
    ],
)
def test_unique_passes_distinct_keys_however_they_lie(keys: list[Any]) -> None:
    keys = pa.array(keys)
    passed(run(checks.unique("k"), pa.table({"k": keys})), total=len(keys))
    first = jsonable(keys[0].as_py())  # as the sample holds it
    repeated = pa.table({"k": pa.concat_arrays([keys, keys.slice(0, 1), keys.slice(0, 1)])})
    outcome = run(checks.unique("k"), repeated)
    assert (outcome.outcome, outcome.failed_count) == ("failed", 3)
    assert "(1 repeated values)" in outcome.message
    assert [row["k"] for row in outcome.sample] == [first, first, first]


def test_accepted_values(make: Callable[..., Any]) -> None:
    data = make(ORDERS)
    outcome = run(checks.accepted_values("status", ["new", "paid"]), data)
    failed(outcome, 1, [5])  # the null status is not_null's business
    assert "'new', 'paid'" in outcome.message
    passed(run(checks.accepted_values("status", ["new", "paid", "lost"]), data))
    failed(run(checks.accepted_values("order_id", [1, 2, 3]), data), 3, [4, 5, 6])


def test_accepted_values_on_categorical_columns() -> None:
    frame = pd.DataFrame({"order_id": [1, 2, 3], "status": ["new", "lost", "new"]})
    frame["status"] = frame["status"].astype("category")
    outcome = run(checks.accepted_values("status", ["new"]), frame)
    assert (outcome.failed_count, ids(outcome)) == (1, [2])
    lazy = pl.DataFrame(frame).with_columns(pl.col("status").cast(pl.Categorical)).lazy()
    assert run(checks.accepted_values("status", ["new"]), lazy).failed_count == 1


def test_row_count(make: Callable[..., Any]) -> None:
    data = make(ORDERS)
    passed(run(checks.row_count(min=1), data))
    passed(run(checks.row_count(min=7, max=7), data))
    low = run(checks.row_count(min=8), data)
    assert (low.outcome, low.total_count, low.message) == ("failed", 7, "7 rows, fewer than 8")
    high = run(checks.row_count(max=6), data)
    assert (high.outcome, high.message) == ("failed", "7 rows, more than 6")


def test_schema(make: Callable[..., Any]) -> None:
    data = make(ORDERS)
    # Without width or unit a type name takes any: "timestamp", "float", "string".
    loose = {"order_id": "int", "status": "string", "amount": "float", "created_at": "timestamp"}
    passed(run(checks.schema(loose), data))
    outcome = run(checks.schema({"order_id": "string", "missing": "int64"}), data)
    assert outcome.outcome == "failed"
    assert "missing: missing" in outcome.message and "expected string" in outcome.message
    assert [row["column"] for row in outcome.sample] == ["order_id", "missing"]
    exact = run(checks.schema({"order_id": "int64", "amount": "double"}, exact=True), data)
    assert exact.outcome == "failed"
    assert {row["column"] for row in exact.sample} == {"customer_id", "status", "created_at"}


def test_schema_with_arrow_types_and_exact_names() -> None:
    table = pa.table(
        {
            "id": pa.array([1], pa.int32()),
            "at": pa.array([datetime(2026, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
            "note": pa.array(["x"], pa.large_string()),
        }
    )
    wanted = {"id": pa.int32(), "at": "timestamp[us, tz=UTC]", "note": "string"}
    passed(run(checks.schema(wanted, exact=True), table), total=1)
    wrong = run(checks.schema({"id": "int64", "at": "timestamp[ns]"}), table)
    assert wrong.message == "id: int32, expected int64; at: timestamp[us, tz=UTC], expected " \
        "timestamp[ns]"


def test_relationship_to_another_asset(make: Callable[..., Any]) -> None:
    data = make(ORDERS)
    check = checks.relationship("customer_id", "shop.customers", "id")
    assert check.name == "relationship(customer_id -> shop.customers.id)"
    for related in (
        {"shop.customers": make(CUSTOMERS)},  # by asset key
        lambda key: make(CUSTOMERS) if key == "shop.customers" else None,
        pl.DataFrame(CUSTOMERS),  # the data itself
    ):
        outcome = run(check, data, related=related)
        failed(outcome, 1, [5])
        assert "not in shop.customers" in outcome.message


def test_relationship_to_values(make: Callable[..., Any]) -> None:
    data = make(ORDERS)
    for values in ({10, 11, 12}, [10, 11, 12], pa.array([10, 11, 12]), pd.Series([10, 11, 12])):
        failed(run(checks.relationship("customer_id", values), data), 1, [5])
    passed(run(checks.relationship("customer_id", {10, 11, 12, 99}), data))


def test_relationship_without_the_other_side_is_an_error() -> None:
    outcome = run(checks.relationship("customer_id", "shop.customers", "id"), ORDERS)
    assert outcome.outcome == "error"
    assert "no data given for 'shop.customers'" in outcome.message


def test_freshness(make: Callable[..., Any]) -> None:
    data = make(ORDERS)
    passed(run(checks.freshness("created_at", "1h"), data))  # newest 11:00, now 12:00
    outcome = run(checks.freshness("created_at", timedelta(minutes=30)), data)
    assert outcome.outcome == "failed"
    assert outcome.message == (
        "newest created_at 2026-12-06T11:00:00+00:00 is 1:00:00 old, more than 0:30:00"
    )
    assert outcome.sample == ({"column": "created_at", "newest": "2026-12-06T11:00:00+00:00",
                               "age_seconds": 3600.0},)  # fmt: skip


def test_freshness_of_aware_times_and_dates() -> None:
    aware = pa.table({"at": pa.array([datetime(2026, 12, 6, 13, 0, tzinfo=UTC)])})
    # 13:00 UTC is 14:00 in Paris: the check compares instants, not wall clocks.
    paris = pa.table({"at": aware["at"].cast(pa.timestamp("us", tz="Europe/Paris"))})
    now = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
    for data in (aware, paris):
        assert evaluate(checks.freshness("at", "1h"), data, now=now).passed
        assert not evaluate(checks.freshness("at", "59m"), data, now=now).passed
    days = pl.DataFrame({"day": [datetime(2026, 12, 5).date()]})
    assert evaluate(checks.freshness("day", "2d"), days, now=now).passed
    assert not evaluate(checks.freshness("day", "1d"), days, now=now).passed


def test_nulls_only_and_no_times(make: Callable[..., Any]) -> None:
    empty = pa.table({"at": pa.array([], pa.timestamp("us"))})
    stale = run(checks.freshness("at", "1h"), empty)
    assert (stale.outcome, stale.message) == ("failed", "no at values to date the data by")
    nulls = make([{"order_id": 1, "status": None}, {"order_id": 2, "status": None}])
    outcome = run(checks.not_null("status"), nulls)
    assert (outcome.failed_count, ids(outcome)) == (2, [1, 2])


@pytest.mark.parametrize(
    "empty",
    [
        pd.DataFrame({"order_id": pd.Series([], dtype="int64")}),
        pl.DataFrame({"order_id": []}, schema={"order_id": pl.Int64}),
        pa.table({"order_id": pa.array([], pa.int64())}),
        [],
    ],
    ids=["pandas", "polars", "arrow", "list of dicts"],
)
def test_empty_outputs_pass_row_checks_and_fail_a_minimum(empty: Any) -> None:
    for check in (checks.not_null("order_id"), checks.unique("order_id"),
                  checks.accepted_values("order_id", [1]),
                  checks.relationship("order_id", {1})):  # fmt: skip
        outcome = run(check, empty)
        assert (outcome.outcome, outcome.failed_count, outcome.total_count) == ("passed", 0, 0)
    assert run(checks.row_count(min=1), empty).message == "0 rows, fewer than 1"
    assert run(checks.row_count(max=0), empty).passed


def test_a_missing_column_is_an_error_naming_the_columns(make: Callable[..., Any]) -> None:
    outcome = run(checks.not_null("order_ID"), make(ORDERS))
    assert outcome.outcome == "error"
    assert outcome.message.startswith("KeyError: no column 'order_ID' (columns: order_id, ")
    assert outcome.blocks


def test_samples_are_at_most_ten_rows_with_long_values_cut() -> None:
    rows = [{"id": i, "note": "x" * 1000, "blob": b"\x00" * 10} for i in range(25)]
    outcome = run(checks.accepted_values("id", [0]), pa.Table.from_pylist(rows))
    assert (outcome.failed_count, len(outcome.sample)) == (24, SAMPLE_ROWS)
    assert [row["id"] for row in outcome.sample] == list(range(1, 11))
    assert len(outcome.sample[0]["note"]) == 201 and outcome.sample[0]["note"].endswith("…")
    assert outcome.sample[0]["blob"] == "AAAAAAAAAAAAAA=="


def test_unsupported_data_is_an_error() -> None:
    for value in ("a string", 42, None):
        outcome = run(checks.row_count(min=1), value)
        assert outcome.outcome == "error", value


def test_severity_name_and_asset_carry_into_the_outcome() -> None:
    check = checks.not_null("status", severity="warn", name="status set", asset="shop.orders")
    outcome = run(check, ORDERS)
    assert (outcome.name, outcome.severity, outcome.asset) == ("status set", "warn", "shop.orders")
    assert outcome.outcome == "failed" and not outcome.blocks
    assert run(checks.not_null("status"), ORDERS).blocks


def test_evaluate_all_gives_each_checks_outcome() -> None:
    frame = pl.DataFrame(ORDERS)
    many = [checks.unique("order_id"), checks.row_count(min=1), checks.not_null("nope")]
    outcomes = evaluate_all(many, frame, now=NOW)
    assert [o.outcome for o in outcomes] == ["failed", "passed", "error"]
    assert outcomes == [evaluate(c, frame, now=NOW) for c in many]
