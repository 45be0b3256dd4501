"""`digest --preview PATH` / `digest --send [--force]`, both with `--since/--until`; `digest --resend [ID]`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from monitor.cli import pass_ctx
from monitor.errors import InputError
from monitor.textio import write_problem


def register(cli: click.Group) -> None:
    cli.add_command(digest_command)
    cli.add_command(index_command)


@click.command("index")
@click.option("--days", default=90, show_default=True, type=click.IntRange(1, 3650), help="How many days, ending today (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the series as JSON (one object per day).")
@pass_ctx
def index_command(ctx, days: int, as_json: bool) -> None:
    """The tension index per day (docs/TENSION_INDEX.md): 50 is a usual day, higher is more strain."""
    import json

    from monitor import digest

    series = digest.tension_series_for(ctx.app, datetime.now(timezone.utc).date(), days)
    if as_json:
        click.echo(json.dumps([
            {"date": point.day.isoformat(), "index": point.value, "friction": point.friction, "mix": point.mix}
            for point in series
        ], indent=1))
        return
    for point in series:
        click.echo(f"{point.day}  {point.value:5.1f}  friction {point.friction:.2f}  mix {point.mix:+.2f}")


@click.command("digest")
@click.option("--preview", "preview", metavar="PATH", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the digest HTML to PATH without sending (the whole message when PATH ends in .eml).")
@click.option("--send", is_flag=True, help="Send the digest now to digest.recipients.")
@click.option("--force", is_flag=True, help="With --send and --since/--until: re-send the window they name, "
              "rebuilt now, even if it was already sent (same Message-ID).")
@click.option("--resend", "resend", metavar="[ID]", is_flag=False, flag_value="last", default=None,
              help="Send a stored digest again exactly as it was sent (default: the last one sent; "
              "IDs are listed on /digests).")
@click.option("--since", metavar="WHEN", help="Window start: ISO date or datetime (UTC unless it has an offset). "
              "Default: the end of the last digest sent, else 24 hours ago.")
@click.option("--until", metavar="WHEN", help="Window end: ISO date or datetime (default: now).")
@pass_ctx
def digest_command(
    ctx, preview: Path | None, send: bool, force: bool, resend: str | None, since: str | None, until: str | None
) -> None:
    """Build the digest of a window of fetched articles: preview it or send it; or re-send a stored one."""
    if [bool(preview), send, resend is not None].count(True) != 1:
        raise InputError("digest: give exactly one of --preview PATH, --send or --resend [ID]")
    if force and not send:
        raise InputError("digest: --force only goes with --send")
    now = datetime.now(timezone.utc)
    from monitor import digest

    if resend is not None:
        _resend(ctx.app, now, resend, since or until)
        return
    window = {"since": parse_when("--since", since), "until": parse_when("--until", until)}
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
    elif outcome.status == "in_progress":
        click.echo(f"another process is sending this window ({_span(built)}); not sent again")
    elif outcome.status == "uncertain":
        click.echo(f"this window ({_span(built)}) may already have been delivered (the connection failed after the "
                   f"message went out); not sent again: use --resend {outcome.digest_id} to send it anyway")
    elif outcome.status == "skipped":
        click.echo(f"nothing moved ({_span(built)}); not sent (digest.send_empty = false)")
    else:
        click.echo(f"sent to {len(outcome.recipients)} recipients: {_summary(built)}")


def _resend(app, now: datetime, resend: str, window_given) -> None:
    from monitor import digest

    if window_given:
        raise InputError("digest: --resend sends a stored digest; to rebuild a window use --send --force --since/--until")
    if resend != "last" and not resend.isdigit():
        raise InputError(f"digest --resend: not a digest id: {resend!r} (ids are listed on /digests)")
    record, outcome = digest.resend_digest(app, now, None if resend == "last" else int(resend))
    if outcome.status == "in_progress":
        click.echo(f"another process is sending digest {record.id}; not sent again")
        return
    click.echo(f"re-sent digest {record.id} to {len(outcome.recipients)} recipients: {record.subject}")


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
