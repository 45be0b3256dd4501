"""Rendering a digest: subject, inlined-CSS HTML and a plain-text part (Jinja2, autoescaped)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from monitor.digest.content import Digest, EntityMove
from monitor.records import RenderedDigest

TEMPLATES = Path(__file__).parent.parent / "templates"



@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def _edition(digest: Digest) -> str:
    """The local day the digest is for: the day its window ends."""
    day = (digest.window_end - timedelta(microseconds=1)).astimezone(ZoneInfo(digest.timezone))
    return f"{day:%a} {day.day} {day:%b %Y}"


def subject_for(digest: Digest) -> str:
    when = _edition(digest)
    if digest.empty:
        return f"{digest.subject_prefix}: nothing moved ({when})"
    count = digest.totals.relevant_stories
    subject = f"{digest.subject_prefix}: {count} {'story' if count == 1 else 'stories'}"
    spikes = [movement.label.name for movement in digest.spikes]
    if spikes:
        shown = ", ".join(spikes[:2]) + (f" +{len(spikes) - 2} more" if len(spikes) > 2 else "")
        subject += f", spiking: {shown}"
    return f"{subject} ({when})"  # ASCII unless a name is not: plain in every client


def render_digest(digest: Digest) -> tuple[str, str, str]:
    """(subject, html with CSS inlined, plain text) from one Digest."""
    import css_inline

    context = {"d": digest, "subject": subject_for(digest), **_helpers(digest)}
    env = _environment()
    html = env.get_template("digest.html.j2").render(context)
    html = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=False).inline(html)
    text = env.get_template("digest.txt.j2").render(context)
    return context["subject"], html, text


def render(digest: Digest) -> RenderedDigest:
    subject, html, text = render_digest(digest)
    return RenderedDigest(digest.window_start, digest.window_end, subject, html, text, digest.totals.relevant_stories)


def _helpers(digest: Digest) -> dict:
    zone = ZoneInfo(digest.timezone)
    peak = max((count for trend in digest.trends for count in trend.counts), default=0)
    days = digest.trends[0].days if digest.trends else []

    def when(moment: datetime, year: bool = False) -> str:
        local = moment.astimezone(zone)
        return f"{local:%a} {local.day} {local:%b}" + (f" {local.year}" if year else "") + f" {local:%H:%M}"

    def short_when(moment: datetime) -> str:
        """Weekday and time for a story inside the window (the header gives the dates);
        older stories get their date."""
        local = moment.astimezone(zone)
        if digest.window_end - moment > timedelta(days=6):
            return when(moment, year=local.year != digest.window_end.astimezone(zone).year)
        return f"{local:%a %H:%M}"

    def day(value: date) -> str:
        return f"{value:%a} {value.day} {value:%b}"

    def number(value: float | None) -> str:
        return "–" if value is None else f"{value:.1f}"

    def change(move: EntityMove) -> str:
        if move.change is None or move.expected is None:  # both None together: no history
            return ""
        if move.expected < 0.05:
            return "new"
        return f"{move.change:+.1f}"

    def bar(count: int, height: int = 30) -> int:
        return round(count / peak * height) if peak and count else 0

    def spark(counts: list[int]) -> str:
        blocks = "▁▂▃▄▅▆▇█"
        return "".join(blocks[min(7, round(c / peak * 7))] if peak and c else "·" for c in counts)

    def index_spark(series) -> str:
        blocks = "▁▂▃▄▅▆▇█"
        return "".join(blocks[min(7, int(point.value / 100 * 8))] for point in series)

    def link(url: str) -> str | None:
        return url if urlsplit(url).scheme in ("http", "https") else None

    def width(count: int, top: int, full: int = 120) -> int:
        return max(2, round(count / top * full)) if top and count else 0

    return {
        "when": when, "short_when": short_when, "day": day, "on": lambda moment: day(moment.astimezone(zone).date()), "number": number, "change": change, "bar": bar, "spark": spark, "index_spark": index_spark, "link": link,
        "width": width, "edition": _edition(digest), "window_to": when(digest.window_end),
        "window_from": when(digest.window_start, year=digest.window_start.year != digest.window_end.year),
        "top_count": max((movement.count for movement in digest.movements), default=0),
        "spike_rule": f"{digest.spike_ratio:g}× the average and {digest.spike_min_stories} stories",
        "trend_days": len(days), "trend_from": day(days[0]) if days else "", "trend_to": day(days[-1]) if days else "",
        "frictions": [s for s in digest.sections if s.label.kind == "friction_point"],
        "scenarios": [s for s in digest.sections if s.label.kind == "scenario"],
        "listed": _listed(digest),
        "trend_of": {trend.label.id: trend for trend in digest.trends},
    }


def _listed(digest: Digest) -> dict[int, object]:
    """story cluster -> (section, story) for every story listed: other parts of the digest
    point at it inside the digest instead of repeating its link."""
    return {story.cluster: (section, story) for section in digest.sections for story in section.stories}

