"""Throughput of 1, 2 and 4 `tension-monitor worker` processes on one PostgreSQL store.

    .venv/bin/python scripts/bench_workers.py [--feeds 1000] [--items 20] [--backlog 20000] [--workers 1,2,4]

For each worker count: a fresh schema in the PostgreSQL database at --pg-url holding
--backlog untagged articles (texts: the project's training examples), --feeds feeds
of --items items each served on 127.0.0.1 (scripts/bench_ingest.py's server, its own
process), then N workers (`--processes 1` each) started together. Timed from start to
the moment every feed is polled and nothing is untagged; prints articles handled per
second (polled-and-stored plus tagged). Loopback only. On a machine with C cores,
tagging (CPU) stops scaling at about C workers; see README for where the limit is.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from sqlalchemy import func, insert, select, text  # noqa: E402

from bench_ingest import serve  # noqa: E402
from bench_processes import backlog_rows  # noqa: E402
from monitor.storage import schema  # noqa: E402
from monitor.storage.engine import make_engine, open_store  # noqa: E402

def one_run(workers: int, args, port: int, workdir: Path) -> tuple[float, int]:
    schema_name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(args.pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    url = f"{args.pg_url}?options=-csearch_path%3D{schema_name}"
    try:
        engine = open_store(url)
        with engine.begin() as conn:
            conn.execute(insert(schema.articles), backlog_rows(args.backlog))
        config = workdir / f"workers{workers}.toml"
        lines = [f'root = "{REPO}"', "[storage]", f'url = "{url}"', "[schedule]", "tick_seconds = 1"]
        for f in range(args.feeds):
            lines += ["[[feeds]]", f'name = "Bench {f}"', f'url = "http://127.0.0.1:{port}/feed/{f}.xml"']
        config.write_text("\n".join(lines) + "\n")
        began = time.perf_counter()
        procs = [subprocess.Popen([str(REPO / ".venv/bin/tension-monitor"), "--config", str(config), "worker",
                                   "--processes", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(workers)]
        try:
            total = args.backlog + args.feeds * args.items
            while True:
                time.sleep(0.5)
                with engine.connect() as conn:
                    polled = conn.execute(select(func.count()).where(schema.feeds.c.last_poll_at.is_not(None))).scalar_one()
                    stored = conn.execute(select(func.count()).select_from(schema.articles)).scalar_one()
                    untagged = conn.execute(select(func.count()).where(schema.articles.c.tagged_at.is_(None))).scalar_one()
                if polled >= args.feeds and stored >= total and untagged == 0:
                    return time.perf_counter() - began, total
                if any(p.poll() is not None for p in procs):
                    sys.exit("a worker exited early")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait()
            engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.feeds, args.items, queue), daemon=True)
    server.start()
    port = queue.get(timeout=60)
    print(f"{args.feeds} feeds x {args.items} items on 127.0.0.1, {args.backlog:,} untagged articles, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print("| workers | seconds | articles/s | vs 1 worker |")
    print("| ---: | ---: | ---: | ---: |")
    first = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for workers in [int(n) for n in args.workers.split(",")]:
                seconds, total = one_run(workers, args, port, Path(tmp))
                rate = total / seconds
                first = first or rate
                print(f"| {workers} | {seconds:.1f} | {rate:.1f} | {rate / first:.2f}x |", flush=True)
    finally:
        server.terminate()
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
