#!/usr/bin/env bash
# Set up, poll the bundled sample feeds once into data/demo.db, and write a digest
# preview to out/digest.html (open it in a browser). No network needed.
#
# The samples (config/demo-feeds, written for one week in November 2026) are copied to
# data/demo-feeds with their dates moved so the newest is an hour old, and each stored
# article is dated as fetched when it was published, as if the monitor had run for two
# weeks: so "what moved", "vs usual" and the trend charts have data on any day. Each run
# starts a fresh data/demo.db; a preview with no relevant story never replaces one that has.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p data out
rm -f data/demo.db data/demo.db-wal data/demo.db-shm
.venv/bin/python scripts/demo_feeds.py feeds data/demo-feeds
sed 's#file:config/demo-feeds/#file:data/demo-feeds/#' config/demo.toml > data/demo.toml
tm=".venv/bin/tension-monitor --config data/demo.toml"
$tm run --once
.venv/bin/python scripts/demo_feeds.py backdate data/demo.db
$tm status
since="$(date -u -d '1 day ago' +%Y-%m-%dT%H:%M:%S)"
summary="$($tm digest --preview out/digest.new.html --since "$since")"
echo "$summary"
if [[ "$summary" == *": 0 relevant stories"* ]] && [ -f out/digest.html ]; then
  rm -f out/digest.new.html
  echo "the new window has no relevant story: kept the previous out/digest.html" >&2
else
  mv out/digest.new.html out/digest.html
fi
echo "digest preview: $(pwd)/out/digest.html" >&2
