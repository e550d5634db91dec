"""Make the example's input data: a web-shop CSV export and a SQLite shop database.

The data is invented and fully determined by SEED, so running this again rewrites the same
files. The generated files are committed, so the example runs without this step; run it
only to change the data:

    python examples/retail_orders/data/generate.py

What it writes (one week of orders, local days 2026-11-14 to 2026-11-20, three stores):

* ``orders_export.csv``: the web shop's nightly export of its own orders. Times are
  local wall-clock strings of the store that took the order, and the export is messy the
  way real exports are: a few lines are repeated at the end (a retried export batch), some
  fields carry stray spaces, a few currency codes are lower case and a couple of rows have
  no amount (the payment provider had not confirmed them yet).
* ``shop.db``: the shop back end's SQLite database, with ``customers`` and ``orders``.
  Its orders are the in-store and app orders, plus the web orders that the shop's sync job
  had already copied over: those appear in both sources with the same ``order_id``.
"""

from __future__ import annotations

import csv
import random
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

SEED = 20261114
HERE = Path(__file__).resolve().parent
CSV_PATH = HERE / "orders_export.csv"
DB_PATH = HERE / "shop.db"

FIRST_DAY = date(2026, 11, 14)
DAYS = 7

# store time zone -> (currency, countries its customers live in, orders per day)
STORES = {
    "Europe/Berlin": ("EUR", ["DE", "DE", "DE", "FR", "NL", "AT"], 18),
    "America/New_York": ("USD", ["US", "US", "US", "CA"], 14),
    "Asia/Tokyo": ("JPY", ["JP"], 10),
}

FIRST_NAMES = {
    "DE": ["Lena", "Jonas", "Mia", "Felix", "Hanna", "Paul", "Greta", "Lukas"],
    "FR": ["Camille", "Louis", "Chloé", "Hugo"],
    "NL": ["Sanne", "Daan", "Fleur", "Bram"],
    "AT": ["Valentina", "Tobias", "Magdalena"],
    "US": ["Emma", "Liam", "Olivia", "Noah", "Ava", "Ethan", "Grace"],
    "CA": ["Chloe", "Owen", "Maya"],
    "JP": ["Yuki", "Haruto", "Sakura", "Ren", "Aoi", "Sora"],
}
LAST_NAMES = {
    "DE": ["Becker", "Hoffmann", "Krüger", "Schulz", "Wagner", "Fischer"],
    "FR": ["Martin", "Bernard", "Lefèvre", "Moreau"],
    "NL": ["de Vries", "Jansen", "Bakker", "Visser"],
    "AT": ["Gruber", "Huber", "Steiner"],
    "US": ["Miller", "Johnson", "Carter", "Brooks", "Reed", "Walsh"],
    "CA": ["Tremblay", "Roy", "Campbell"],
    "JP": ["Sato", "Suzuki", "Takahashi", "Tanaka", "Ito", "Nakamura"],
}
CUSTOMERS_PER_COUNTRY = {"DE": 14, "FR": 5, "NL": 4, "AT": 3, "US": 10, "CA": 4, "JP": 8}

# Hours of the local day at which orders come in, with weights: quiet at night, busy in
# the evening. Late hours matter: they fall on another UTC day for Tokyo and New York.
HOURS = list(range(24))
HOUR_WEIGHTS = [2, 1, 1, 0, 0, 0, 1, 2, 4, 5, 6, 6, 7, 6, 6, 6, 7, 8, 9, 10, 10, 9, 7, 4]


@dataclass
class Customer:
    customer_id: str
    name: str
    email: str
    country: str
    signed_up: str


@dataclass
class Order:
    order_id: str
    customer_id: str
    ordered_local: datetime
    store_tz: str
    amount: float
    currency: str
    items: int
    channel: str  # "web", "app" or "store"
    synced: bool = False  # web order already copied into the shop database


def make_customers(rng: random.Random) -> list[Customer]:
    customers: list[Customer] = []
    used: set[str] = set()
    for country, count in CUSTOMERS_PER_COUNTRY.items():
        for _ in range(count):
            while True:
                name = f"{rng.choice(FIRST_NAMES[country])} {rng.choice(LAST_NAMES[country])}"
                if name not in used:
                    used.add(name)
                    break
            customers.append(Customer("", name, "", country, ""))
    rng.shuffle(customers)
    for i, c in enumerate(customers, start=1):
        c.customer_id = f"C{i:04d}"
        local = c.name.lower().replace(" ", ".").replace("è", "e").replace("é", "e")
        local = local.replace("ü", "ue")
        c.email = f"{local}@example.com"
        c.signed_up = (date(2024, 1, 1) + timedelta(days=rng.randrange(0, 1000))).isoformat()
    return customers


def amount_for(rng: random.Random, currency: str) -> float:
    """A basket value: mostly small, sometimes large (log-normal), in the store's currency."""
    eur = min(max(rng.lognormvariate(3.6, 0.7), 4.9), 320.0)
    if currency == "JPY":
        return float(round(eur * 160, -1))  # yen have no minor unit; prices end in 0
    if currency == "USD":
        eur *= 1.08
    return round(eur, 2) if rng.random() < 0.6 else round(round(eur) - 0.01, 2)


