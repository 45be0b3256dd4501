#!/usr/bin/env bash
# A user's first run on one Python: `pip install` the repo (not editable) into a fresh
# venv outside it, then from an empty folder with empty HOME and XDG folders: classify
# stdin with no config, `run --once` on the demo feeds with a config holding only
# [storage] and [[feeds]], `digest --preview`, `status --json`.
#   bash scripts/smoke.sh python3.12 [python3.11 ...]
# CI runs it on the two Pythons the suite does not use (.ci/run).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -ge 1 ] || { echo "usage: $0 PYTHON [PYTHON...]" >&2; exit 2; }

smoke() {
  local python=$1 scratch
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' RETURN
  echo "== smoke test on $("$python" --version)" >&2
  "$python" -m venv "$scratch/venv"
  "$scratch/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$repo"
  mkdir -p "$scratch/home" "$scratch/work"
  (
    cd "$scratch/work"
    export HOME="$scratch/home" XDG_CONFIG_HOME="$scratch/home/.config" XDG_DATA_HOME="$scratch/home/.local/share"
    unset TENSION_MONITOR_CONFIG
    tm="$scratch/venv/bin/tension-monitor"
    echo "Microsoft hired three senior OpenAI researchers for its superintelligence team, offering pay packages worth tens of millions." \
      | "$tm" classify --json > classify.json
    grep -q '"talent"' classify.json || { echo "classify did not tag talent: $(cat classify.json)" >&2; exit 1; }
    {
      echo '[storage]'
      echo 'url = "sqlite:///smoke.db"'
      for feed in "$repo"/config/demo-feeds/*.xml; do
        printf '[[feeds]]\nname = "%s"\nurl = "%s"\n' "$(basename "$feed" .xml)" "file://$feed"
      done
    } > tension-monitor.toml
    "$tm" run --once
    "$tm" digest --preview digest.html
    grep -q "relevant stories" digest.html || { echo "digest preview has no stories" >&2; exit 1; }
    "$tm" status --json > status.json
    "$tm" status --config tension-monitor.toml --json | "$scratch/venv/bin/python" -c \
      'import json, sys; s = json.load(sys.stdin); assert s["articles"] > 0, s'
  )
  echo "ok: $("$python" --version)" >&2
}

for python in "$@"; do
  smoke "$python"
done
