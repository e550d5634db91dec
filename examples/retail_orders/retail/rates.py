"""The exchange rates the example's own rates API serves: euros per unit of each currency.

Each day's rate is the currency's reference rate moved by up to 2 % either way, drawn from
a generator seeded with the seed, the currency and the day: the same seed gives the same
rates on every run and every machine, as a real rate history would.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

# The currencies the shop sells in, and the reference rate each day's rate moves around.
REFERENCE_EUR_PER_UNIT = {"EUR": 1.0, "USD": 0.93, "JPY": 0.0061}
CURRENCIES = tuple(sorted(REFERENCE_EUR_PER_UNIT))
DEFAULT_SEED = 20261114


def eur_per_unit(day: date, currency: str, seed: int = DEFAULT_SEED) -> float:
    """Euros for one unit of ``currency`` on ``day``; KeyError for a currency not quoted."""
    reference = REFERENCE_EUR_PER_UNIT[currency]
    if currency == "EUR":
        return 1.0
    move = random.Random(f"{seed}:{currency}:{day.isoformat()}").uniform(-0.02, 0.02)
    # Six significant digits, as rate feeds publish them.
    return float(f"{reference * (1 + move):.6g}")


def rates_between(start: date, end: date, seed: int = DEFAULT_SEED) -> list[dict[str, object]]:
    """Every quoted currency's rate on each day from ``start`` to ``end`` (both included),
    ordered by day and currency."""
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    return [
        {
            "day": day.isoformat(),
            "currency": currency,
            "eur_per_unit": eur_per_unit(day, currency, seed),
        }
        for day in days
        for currency in CURRENCIES
    ]
