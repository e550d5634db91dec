"""Where the example's inputs and its warehouse live: all inside the project folder."""

from __future__ import annotations

from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_DIR / "data"

ORDERS_CSV = DATA_DIR / "orders_export.csv"  # the web shop's nightly export
SHOP_DB = DATA_DIR / "shop.db"  # the shop back end's SQLite database

# The analytics warehouse this example loads into. Kept under .legato/ so that it is
# ignored by git together with Legato's own run state.
WAREHOUSE = PROJECT_DIR / ".legato" / "warehouse.duckdb"
