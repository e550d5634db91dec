#!/usr/bin/env bash
# Install Legato into .venv and run the retail-orders example on the embedded default
# (SQLite store, local process pool), then show what the run recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[examples]"
export PATH="$PWD/.venv/bin:$PATH"
legato pipelines --project examples/retail_orders
legato run daily_sales --project examples/retail_orders
legato runs --project examples/retail_orders --limit 5
