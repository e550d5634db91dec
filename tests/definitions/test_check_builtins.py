"""The check constructors of ``legato.checks``: the names checks are shown as, the
arguments they refuse, and ``@task(checks=...)`` keeping them."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from legato import checks, task


def test_default_names() -> None:
    assert [
        checks.not_null("a", "b").name,
        checks.unique("a", "b").name,
        checks.accepted_values("status", ["new"]).name,
        checks.row_count(min=1).name,
        checks.schema({"a": "int64"}).name,
        checks.relationship("customer_id", "shop.customers", "id").name,
        checks.relationship("customer_id", {1, 2}).name,
        checks.relationship("c", "shop.customers", to_table="customers").name,
        checks.freshness("at", "6h").name,
        checks.sql("SELECT 1").name,
    ] == [
        "not_null(a, b)",
        "unique(a, b)",
        "accepted_values(status)",
        "row_count",
        "schema",
        "relationship(customer_id -> shop.customers.id)",
        "relationship(customer_id -> values)",
        "relationship(c -> customers.c)",
        "freshness(at)",
        "sql",
    ]


def test_common_options() -> None:
    check = checks.unique(
        "order_id", severity="warn", name="ids", asset="shop.orders", description="no repeats",
        table="orders",
    )  # fmt: skip
    assert (check.kind, check.severity, check.name, check.asset, check.description) == (
        "unique", "warn", "ids", "shop.orders", "no repeats"
    )  # fmt: skip
    assert dict(check.args) == {"columns": ("order_id",), "table": "orders"}
    known = checks.relationship(
        "customer_id", "shop.customers", "customer_id", table="orders", to_table="customers",
        resource="shop_db",
    )  # fmt: skip
    assert (known.args["table"], known.args["resource"]) == ("orders", "shop_db")
    assert checks.freshness("at", timedelta(hours=2)).args["max_age"] == 7200.0


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: checks.not_null(), "name at least one column"),
        (lambda: checks.unique("a", 3), "column names are strings"),
        (lambda: checks.accepted_values("a", []), "at least one value"),
        (lambda: checks.row_count(), "give min, max or both"),
        (lambda: checks.row_count(min=5, max=2), "min 5 is above max 2"),
        (lambda: checks.row_count(min=1.5), "whole numbers"),
        (lambda: checks.schema({}), "mapping of column names"),
        (lambda: checks.relationship("a", "shop.customers"), "name the key column"),
        (lambda: checks.freshness("at", "soon"), "cannot read 'soon'"),
        (lambda: checks.freshness("at", 0), "max_age must be positive"),
        (lambda: checks.sql(" "), "the query is empty"),
        (lambda: checks.sql("SELECT 1", returns="some"), "returns is"),
        (lambda: checks.predicate("x > 1"), "is not callable"),
        (lambda: checks.not_null("a", severity="fatal"), "severity must be 'warn' or 'block'"),
        (lambda: checks.not_null("a", table=""), "table must be a table name"),
        (lambda: checks.not_null("a", resource="shop_db"), "give the table too"),
        (lambda: checks.unique("a", table="t", resource=""), "resource must be a resource name"),
    ],
)
def test_refused_arguments(make: object, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        make()  # type: ignore[operator]


def test_a_misspelt_option_is_refused() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'severty'"):
        checks.not_null("a", severty="warn")  # type: ignore[call-arg]


def test_a_task_keeps_its_checks() -> None:
    ids = checks.unique("order_id")
    amounts = checks.predicate(lambda df: df["amount"] >= 0, name="amount >= 0", severity="warn")

    @task(produces="shop.orders", checks=[ids, amounts])
    def orders() -> list[dict[str, int]]:
        return []

    assert orders.checks == (ids, amounts)


def test_checks_import_no_frame_or_database_library() -> None:
    code = (
        "import sys, legato.checks, legato.quality; "
        "print(sorted(m for m in ('pyarrow', 'pandas', 'polars', 'pandera', 'sqlalchemy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
