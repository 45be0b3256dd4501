"""The demo's sample feeds, dated relative to now, and a store that looks two weeks old.

`feeds OUT_DIR`: copy config/demo-feeds/*.xml to OUT_DIR with every date moved by the
same amount, so the newest sample is an hour old and the rest spread over the two weeks
before, as they do in the files (written for a fixed week in November 2026).

`backdate DB`: after `run --once`, set each demo article's fetch time to its publication
time, as if the monitor had been polling for two weeks. Digest windows count by fetch
time, so only this gives "what moved" a trailing history and the preview a one-day window.
"""

from __future__ import annotations

import argparse
import email.utils
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "config" / "demo-feeds"
RSS_DATE = re.compile(r"<pubDate>([^<]+)</pubDate>")
ATOM_DATE = re.compile(r"<(published|updated)>([^<]+)</(?:published|updated)>")


def _item_dates(text: str) -> list[datetime]:
    # Items only: a channel's own date (a later build time) would leave the newest story days old.
    items = text[min(i for i in (text.find("<item>"), text.find("<entry>"), len(text)) if i >= 0):]
    found = [email.utils.parsedate_to_datetime(m.group(1)) for m in RSS_DATE.finditer(items)]
    return found + [datetime.fromisoformat(m.group(2).replace("Z", "+00:00")) for m in ATOM_DATE.finditer(items)]


def shift_text(text: str, delta: timedelta) -> str:
    text = RSS_DATE.sub(lambda m: f"<pubDate>{email.utils.format_datetime(email.utils.parsedate_to_datetime(m.group(1)) + delta)}</pubDate>", text)
    return ATOM_DATE.sub(
        lambda m: f"<{m.group(1)}>{(datetime.fromisoformat(m.group(2).replace('Z', '+00:00')) + delta).isoformat()}</{m.group(1)}>",
        text,
    )


def write_feeds(out: Path, now: datetime) -> timedelta:
    texts = {path.name: path.read_text(encoding="utf-8") for path in sorted(SOURCE.glob("*.xml"))}
    newest = max(date for text in texts.values() for date in _item_dates(text))
    delta = now - timedelta(hours=1) - newest
    out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (out / name).write_text(shift_text(text, delta), encoding="utf-8")
    return delta


def backdate(db: Path, now: datetime) -> int:
    from sqlalchemy import update

    from monitor.storage import schema
    from monitor.storage.engine import open_store

    engine = open_store(f"sqlite:///{db}")
    articles = schema.articles
    with engine.begin() as conn:
        moved = conn.execute(
            update(articles).where(articles.c.published_at <= now).values(fetched_at=articles.c.published_at)
        ).rowcount
    engine.dispose()
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("feeds").add_argument("out", type=Path)
    sub.add_parser("backdate").add_argument("db", type=Path)
    args = parser.parse_args()
    now = datetime.now(timezone.utc)
    if args.command == "feeds":
        delta = write_feeds(args.out, now)
        print(f"demo feeds in {args.out}, dates moved by {delta.days} days", file=sys.stderr)
    else:
        print(f"{backdate(args.db, now)} demo articles dated as fetched when published", file=sys.stderr)


if __name__ == "__main__":
    main()
