"""Ingest commands: `run --once`, `daemon`, `status`, `feeds import|export|list`."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from monitor.cli import pass_ctx, processes_option
from monitor.errors import InputError


def register(cli: click.Group) -> None:
    cli.add_command(run)
    cli.add_command(daemon)
    cli.add_command(status)
    cli.add_command(feeds_group)
    cli.add_command(import_articles)
    cli.add_command(worker)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _synced_engine(ctx):
    """The store with the config's feeds in it, so every command sees the same list."""
    from monitor.storage.feeds import sync_config_feeds

    sync_config_feeds(ctx.app.engine, ctx.settings.feeds, _now())
    return ctx.app.engine


@click.command()
@click.option("--once", is_flag=True, help="Poll the due feeds once and exit (the daemon polls continuously).")
@click.option("--all", "all_feeds", is_flag=True, help="Poll every active feed, due or not.")
@click.option("--no-tag", is_flag=True, help="Store articles without tagging them (the next run tags them).")
@pass_ctx
def run(ctx, once: bool, all_feeds: bool, no_tag: bool) -> None:
    """Poll feeds once: fetch, store new articles, tag them. On the first run every feed is due."""
    from monitor.pipeline import run_cycle

    if not once:
        raise click.UsageError("use `run --once` for a single poll, or `daemon` to keep polling")
    with _ProgressBar() as progress:
        report = run_cycle(ctx.app, _now(), only_due=not all_feeds, tag=not no_tag, progress=progress)
    tagged = f"; tagged {report.tagged}" if report.tagged else ""
    untagged = f"; not tagged: {report.tag_error}" if report.tag_error and not no_tag else ""
    click.echo(
        f"polled {report.polled} feeds: {report.new_articles} new articles, "
        f"{report.failures} failures{tagged}{untagged}"
    )


class _ProgressBar:
    """A rich progress bar on stderr when a person is watching; a no-op callback otherwise.
    Log lines are routed through rich meanwhile, so they scroll above the bar."""

    def __enter__(self):
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import Progress

        self._bar = Progress(*self._columns(), console=Console(stderr=True), transient=True)
        original = sys.stderr
        self._bar.start()  # from here sys.stderr is rich's proxy
        self._handlers = [h for h in logging.getLogger().handlers
                          if isinstance(h, logging.StreamHandler) and h.stream is original]
        for handler in self._handlers:
            handler.setStream(sys.stderr)
        self._original, self._task = original, None
        return self.update

    def _columns(self):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

        return [TextColumn("polling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}")]

    def update(self, done: int, total: int, poll) -> None:
        if self._task is None:
            self._task = self._bar.add_task("", total=total)
        self._bar.update(self._task, completed=done, description=poll.name[:40])

    def __exit__(self, *exc):
        if hasattr(self, "_bar"):
            self._bar.stop()
            for handler in self._handlers:
                handler.setStream(self._original)


@click.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@processes_option
@click.option("--no-tag", is_flag=True, help="Store the articles without tagging them (the next run tags them).")
@pass_ctx
def import_articles(ctx, path: Path, processes: int, no_tag: bool) -> None:
    """Import past articles from a JSONL or CSV file (our `export`, NewsAPI, GDELT-like
    columns...): stored, de-duplicated, clustered and tagged like polled items. Bad rows
    are reported by line and skipped; a re-run resumes where a crashed import stopped."""
    from monitor.pipeline import import_file
    from monitor.tagpool import Tagger

    _synced_engine(ctx)
    size = path.stat().st_size if path.is_file() else 0
    with Tagger(ctx.app, processes) as tagger, _ImportProgress(size) as bar:
        report = import_file(ctx.app, path, _now(), tagger, tag=not no_tag, progress=bar.stored, tag_progress=bar.tagged)
    for line, problem in report.bad:
        click.echo(f"{path}:{line}: {problem}", err=True)
    resumed = " (resumed where the last import of this file stopped)" if report.resumed else ""
    tagged = f"; tagged {report.tagged}" if not no_tag else ""
    untagged = f"; not tagged: {report.tag_error}" if report.tag_error else ""
    click.echo(f"imported {path}{resumed}: {report.new} new articles, {report.duplicates} already stored, "
               f"{len(report.bad)} bad rows{tagged}{untagged}")


class _ImportProgress(_ProgressBar):
    """Bytes of the file stored, then articles tagged."""

    def __init__(self, size: int):
        self.size = size

    def __enter__(self):
        if super().__enter__() is None:
            return _NoProgress()
        self._task = self._bar.add_task("storing", total=self.size)
        self._tagging = None
        return self

    def _columns(self):
        from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeElapsedColumn

        return [TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn()]

    def stored(self, offset: int, report) -> None:
        self._bar.update(self._task, completed=offset,
                         description=f"storing: {report.new} new, {len(report.bad)} bad rows")

    def tagged(self, count: int) -> None:
        if self._tagging is None:
            self._tagging = self._bar.add_task("tagging", total=None)
        self._bar.update(self._tagging, completed=count, description=f"tagging: {count}")


class _NoProgress:
    def stored(self, offset: int, report) -> None:
        pass

    def tagged(self, count: int) -> None:
        pass


@click.command()
@processes_option
@pass_ctx
def daemon(ctx, processes: int) -> None:
    """Poll continuously: tick, poll due feeds, send the digest when due. SIGTERM exits cleanly."""
    from monitor.scheduler import run_daemon

    _synced_engine(ctx)
    click.get_current_context().exit(run_daemon(ctx.app, processes))


