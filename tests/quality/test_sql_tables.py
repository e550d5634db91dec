"""Checks of SQL tables run in their database (SQLite and PostgreSQL): the same counts and
failing rows as on frames, and ``sql`` checks' queries giving rows or a count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from legato import checks
from legato.quality import CheckOutcome, evaluate
from tests.quality.orders import CUSTOMERS, NOW, ORDERS


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shop.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    orders = sa.Table(
        "orders",
        meta,
        sa.Column("order_id", sa.BigInteger),
        sa.Column("customer_id", sa.BigInteger),
        sa.Column("status", sa.String(20)),
        sa.Column("amount", sa.Float),
        sa.Column("created_at", sa.DateTime),
    )
    customers = sa.Table("customers", meta, sa.Column("id", sa.BigInteger, primary_key=True))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(orders.insert(), ORDERS)
        conn.execute(customers.insert(), CUSTOMERS)
    yield engine
    engine.dispose()


def run(check: checks.Check, engine: Any) -> CheckOutcome:
    # No value: the check reads the table where it is.
    return evaluate(check, None, now=NOW, engine=engine)


def ids(outcome: CheckOutcome) -> list[int]:
    return sorted(row["order_id"] for row in outcome.sample)


def counts(outcome: CheckOutcome) -> tuple[str, int | None, int | None]:
    return outcome.outcome, outcome.failed_count, outcome.total_count


def test_not_null_unique_accepted_values(engine: sa.Engine) -> None:
    outcome = run(checks.not_null("status", "created_at", table="orders"), engine)
    assert counts(outcome) == ("failed", 2, 7) and ids(outcome) == [4, 5]
    assert outcome.sample[0]["status"] is None  # whole rows, as the table has them
    assert counts(run(checks.not_null("order_id", table="orders"), engine)) == ("passed", 0, 7)

    outcome = run(checks.unique("order_id", table="orders"), engine)
    assert counts(outcome) == ("failed", 2, 7) and ids(outcome) == [3, 3]
    assert run(checks.unique("order_id", "customer_id", table="orders"), engine).passed
    outcome = run(checks.unique("customer_id", "status", table="orders"), engine)
    assert counts(outcome) == ("failed", 2, 7) and ids(outcome) == [1, 6]

    outcome = run(checks.accepted_values("status", ["new", "paid"], table="orders"), engine)
    assert counts(outcome) == ("failed", 1, 7) and ids(outcome) == [5]


def test_row_count_schema_freshness(engine: sa.Engine) -> None:
    assert run(checks.row_count(min=1, max=7, table="orders"), engine).passed
    assert run(checks.row_count(max=3, table="orders"), engine).message == "7 rows, more than 3"
    loose = {"order_id": "int64", "status": "string", "amount": "float", "created_at": "timestamp"}
    assert run(checks.schema(loose, table="orders"), engine).passed
    wrong = run(checks.schema({"status": "int64", "gone": "string"}, table="orders"), engine)
    assert wrong.message == "status: string, expected int64; gone: missing"
    exact = run(checks.schema(loose, exact=True, table="orders"), engine)
    assert exact.message == "customer_id: not expected"
    assert run(checks.freshness("created_at", "1h", table="orders"), engine).passed
    stale = run(checks.freshness("created_at", "59m", table="orders"), engine)
    assert stale.outcome == "failed" and "2026-12-06T11:00:00+00:00" in stale.message


def test_relationship_between_tables(engine: sa.Engine) -> None:
    check = checks.relationship(
        "customer_id", "shop.customers", "id", to_table="customers", table="orders"
    )
    outcome = run(check, engine)
    assert counts(outcome) == ("failed", 1, 7) and ids(outcome) == [5]
    without = checks.relationship("customer_id", "shop.customers", "id", table="orders")
    error = run(without, engine)
    assert error.outcome == "error" and "needs to_table=" in error.message


def test_sql_check_giving_rows_or_a_count(engine: sa.Engine) -> None:
    rows = run(checks.sql("SELECT order_id, amount FROM orders WHERE amount < 0"), engine)
    assert (rows.outcome, rows.failed_count, rows.sample) == (
        "failed", 1, ({"order_id": 6, "amount": -2.0},)
    )
    count = run(checks.sql("SELECT count(*) FROM orders WHERE amount < 3"), engine)
    assert (count.outcome, count.failed_count, count.message) == ("failed", 3, "3 failing rows")
    # One row of one number, but rows asked for: order 6 is the failing row, not a count.
    one = checks.sql("SELECT order_id FROM orders WHERE amount < 0", returns="rows")
    assert run(one, engine).sample == ({"order_id": 6},)
    assert run(checks.sql("SELECT * FROM orders WHERE amount > 100"), engine).passed
    zero = run(checks.sql("SELECT count(*) AS count FROM orders WHERE amount > 100"), engine)
    assert (zero.outcome, zero.failed_count) == ("passed", 0)


def test_many_failing_rows_are_counted_and_ten_kept(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO orders (order_id, status) VALUES (:i, 'void')"),
            [{"i": 100 + i} for i in range(30)],
        )
    outcome = run(checks.sql("SELECT order_id FROM orders WHERE status = 'void'"), engine)
    assert (outcome.failed_count, len(outcome.sample)) == (30, 10)
    listed = run(checks.accepted_values("status", ["new", "paid", "lost"], table="orders"), engine)
    assert (listed.failed_count, listed.total_count, len(listed.sample)) == (30, 37, 10)


def test_errors_from_the_database_are_outcomes(engine: sa.Engine) -> None:
    outcome = run(checks.not_null("nope", table="orders"), engine)
    assert outcome.outcome == "error" and "nope" in outcome.message
    missing = run(checks.row_count(min=1, table="no_such_table"), engine)
    assert missing.outcome == "error"
    no_engine = evaluate(checks.sql("SELECT 1"), None, now=NOW)
    assert (no_engine.outcome, no_engine.message) == (
        "error", "ValueError: the sql check 'sql' needs a SQL engine"
    )


def test_a_connection_will_do(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        outcome = evaluate(checks.row_count(min=7, table="orders"), None, now=NOW, engine=conn)
    assert outcome.passed


def test_time_of_day_in_an_aware_column(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (at TIMESTAMP)"))
        conn.execute(sa.text("INSERT INTO t VALUES ('2026-12-06 11:30:00+00:00')"))
    check = checks.freshness("at", "31m", table="t")
    assert evaluate(check, None, now=datetime(2026, 12, 6, 12, 0, tzinfo=UTC), engine=engine).passed


def test_unique_leaves_nulls_alone(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE keys (k INTEGER)"))
        conn.execute(sa.text("INSERT INTO keys VALUES (NULL), (NULL), (1)"))
    outcome = run(checks.unique("k", table="keys"), engine)
    assert (outcome.outcome, outcome.failed_count, outcome.total_count) == ("passed", 0, 3)
