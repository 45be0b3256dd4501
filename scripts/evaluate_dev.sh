#!/usr/bin/env bash
# The shipped model against the hand-labelled real-news dev set, with the floors that
# catch a regression. The dev set stays outside the repo (its texts belong to their
# publishers): by default ../shared/eval/real-news-dev.jsonl beside the clone, or give a
# path. Without the file this says so and exits 0, so a clone without it is not "failing".
#
# Floors: the shipped model measured micro 0.808, macro 0.812, relevance 1.00 on the 46
# texts (models/README.md); they sit about three label decisions under that.
set -euo pipefail
cd "$(dirname "$0")/.."
dev="${1:-../shared/eval/real-news-dev.jsonl}"
if [ ! -f "$dev" ]; then
  echo "skipped: no dev set at $dev (it lives outside the repo; pass its path)" >&2
  exit 0
fi
[ -x .venv/bin/tension-monitor ] || bash scripts/setup.sh
.venv/bin/tension-monitor evaluate --data "$dev" --json > "${TMPDIR:-/tmp}/tm-dev-metrics.json"
.venv/bin/python - "${TMPDIR:-/tmp}/tm-dev-metrics.json" <<'PY'
import json
import sys

floors = {"micro_f1": 0.76, "macro_f1": 0.76, "relevance_f1": 0.95}
metrics = json.load(open(sys.argv[1]))
failed = [f"{key} {metrics[key]:.3f} < {floor}" for key, floor in floors.items() if metrics[key] < floor]
print(" ".join(f"{key}={metrics[key]:.3f}" for key in floors))
if failed:
    print("under the floor: " + "; ".join(failed), file=sys.stderr)
    sys.exit(1)
PY