@click.command()
@processes_option
@pass_ctx
def worker(ctx, processes: int) -> None:
    """One of many processes (on one or more machines) sharing a PostgreSQL store: lease
    due feeds and untagged articles in batches; one of them also sends the digest."""
    from monitor.worker import run_worker

    click.get_current_context().exit(run_worker(ctx.app, processes))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def status(ctx, as_json: bool) -> None:
    """Feed health (last poll, HTTP status, errors, backoff, next poll) and totals."""
    from monitor.storage.feeds import feed_statuses, totals

    engine = _synced_engine(ctx)
    feeds, counts = feed_statuses(engine), totals(engine)
    next_digest = _next_digest(ctx.settings)
    if as_json:
        click.echo(json.dumps(_status_json(feeds, counts, next_digest), indent=2))
        return
    _print_status(feeds, counts, next_digest)


def _next_digest(settings) -> datetime:
    from monitor.digest import next_send_time

    return next_send_time(settings, _now())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _status_json(feeds, counts: dict, next_digest: datetime) -> dict:
    return {
        "articles": counts["articles"],
        "feeds": [
            {
                "name": f.name, "url": f.url, "last_status": f.last_status, "last_error": f.last_error,
                "articles": f.articles, "next_poll": _iso(f.next_poll_at), "active": f.active,
                "origin": f.origin, "last_poll": _iso(f.last_poll_at), "error_count": f.error_count,
                "failing_since": _iso(f.failing_since), "last_new_items": f.last_new_items,
            }
            for f in feeds
        ],
        "totals": {k: v for k, v in counts.items() if k != "last_digest"},
        "last_digest": {k: _iso(v) if isinstance(v, datetime) else v for k, v in counts["last_digest"].items()}
        if counts["last_digest"] else None,
        "next_digest": _iso(next_digest),
    }


def _print_status(feeds, counts: dict, next_digest: datetime) -> None:
    from rich import box
    from rich.table import Table

    from monitor.cli import make_console

    now = _now()
    console = make_console(compact=True)
    # Piped: no borders, so every feed is one plain line; a terminal gets the boxed table.
    table = Table(title="Feeds", title_justify="left", box=box.HEAVY_HEAD if console.is_terminal else None)
    for column in ("feed", "health", "last poll", "HTTP", "new", "articles", "next poll", "last error"):
        table.add_column(column, overflow="fold", justify="right" if column in ("HTTP", "new", "articles") else "left")
    for f in feeds:
        table.add_row(f.name, _health(f, now), _ago(f.last_poll_at, now), str(f.last_status or "-"), str(f.last_new_items),
                      str(f.articles), _until(f.next_poll_at, now) if f.active else "-", f.last_error or "")
    console.print(table)
    console.print(
        f"{counts['articles']} articles in {counts['stories']} stories ({counts['untagged']} untagged); "
        f"{counts['active_feeds']} active feeds of {counts['feeds']}, {counts['failing_feeds']} failing"
    )
    last = counts["last_digest"]
    previous = f"{last['status']}, window ending {last['window_end']:%Y-%m-%d %H:%M} UTC" if last else "none yet"
    console.print(f"last digest: {previous}; next due {next_digest:%Y-%m-%d %H:%M} UTC")


def _health(f, now: datetime) -> str:
    if not f.active:
        return "[dim]inactive[/dim]"
    if f.error_count:
        return f"[red]failing x{f.error_count} since {_ago(f.failing_since, now)}[/red]"
    return "[green]ok[/green]" if f.last_poll_at else "never polled"


def _ago(value: datetime | None, now: datetime) -> str:
    return "-" if value is None else f"{_span(now - value)} ago"


def _until(value: datetime | None, now: datetime) -> str:
    return "now" if value is None or value <= now else f"in {_span(value - now)}"


def _span(delta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@click.group("feeds")
def feeds_group() -> None:
    """Manage the feed list beyond the config file (OPML import/export)."""


@feeds_group.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@pass_ctx
def feeds_import(ctx, path: Path) -> None:
    """Add the feeds of an OPML file (as exported by any feed reader)."""
    from monitor.opml import read_opml
    from monitor.storage.feeds import add_feeds

    entries = read_opml(path)
    added, skipped = add_feeds(_synced_engine(ctx), entries, _now())
    click.echo(f"imported {added} feeds from {path} ({skipped} already present)")


@feeds_group.command("export")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False), required=False)
@pass_ctx
def feeds_export(ctx, path: Path | None) -> None:
    """Write the active feeds as OPML to PATH (default: stdout)."""
    from monitor.opml import write_opml
    from monitor.storage.feeds import list_feeds

    feeds = list_feeds(_synced_engine(ctx), active_only=True)
    document = write_opml((name, url) for name, url, _, _ in feeds)
    if path is None:
        click.echo(document, nl=False)
        return
    try:
        path.write_text(document, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror}") from None
    click.echo(f"wrote {len(feeds)} feeds to {path}", err=True)


@feeds_group.command("enable")
@click.argument("feed")
@pass_ctx
def feeds_enable(ctx, feed: str) -> None:
    """Poll FEED (a URL or name) again after it was deactivated, e.g. by a 410 Gone."""
    from monitor.storage.feeds import reactivate_feed

    click.echo(f"enabled {reactivate_feed(_synced_engine(ctx), feed)}; it is due at the next poll")


@feeds_group.command("list")
@pass_ctx
def feeds_list(ctx) -> None:
    """Every known feed: name, URL, where it came from, whether it is polled."""
    from monitor.storage.feeds import list_feeds

    for name, url, origin, active in list_feeds(_synced_engine(ctx)):
        click.echo(f"{name}\t{url}\t{origin}\t{'active' if active else 'inactive'}")
