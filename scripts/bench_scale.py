"""Do the costs stay flat as the store grows? Times the operations that used to scan
every row, at several store sizes, on SQLite and PostgreSQL.

    .venv/bin/python scripts/bench_scale.py [--sizes 10000,200000,1000000] [--backends sqlite,postgres]

For each backend and size: a fresh store (SQLite file in a temporary folder; a fresh
schema in the PostgreSQL database at --pg-url, dropped afterwards) seeded by
scripts/seed_store.py at a constant 100 articles a day (a bigger store is longer
history) with the newest 2,000 articles untagged; PostgreSQL then gets the VACUUM
ANALYZE its autovacuum would run after a bulk load. Then, each `--runs` times:

- untagged batch: claim the next 64 untagged articles (pipeline.tag_untagged's query)
- first /trends: the 90-day label trend counts (what /trends reads), on a new engine
- status --json: totals + every feed's health (what `status` reads)
- digest --preview: build and render the digest of the last day
- and, for comparison, the old `status` totals: count(*) over the articles table

Prints first and median times in ms, and each size's ratio to the smallest size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from sqlalchemy import func, select, text  # noqa: E402

from monitor.storage.engine import make_engine, open_store  # noqa: E402

import seed_store  # noqa: E402

UNTAGGED = 2_000


def timed(action, runs: int) -> tuple[float, float]:
    """(first, median) milliseconds."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return times[0], statistics.median(times)


def operations(url: str, settings, taxonomy):
    from monitor import digest as dg
    from monitor.storage import tags
    from monitor.storage.browse import trend_counts
    from monitor.storage.feeds import feed_statuses, totals
    from monitor.storage.schema import articles

    engine = make_engine(url)
    end = seed_store.END

    def untagged_batch():
        with engine.begin() as conn:
            assert len(tags.claim_untagged(conn, 64)) == 64
            conn.rollback()

    def first_trends():
        fresh = make_engine(url)  # a new process's first request: no warm connection
        trend_counts(fresh, 90, end.date())
        fresh.dispose()

    def status():
        totals(engine)
        feed_statuses(engine)

    def digest_preview():
        dg.render_digest(dg.build_digest(engine, settings, taxonomy, end - timedelta(days=1), end))

    def old_status_count():
        with engine.connect() as conn:
            conn.execute(select(func.count()).select_from(articles)).scalar_one()
            conn.execute(select(func.count(func.distinct(articles.c.cluster_id)))).scalar_one()

    return engine, {"untagged batch": untagged_batch, "first /trends": first_trends, "status --json": status,
                    "digest --preview": digest_preview, "(old count(*) totals)": old_status_count}


def measure(backend: str, size: int, args, settings, taxonomy) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        if backend == "sqlite":
            url = f"sqlite:///{tmp}/scale.db"
        else:
            admin = make_engine(args.pg_url)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = f"{args.pg_url}?options=-csearch_path%3D{schema}"
        try:
            engine = open_store(url)
            began = time.perf_counter()
            seed_store.seed(engine, size, untagged=UNTAGGED)
            seconds = time.perf_counter() - began
            if backend == "postgres":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE"))
            engine.dispose()
            print(f"{backend} {size:,}: seeded in {seconds:.0f} s", file=sys.stderr, flush=True)
            engine, actions = operations(url, settings, taxonomy)
            results = {name: timed(action, args.runs) for name, action in actions.items()}
            engine.dispose()
            return results
        finally:
            if backend == "postgres":
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()


def main() -> None:
    from monitor.settings import Settings
    from monitor.taxonomy import load_taxonomy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,200000,1000000")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    settings = Settings(root=REPO)
    taxonomy = load_taxonomy(settings.path(settings.model.taxonomy_path))
    sizes = [int(size) for size in args.sizes.split(",")]
    print("| backend | articles | operation | first ms | median ms | median vs smallest |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for backend in args.backends.split(","):
        baseline: dict[str, float] = {}
        for size in sizes:
            for name, (first, median) in measure(backend, size, args, settings, taxonomy).items():
                baseline.setdefault(name, median)
                print(f"| {backend} | {size:,} | {name} | {first:.1f} | {median:.1f} | "
                      f"{median / baseline[name]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
