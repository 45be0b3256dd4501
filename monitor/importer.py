"""Past articles from a file: JSONL or CSV rows to ArticleRecords, streamed.

Accepted fields (first one present wins; names are matched case-insensitively, and a
nested `source: {"name": ...}` counts as `source.name`):

| record | fields |
| --- | --- |
| url | url, link, sourceurl, documentidentifier (GDELT) |
| title | title, headline |
| text | the longest of text, content, body, summary, description (HTML is cleaned) |
| published | published, published_at, publishedat (NewsAPI), date, datetime, seendate, DATE (GDELT `YYYYMMDDhhmmss`) |
| source | source, source.name, source_name, sourcecommonname, domain |

Our own `export` (JSONL or CSV) has url, title, text, source and published_at. A row
with neither url nor title, without a readable date, with a non-http(s) url or with no
text at all is a bad row: reported with its line number, the rest go on. Records are
built with the same normalisation as polled items (normalize.py): clean text, canonical
URL, content hash.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from monitor.errors import InputError
from monitor.normalize import canonical_url, content_hash, html_to_text, one_line, unwrap_redirector
from monitor.records import ArticleRecord
from monitor.textio import open_binary

FIELDS = {
    "url": ("url", "link", "sourceurl", "documentidentifier"),
    "title": ("title", "headline"),
    "text": ("text", "content", "body", "summary", "description"),
    "published": ("published", "published_at", "publishedat", "date", "datetime", "seendate"),
    "source": ("source", "source.name", "source_name", "sourcecommonname", "domain"),
}
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T?(\d{2})(\d{2})(\d{2})?Z?)?$")  # GDELT and friends
_NEWSAPI_TAIL = re.compile(r"\s*(…|\.\.\.)?\s*\[\+\d+ chars\]\s*$")  # NewsAPI cuts `content` like this


@dataclass(frozen=True)
class Row:
    """One line of the file: its record, or why it is bad. `end` is the file offset after it."""

    line: int
    end: int
    record: ArticleRecord | None = None
    error: str | None = None


def read_rows(path: Path, start: int = 0) -> Iterator[Row]:
    """Every data row of a JSONL or CSV file, streamed, from byte offset `start` (where
    a previous import stopped). The format is the extension (.csv; anything else is
    JSON Lines). InputError when the file itself cannot be read."""
    with open_binary(path) as handle:
        if b"\x00" in handle.read(65536):
            raise InputError(f"{path}: binary data, not JSON Lines or CSV")
        handle.seek(0)
        reader = _csv_rows if path.suffix.lower() == ".csv" else _jsonl_rows
        yield from reader(path, handle, start)


FINGERPRINT_BYTES = 65536


def fingerprint(path: Path) -> str:
    """sha256 of the file's first 64 KiB: the same file (or the same file grown by
    appending) resumes where its last import stopped; another file starts over."""
    try:
        with path.open("rb") as handle:
            return hashlib.sha256(handle.read(FINGERPRINT_BYTES)).hexdigest()
    except OSError:
        return ""  # read_rows names the problem


def _lines(handle, start: int) -> Iterator[tuple[int, int, bytes]]:
    """(line number, offset after the line, bytes) from `start`, counting lines before it."""
    line, offset = 0, 0
    for raw in handle:
        line, offset = line + 1, offset + len(raw)
        if offset > start:
            yield line, offset, raw


def _jsonl_rows(path: Path, handle, start: int) -> Iterator[Row]:
    for line, end, raw in _lines(handle, start):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            yield Row(line, end, error="not UTF-8 text")
            continue
        except ValueError:
            yield Row(line, end, error="not a JSON object")
            continue
        yield _row(line, end, data)


def _csv_rows(path: Path, handle, start: int) -> Iterator[Row]:
    """CSV rows may span lines (quoted newlines): the row's number is its first line."""
    lines = _lines(handle, 0)
    header = next(lines, None)
    if header is None:
        return
    names = next(csv.reader([_decode(header[2], path, 1)]))
    buffer, first = "", 0
    for line, end, raw in lines:
        buffer, first = buffer + _decode(raw, path, line), first or line
        if buffer.count('"') % 2:  # inside a quoted field: the row goes on
            continue
        text, buffer, row_line = buffer, "", first
        first = 0
        if end <= start or not text.strip():
            continue
        values = next(csv.reader([text]), [])
        if len(values) != len(names):
            yield Row(row_line, end, error=f"{len(values)} columns where the header has {len(names)}")
            continue
        yield _row(row_line, end, dict(zip(names, values)))
    if buffer.strip():
        yield Row(first, 0, error="a quoted field is never closed")


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}:{line}: not UTF-8 text") from None


def _row(line: int, end: int, data) -> Row:
    if not isinstance(data, dict):
        return Row(line, end, error="not a JSON object")
    try:
        return Row(line, end, record=to_record(data))
    except ValueError as exc:
        return Row(line, end, error=str(exc))


def to_record(data: dict) -> ArticleRecord:
    """An ArticleRecord from one row; ValueError naming the field when it cannot be one."""
    fields = _flatten(data)
    url = _first(fields, "url")
    title = one_line(html_to_text(_first(fields, "title")))
    texts = [_NEWSAPI_TAIL.sub("", html_to_text(fields[name])) for name in FIELDS["text"] if fields.get(name)]
    text = max(texts, key=len, default="")
    if not url and not title:
        raise ValueError("no url and no title")
    if not (title or text):
        raise ValueError("no title and no text")
    if url:
        url = unwrap_redirector(url.strip())
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise ValueError(f"url {url[:80]!r} is not http(s)")
    published = parse_time(_first(fields, "published"))
    digest = content_hash(title, text)
    link = url or f"urn:tension-monitor:import:{digest}"
    return ArticleRecord(
        guid=one_line(str(fields.get("guid") or "")) or None,
        url=link,
        canonical_url=canonical_url(url) if url else link,
        title=title or text.split("\n", 1)[0][:100],
        text=text,
        author=one_line(str(fields.get("author") or "")) or None,
        source=one_line(_first(fields, "source")) or (urlsplit(url).hostname if url else None),
        published_at=published,
        published_estimated=False,
        content_hash=digest,
        fetched_at=published,  # history: "first seen" when it was published, so no digest window takes it in again
    )


def _flatten(data: dict) -> dict[str, str]:
    """Lower-cased field names; nested objects as `outer.inner` (NewsAPI's source.name)."""
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                if inner_value is not None and not isinstance(inner_value, (dict, list)):
                    out[f"{key}.{inner}".lower()] = str(inner_value)
        elif value is not None and not isinstance(value, list):
            out[str(key).lower()] = str(value)
    return out


def _first(fields: dict[str, str], what: str) -> str:
    return next((fields[name].strip() for name in FIELDS[what] if fields.get(name, "").strip()), "")


def parse_time(value: str) -> datetime:
    """ISO 8601 (a zone-less time is UTC) or GDELT's compact YYYYMMDD[hhmmss]; ValueError otherwise."""
    if not value:
        raise ValueError("no published date")
    compact = _COMPACT_DATE.match(value)
    try:
        if compact:
            year, month, day, hour, minute, second = (int(part or 0) for part in compact.groups())
            when = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
        else:
            when = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise ValueError(f"published {value[:40]!r} is not an ISO 8601 date") from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
