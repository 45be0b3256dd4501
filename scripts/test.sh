#!/usr/bin/env bash
# Set up (including Debian's chromium when root) and run the whole test suite.
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
exec .venv/bin/python -m pytest -q "$@"
