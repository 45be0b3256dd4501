"""`reprocess --processes 2` against `--processes 1` on the same store (issue 12 item 2).

    .venv/bin/python scripts/bench_processes.py [--articles 3000] [--processes 1,2]

Stores --articles articles whose texts are the project's training examples (repeated,
each copy with its own title) in a SQLite file, then runs the real command
`tension-monitor reprocess --processes N` for each N, one after the other, and prints
the wall time (model loading included, as a user sees it), the rate, and the speed-up
against the first N. Prints the load average before and after: on a shared machine
other work slows the run with more processes most. Also prints how many cores the whole
machine kept busy on average during the run (from /proc/stat, so on an idle machine it is
the command's own use): a process tags on one core (no second thread since 2026-12-08), so
N processes can gain up to N on N cores; the main process's claims and stores cost a
little of that.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import insert  # noqa: E402

from monitor.storage import schema  # noqa: E402
from monitor.storage.engine import open_store  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def examples() -> list[tuple[str, str]]:
    rows = []
    for path in sorted((REPO / "models" / "training").glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(row["title"], row["text"]) for row in rows]


def backlog_rows(articles: int) -> list[dict]:
    """Untagged article rows whose texts are the training examples, each copy with its own title."""
    texts = examples()
    rows = []
    for n in range(articles):
        title, text = texts[n % len(texts)]
        title = f"{title} ({n // len(texts) + 1})"
        when = START + timedelta(minutes=n)
        link = f"https://news.example.com/{n}"
        rows.append({"url": link, "canonical_url": link, "content_hash": sha256(f"{title}\n{text}".encode()).hexdigest(),
                     "title": title, "text": text, "published_at": when, "published_estimated": False,
                     "fetched_at": when})
    return rows


def fill(url: str, articles: int) -> None:
    engine = open_store(url)
    with engine.begin() as conn:
        conn.execute(insert(schema.articles), backlog_rows(articles))
    engine.dispose()


def busy_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        fill(url, args.articles)
        config = Path(tmp) / "bench.toml"
        config.write_text(f'root = "{REPO}"\n[storage]\nurl = "{url}"\n')
        command = [str(REPO / ".venv" / "bin" / "tension-monitor"), "--config", str(config), "reprocess"]
        first = None
        for processes in [int(n) for n in args.processes.split(",")]:
            load = os.getloadavg()[0]
            busy_before, total_before = busy_ticks()
            began = time.perf_counter()
            done = subprocess.run([*command, "--processes", str(processes)], capture_output=True, text=True)
            seconds = time.perf_counter() - began
            busy_after, total_after = busy_ticks()
            cores = os.cpu_count() or 1
            busy = cores * (busy_after - busy_before) / max(total_after - total_before, 1)
            if done.returncode != 0:
                sys.exit(f"reprocess --processes {processes} failed: {done.stderr.strip().splitlines()[-1]}")
            first = first or seconds
            print(f"reprocess --processes {processes}: {args.articles:,} articles in {seconds:.1f} s "
                  f"({args.articles / seconds:.1f} articles/s), {first / seconds:.2f}x the first; "
                  f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after; "
                  f"{busy:.2f} of {cores} cores busy", flush=True)


if __name__ == "__main__":
    main()
