"""Make the prod environment's PostgreSQL schemas and copy the shop's tables into one.

prod keeps Legato's run state and the shop database on PostgreSQL, each in a schema of its
own (the ``search_path`` of ``[env.prod.store] url`` and of ``[env.prod.resources.shop_db]``
in legato.toml). This script reads those settings, makes both schemas when they are
missing, and makes the rows of the shop schema's ``customers`` and ``orders`` tables those of
``data/shop.db``, the development copy, so that both environments read the same orders
(Legato's SQL connector loads them, making a table from the rows' types when it is missing):

    python examples/retail_orders/data/seed_postgres.py

``--env NAME`` seeds another environment laid out the same way. Running it again gives the
same tables.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from legato.config import load_config
from legato.connectors import sql
from legato.resources.sql import SqlResource

PROJECT = Path(__file__).resolve().parent.parent
SHOP_FILE = PROJECT / "data" / "shop.db"
TABLES = ("customers", "orders")


def search_path(options: str | None, where: str) -> str:
    """The schema a libpq ``options`` value (``-csearch_path=NAME``) selects."""
    found = re.search(r"search_path=([A-Za-z_][A-Za-z0-9_]*)", options or "")
    if found is None:
        raise SystemExit(f"{where}: no search_path=SCHEMA in its options ({options!r})")
    return found.group(1)


def make_schema(engine: Engine, schema: str) -> None:
    with engine.begin() as con:
        con.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))


def seed(project: Path, env: str) -> dict[str, Any]:
    """Make the store's and the shop's schemas of ``env``, fill the shop's; what was done."""
    config = load_config(project, env=env)
    store_url = make_url(config.database_url)
    options = store_url.query.get("options")
    store_schema = search_path(
        options if isinstance(options, str) else None, f"[env.{env}.store] url"
    )
    store = create_engine(store_url.set(drivername="postgresql+psycopg"))
    try:
        make_schema(store, store_schema)
    finally:
        store.dispose()

    table = config.resource_tables["shop_db"]
    shop_schema = search_path(
        table.get("connect_args", {}).get("options"), f"[env.{env}.resources.shop_db]"
    )
    shop = SqlResource("shop_db", table).open()
    try:
        make_schema(shop, shop_schema)
        copied = {}
        with closing(sqlite3.connect(f"{SHOP_FILE.as_uri()}?mode=ro", uri=True)) as source:
            for name in TABLES:
                frame = pd.read_sql_query(f"SELECT * FROM {name}", source)
                # One transaction per table: a reader sees the old rows or all the new ones.
                copied[name] = sql.load(shop, frame, name, mode="replace", schema=shop_schema)
    finally:
        shop.dispose()
    return {"store_schema": store_schema, "shop_schema": shop_schema, "rows": copied}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="prod", help="the environment to seed (prod)")
    args = parser.parse_args()
    done = seed(PROJECT, args.env)
    rows = ", ".join(f"{n} {name}" for name, n in done["rows"].items())
    print(
        f"{args.env}: store schema {done['store_schema']} ready; "
        f"shop schema {done['shop_schema']}: {rows}"
    )


if __name__ == "__main__":
    main()
