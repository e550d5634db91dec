#!/usr/bin/env bash
# Install Legato with its development tools into .venv, then lint, type-check and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
# The browser tests drive Debian's Chromium through Playwright (no browser download).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "== installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi
echo "== ruff"
.venv/bin/ruff check src tests examples bench
echo "== mypy"
.venv/bin/mypy
echo "== import layers"
.venv/bin/lint-imports --no-cache
echo "== pytest"
exec .venv/bin/python -m pytest -q "$@"
