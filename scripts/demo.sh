#!/usr/bin/env bash
# Install Legato into .venv, run the retail-orders example once on the embedded default
# (SQLite store, local process pool), show what the run recorded, then serve the example with
# `legato up`: scheduler, triggers and the web UI at http://127.0.0.1:8765/, or on the port
# LEGATO_PORT names, signed in with the one-time link it prints (Ctrl-C stops).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[examples]"
export PATH="$PWD/.venv/bin:$PATH"
legato pipelines --project examples/retail_orders
legato run daily_sales --project examples/retail_orders
legato runs --project examples/retail_orders --limit 5
# The address legato up will serve: the example's [daemon] host and port, or LEGATO_PORT.
url="$(.venv/bin/python -c 'import sys; from pathlib import Path; from legato.config import load_config
c = load_config(Path(sys.argv[1])); print(f"http://{c.web_host}:{c.web_port}/")' examples/retail_orders)"
echo
echo "Starting legato up at $url: open the one-time 'sign in:' link it prints in a browser; Ctrl-C stops."
exec legato up --project examples/retail_orders
