#!/usr/bin/env bash
# Every speed target in one run (the README quotes its output). Takes a few minutes:
# it builds 200,000-article stores for the digest and the web page. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
echo "== ingest (500 feeds x 50 items)";   $py scripts/bench_ingest.py --feeds 500 --items 50 --tag-feeds 20
echo "== parse (feedparser vs parse_feed)"; $py scripts/bench_parse.py
echo "== tagging";                          $py scripts/bench_tagging.py
echo "== digest (200,000 articles)";        $py scripts/bench_digest.py --articles 200000
echo "== web (200,000 articles)";           $py scripts/bench_web.py --articles 200000
