#!/usr/bin/env bash
# Install Legato with its development tools into .venv, then lint, type-check and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
echo "== ruff"
.venv/bin/ruff check src tests examples bench
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/python -m pytest -q "$@"