def make_orders(rng: random.Random, customers: list[Customer]) -> list[Order]:
    by_store: dict[str, list[Customer]] = {tz: [] for tz in STORES}
    for c in customers:
        for tz, (_, countries, _) in STORES.items():
            if c.country in countries:
                by_store[tz].append(c)
    orders: list[Order] = []
    for day in range(DAYS):
        local_day = FIRST_DAY + timedelta(days=day)
        for tz, (currency, _, per_day) in STORES.items():
            for _ in range(per_day + rng.randint(-3, 3)):
                hour = rng.choices(HOURS, HOUR_WEIGHTS)[0]
                when = datetime(
                    local_day.year,
                    local_day.month,
                    local_day.day,
                    hour,
                    rng.randrange(60),
                    rng.randrange(60),
                )
                channel = rng.choices(["web", "app", "store"], [6, 2, 2])[0]
                orders.append(
                    Order(
                        order_id="",
                        customer_id=rng.choice(by_store[tz]).customer_id,
                        ordered_local=when,
                        store_tz=tz,
                        amount=amount_for(rng, currency),
                        currency=currency,
                        items=rng.choices([1, 2, 3, 4, 5, 6], [30, 25, 18, 12, 8, 7])[0],
                        channel=channel,
                        synced=channel == "web" and rng.random() < 0.35,
                    )
                )
    # Order numbers follow the local time only roughly, as with a real shared sequence.
    orders.sort(key=lambda o: (o.ordered_local, o.store_tz))
    for i, o in enumerate(orders, start=1):
        o.order_id = f"SO-{100000 + i}"
    return orders


CSV_HEADER = ["order_id", "customer_id", "ordered_at", "store_tz", "amount", "currency", "items"]


def csv_row(o: Order) -> list[str]:
    amount = f"{o.amount:.0f}" if o.currency == "JPY" else f"{o.amount:.2f}"
    return [
        o.order_id,
        o.customer_id,
        o.ordered_local.strftime("%Y-%m-%d %H:%M:%S"),
        o.store_tz,
        amount,
        o.currency,
        str(o.items),
    ]


def write_csv(rng: random.Random, orders: list[Order]) -> dict[str, int]:
    web = [o for o in orders if o.channel == "web"]
    rows = [csv_row(o) for o in web]
    # Stray spaces around fields, as copied out of a spreadsheet.
    for i in rng.sample(range(len(rows)), 9):
        col = rng.choice([1, 3, 5])
        rows[i][col] = rng.choice([" ", "  "]) + rows[i][col] + rng.choice(["", " "])
    # Lower-case currency codes.
    for i in rng.sample(range(len(rows)), 3):
        rows[i][5] = rows[i][5].strip().lower()
    # Orders without an amount (payment not confirmed). Only web-only orders, so that the
    # shop database has no complete copy of them: the pipeline drops them and counts them.
    unsynced = [i for i, o in enumerate(web) if not o.synced]
    missing = rng.sample(unsynced, 2)
    for i in missing:
        rows[i][4] = ""
    # A retried export batch repeated a few lines at the end of the file.
    repeated = [rows[i] for i in sorted(rng.sample(range(len(rows)), 4))]
    with CSV_PATH.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        writer.writerows(rows + repeated)
    return {
        "lines": len(rows) + len(repeated),
        "repeated": len(repeated),
        "missing_amount": len(missing),
    }


SCHEMA = """
CREATE TABLE customers (
    customer_id TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    country     TEXT NOT NULL,          -- ISO 3166 alpha-2
    signed_up   TEXT NOT NULL           -- ISO date
);
CREATE TABLE orders (
    order_id      TEXT PRIMARY KEY,
    customer_id   TEXT NOT NULL REFERENCES customers (customer_id),
    ordered_local TEXT NOT NULL,        -- wall-clock time of the store, no offset
    store_tz      TEXT NOT NULL,        -- IANA time zone of the store
    total_amount  REAL NOT NULL,        -- in the store's currency
    currency      TEXT NOT NULL,
    items         INTEGER NOT NULL,
    channel       TEXT NOT NULL         -- web, app or store
);
CREATE INDEX orders_customer ON orders (customer_id);
"""


def write_db(customers: list[Customer], orders: list[Order]) -> dict[str, int]:
    DB_PATH.unlink(missing_ok=True)
    con = sqlite3.connect(DB_PATH)
    try:
        con.executescript(SCHEMA)
        con.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
            [
                (c.customer_id, c.name, c.email, c.country, c.signed_up)
                for c in sorted(customers, key=lambda c: c.customer_id)
            ],
        )
        in_db = [o for o in orders if o.channel != "web" or o.synced]
        con.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    o.order_id,
                    o.customer_id,
                    o.ordered_local.strftime("%Y-%m-%d %H:%M:%S"),
                    o.store_tz,
                    o.amount,
                    o.currency,
                    o.items,
                    o.channel,
                )
                for o in in_db
            ],
        )
        con.commit()
        con.execute("VACUUM")
    finally:
        con.close()
    return {
        "customers": len(customers),
        "orders": len(in_db),
        "also_in_csv": sum(1 for o in in_db if o.channel == "web"),
    }


def main() -> None:
    rng = random.Random(SEED)
    customers = make_customers(rng)
    orders = make_orders(rng, customers)
    csv_stats = write_csv(rng, orders)
    db_stats = write_db(customers, orders)
    print(f"{len(orders)} orders in all")
    print(
        f"wrote {CSV_PATH.name}: {csv_stats['lines']} lines "
        f"({csv_stats['repeated']} repeated, {csv_stats['missing_amount']} without amount)"
    )
    print(
        f"wrote {DB_PATH.name}: {db_stats['customers']} customers, {db_stats['orders']} orders "
        f"({db_stats['also_in_csv']} of them also in the CSV export)"
    )


if __name__ == "__main__":
    main()
