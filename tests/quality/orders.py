"""The orders every check test looks at, and the customers they refer to."""

from __future__ import annotations

from datetime import UTC, datetime

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

# Order 3 twice; order 4 has no status and no customer; order 5 a status nobody accepts and
# a customer nobody knows; order 6 a negative amount.
ORDERS = [
    {"order_id": 1, "customer_id": 10, "status": "new", "amount": 5.0,
     "created_at": datetime(2026, 12, 6, 9, 0)},
    {"order_id": 2, "customer_id": 11, "status": "paid", "amount": 7.5,
     "created_at": datetime(2026, 12, 6, 10, 0)},
    {"order_id": 3, "customer_id": 10, "status": "paid", "amount": 1.0,
     "created_at": datetime(2026, 12, 6, 11, 0)},
    {"order_id": 3, "customer_id": 12, "status": "new", "amount": 2.0,
     "created_at": datetime(2026, 12, 5, 8, 0)},
    {"order_id": 4, "customer_id": None, "status": None, "amount": 3.0,
     "created_at": datetime(2026, 12, 5, 9, 0)},
    {"order_id": 5, "customer_id": 99, "status": "lost", "amount": 4.0,
     "created_at": None},
    {"order_id": 6, "customer_id": 10, "status": "new", "amount": -2.0,
     "created_at": datetime(2026, 12, 4, 9, 0)},
]  # fmt: skip
CUSTOMERS = [{"id": 10}, {"id": 11}, {"id": 12}]
