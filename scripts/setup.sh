#!/usr/bin/env bash
# Create .venv in the repo root with the project and its test extras installed.
# Idempotent: re-running only installs what changed. `--browser` also installs Debian's
# chromium (for the browser tests and screenshots) when it is missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
[ "${1:-}" = "--browser" ] && want_browser=1

# The newest supported Python found (pyproject: >=3.11,<3.14): pyenv's builds first,
# then python3.1x on PATH. TENSION_MONITOR_PYTHON picks one explicitly (CI's smoke test).
python="${TENSION_MONITOR_PYTHON:-}"
if [ -z "$python" ]; then
  pyenv_root="$(pyenv root 2>/dev/null || true)"
  for minor in 13 12 11; do
    for candidate in ${pyenv_root:+$pyenv_root/versions/3.$minor*/bin/python3.$minor} "python3.$minor"; do
      if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys' 2>/dev/null; then
        python=$candidate; break 2
      fi
    done
  done
fi
if [ -z "$python" ] || ! "$python" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 13)))' 2>/dev/null; then
  echo "error: Python 3.11, 3.12 or 3.13 is required (none found${python:+; $python is not one})" >&2
  exit 2
fi

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"

if [ "$want_browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests..." >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: /usr/bin/chromium missing and not root: browser tests will be skipped" >&2
  fi
fi
echo "ready: .venv/bin/tension-monitor" >&2
