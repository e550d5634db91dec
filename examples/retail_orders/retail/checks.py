"""Data checks on the cleaned orders, run before anything is written to the warehouse."""

from __future__ import annotations

import pandas as pd

from retail.rates import CURRENCIES


class DataCheckError(Exception):
    """The orders break one or more rules; the message lists each broken rule."""


def _examples(values: pd.Series, limit: int = 5) -> str:
    shown = [str(v) for v in values.head(limit)]
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(shown) + more


def find_problems(orders: pd.DataFrame) -> list[str]:
    """Every broken rule, one line each with a few example order ids; empty when all hold."""
    problems: list[str] = []
    missing_id = orders["order_id"].isna() | (orders["order_id"] == "")
    if missing_id.any():
        problems.append(f"{int(missing_id.sum())} orders have no order_id")
    repeated = orders.loc[orders["order_id"].duplicated(keep=False) & ~missing_id, "order_id"]
    if not repeated.empty:
        ids = repeated.drop_duplicates()
        problems.append(f"{len(ids)} order_ids occur more than once: {_examples(ids)}")
    not_positive = orders.loc[~(orders["amount"] > 0), "order_id"]
    if not not_positive.empty:
        problems.append(
            f"{len(not_positive)} orders have a missing, zero or negative amount: "
            f"{_examples(not_positive)}"
        )
    no_time = orders.loc[orders["ordered_at_utc"].isna(), "order_id"]
    if not no_time.empty:
        problems.append(f"{len(no_time)} orders have no order time: {_examples(no_time)}")
    unknown_currency = orders.loc[~orders["currency"].isin(CURRENCIES), "order_id"]
    if not unknown_currency.empty:
        problems.append(
            f"{len(unknown_currency)} orders are in a currency the rates API does not quote: "
            f"{_examples(unknown_currency)}"
        )
    no_customer = orders.loc[orders["customer_name"].isna(), "order_id"]
    if not no_customer.empty:
        problems.append(
            f"{len(no_customer)} orders have a customer_id not in the customers table: "
            f"{_examples(no_customer)}"
        )
    return problems


def check_orders(orders: pd.DataFrame) -> None:
    """Raise DataCheckError naming every broken rule, or return quietly."""
    problems = find_problems(orders)
    if problems:
        raise DataCheckError(
            f"{len(problems)} data check(s) failed on {len(orders)} orders: " + "; ".join(problems)
        )
