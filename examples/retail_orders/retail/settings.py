"""Names the example's tasks share. Where data lives is not here: legato.toml's resources
say that, per environment (``[resources.*]`` and ``[env.NAME.resources.*]``)."""

from __future__ import annotations

from datetime import date

# The web shop's nightly export, a file of the ``exports`` resource's folder.
EXPORT_FILE = "orders_export.csv"

# The last local day of the generated orders (data/generate.py): where ``bad_data`` puts its
# refund when a run has no partition.
LAST_LOCAL_DAY = date(2026, 11, 20)

# The RabbitMQ queue the daily summary is published to (where a ``broker`` is declared).
SUMMARY_QUEUE = "retail.daily_summary"

# Rates API page size: small, so that reading a week's rates takes several pages.
RATES_PER_PAGE = 10
