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
# SAML signatures are checked by the xmlsec1 program (pysaml2 calls it).
if ! command -v xmlsec1 >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "== installing xmlsec1"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q xmlsec1 >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q xmlsec1 >/dev/null; }
fi
# The metrics test starts its own Prometheus server (never the system service) to scrape Legato.
if [ ! -x /usr/bin/prometheus ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "== installing prometheus"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q prometheus >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q prometheus >/dev/null; }
fi
# The OpenID Connect tests run the npm package oidc-provider under node: installed here, from
# the committed lock file, never while the tests run.
if command -v npm >/dev/null \
  && [ ! -d tests/security/oidc_idp/node_modules/oidc-provider ]; then
  echo "== installing the test OpenID Connect provider (npm ci)"
  npm ci --prefix tests/security/oidc_idp --no-audit --no-fund --loglevel=error >/dev/null
fi
echo "== ruff"
.venv/bin/ruff check src tests examples bench
echo "== mypy"
.venv/bin/mypy
echo "== import layers"
.venv/bin/lint-imports --no-cache
echo "== pytest"
# Two test processes: most tests wait on other processes (daemons, workers, browsers, servers),
# so two overlap well even on two busy cores. LEGATO_TEST_PROCESSES=0 runs them in this one.
exec .venv/bin/python -m pytest -q -n "${LEGATO_TEST_PROCESSES:-2}" --dist worksteal "$@"
