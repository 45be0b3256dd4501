#!/usr/bin/env bash
# Static checks on monitor/: ruff (lint), mypy (types), import-linter (the layers of
# docs/ARCHITECTURE.md). Config for all three is in pyproject.toml.
# TENSION_MONITOR_FORMAT_CHECK=1 also runs `ruff format --check` (off until the code base
# has been formatted once; see docs/DECISIONS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/ruff ] || bash scripts/setup.sh
echo "ruff check" >&2
.venv/bin/ruff check monitor
if [ "${TENSION_MONITOR_FORMAT_CHECK:-0}" = 1 ]; then
  echo "ruff format --check" >&2
  .venv/bin/ruff format --check monitor
fi
echo "mypy" >&2
.venv/bin/mypy
echo "import contracts" >&2
.venv/bin/lint-imports --no-cache
