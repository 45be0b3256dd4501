#!/usr/bin/env bash
# Set up, poll the bundled sample feeds once into data/demo.db, and write a digest
# preview to out/digest.html (open it in a browser). No network needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
tm=".venv/bin/tension-monitor --config config/demo.toml"
$tm run --once
$tm status
mkdir -p out
$tm digest --preview out/digest.html
echo "digest preview: $(pwd)/out/digest.html" >&2
