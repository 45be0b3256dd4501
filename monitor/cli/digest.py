"""`digest --preview PATH` / `digest --send [--force]`, both with `--since/--until`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from monitor.cli import pass_ctx
from monitor.errors import InputError
from monitor.textio import write_problem


def register(cli: click.Group) -> None:
    cli.add_command(digest_command)


@click.command("digest")
@click.option("--preview", "preview", metavar="PATH", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the digest HTML to PATH without sending (the whole message when PATH ends in .eml).")
@click.option("--send", is_flag=True, help="Send the digest now to digest.recipients.")
@click.option("--force", is_flag=True, help="With --send: send even if this window was already sent.")
@click.option("--since", metavar="WHEN", help="Window start: ISO date or datetime (UTC unless it has an offset). "
              "Default: the end of the last digest sent, else 24 hours ago.")
@click.option("--until", metavar="WHEN", help="Window end: ISO date or datetime (default: now).")
@pass_ctx
def digest_command(ctx, preview: Path | None, send: bool, force: bool, since: str | None, until: str | None) -> None:
    """Build the digest of a window of fetched articles: preview it or send it."""
    if bool(preview) == send:
        raise InputError("digest: give exactly one of --preview PATH or --send")
    if force and not send:
        raise InputError("digest: --force only goes with --send")
    window = {"since": parse_when("--since", since), "until": parse_when("--until", until)}
    now = datetime.now(timezone.utc)
    from monitor import digest

    if preview:
        try:
            built, path = digest.preview_digest(ctx.app, preview, now, **window)
        except OSError as exc:  # no permission, a file where a folder should be, a full disk
            raise InputError(f"digest --preview {preview}: cannot write: {write_problem(exc, preview)}") from None
        click.echo(f"wrote {path}: {_summary(built)}")
        return
    built, outcome = digest.send_digest_now(ctx.app, now, force=force, **window)
    if outcome.status == "already_sent":
        click.echo(f"already sent for this window ({_span(built)}); nothing sent (use --force to send again)")
    elif outcome.status == "nothing_new":
        click.echo(f"nothing fetched since the last digest ({_span(built)}); nothing sent (use --force to send anyway)")
    elif outcome.status == "skipped":
        click.echo(f"nothing moved ({_span(built)}); not sent (digest.send_empty = false)")
    else:
        click.echo(f"sent to {len(outcome.recipients)} recipients: {_summary(built)}")


def parse_when(option: str, value: str | None) -> datetime | None:
    """An ISO date (midnight) or datetime; UTC unless it carries an offset."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        example = "e.g. 2026-03-29 or 2026-03-29T07:00+01:00"
        raise InputError(f"{option}: not an ISO date or datetime: {value!r} ({example})") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _span(built) -> str:
    return f"{built.window_start:%Y-%m-%d %H:%M} → {built.window_end:%Y-%m-%d %H:%M} UTC"


def _summary(built) -> str:
    totals = built.totals
    spikes = f", {len(built.spikes)} spiking" if built.spikes else ""
    return f"{totals.relevant_stories} relevant stories of {totals.fetched} articles fetched{spikes} ({_span(built)})"
