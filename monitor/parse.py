"""Parse stage: a FetchResult's bytes in, a ParsedFeed of normalised ArticleRecords out.

Pure: no network, no clock (the caller passes fetched_at), no database. feedparser does
the XML; this module repairs what makes it crash, decides what is not a feed at all,
and turns each entry into an ArticleRecord (clean text, canonical URL, UTC date, hash).
"""

from __future__ import annotations

import codecs
import html.entities
import io
import re
import xml.sax
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin, urlsplit

import charset_normalizer
import feedparser

from monitor.normalize import (
    canonical_url,
    content_hash,
    google_news_target,
    html_to_text,
    is_google_news,
    one_line,
    synthetic_url,
    text_lines,
    unwrap_redirector,
)
from monitor.records import ArticleRecord, FetchResult, ParsedFeed

FUTURE_TOLERANCE = timedelta(days=1)  # clock skew and time-zone slips; beyond this a date is wrong


def parse_feed(result: FetchResult, fetched_at: datetime, max_items: int) -> ParsedFeed:
    """Parse one fetched document. Problems with single items become warnings; only a
    document that is not a feed at all (or cannot be parsed) is an error."""
    if fetched_at.tzinfo is None:
        raise ValueError("fetched_at must be timezone-aware")
    if result.error or result.not_modified or result.body is None:
        return ParsedFeed(title=None, articles=[], error=result.error)
    try:
        doc, warnings = _parse_document(result)
    except Exception as exc:  # feedparser crashed even on the repaired bytes
        return ParsedFeed(title=None, articles=[], error=f"feed parser failed: {one_line(f'{type(exc).__name__}: {exc}')}")
    title = one_line(html_to_text(doc.feed.get("title", ""))) or None
    context = _Context(result, title, fetched_at.astimezone(timezone.utc), warnings)
    entries = doc.entries
    if len(entries) > max_items:
        warnings.append(f"feed has {len(entries)} items; kept the first {max_items}")
        entries = entries[:max_items]
    articles = context.articles(entries)
    if not articles and (not doc.get("version") or (doc.get("bozo") and not title)):
        # Nothing usable and no sign of a feed (feedparser's loose parser calls any
        # document mentioning <rss> a feed): an HTML page, JSON, an error text.
        return ParsedFeed(title=None, articles=[], warnings=warnings, error=_not_a_feed(result))
    return ParsedFeed(title=title, articles=articles, warnings=warnings)


# --- the document ------------------------------------------------------------------------

_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)""")
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_CHARREF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")
_NAMED_REF = re.compile(rb"&([A-Za-z][A-Za-z0-9]*);")
_XML_NAMED = {b"amp", b"lt", b"gt", b"quot", b"apos"}


def _parse_document(result: FetchResult) -> tuple[feedparser.FeedParserDict, list[str]]:
    """feedparser with the two repairs real feeds need: invalid numeric character
    references (feedparser raises ValueError on &#1114112;) and HTML entities such as
    &hellip; that XML does not define (the strict parser gives up on the document)."""
    body, headers = result.body or b"", _feedparser_headers(result)
    warnings: list[str] = []
    try:
        doc = _feedparser(body, headers)
    except Exception:  # a crash inside feedparser: repair the bytes and try once more
        body = _CHARREF.sub(_valid_charref, body)
        doc = _feedparser(body, headers)
        warnings.append("replaced invalid numeric character references with U+FFFD")
    if _undefined_entity(doc):
        retry = _feedparser(_NAMED_REF.sub(_numeric_ref, body), headers)
        if not _undefined_entity(retry) and len(retry.entries) >= len(doc.entries):
            doc = retry
            warnings.append("converted undeclared HTML entities (e.g. &hellip;) to characters")
    if doc.get("bozo"):
        warnings.append(f"malformed feed, kept what parsed: {one_line(str(doc.get('bozo_exception')))}")
    return doc, warnings


def _feedparser(body: bytes, headers: dict[str, str]) -> feedparser.FeedParserDict:
    # A file object, never bytes: feedparser opens bytes that happen to name a local file.
    # Item links are resolved against xml:base either way; rewriting links and
    # sanitising markup inside content is wasted work when all markup is stripped.
    return feedparser.parse(io.BytesIO(body), response_headers=headers, resolve_relative_uris=False, sanitize_html=False)


def _feedparser_headers(result: FetchResult) -> dict[str, str]:
    """The response headers feedparser should see: the charset (declared or detected)
    and the base for relative links. The media type is always XML: RFC 3023's us-ascii
    default for text/xml (dropped by RFC 7303) would mangle most real UTF-8 feeds."""
    charset = _header_charset(result.content_type)
    body = result.body or b""
    if charset is None and not _declares_encoding(body) and not _is_utf8(body):
        best = charset_normalizer.from_bytes(body[:65536]).best()
        charset = best.encoding if best else "windows-1252"
    content_type = f"application/xml; charset={charset}" if charset else "application/xml"
    return {"content-type": content_type, "content-location": result.final_url}


def _header_charset(content_type: str | None) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip(" \"'"):
            return value.strip(" \"'")
    return None


def _declares_encoding(body: bytes) -> bool:
    return body.startswith(_BOMS) or bool(_XML_ENCODING.match(body[:1024]))


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _valid_charref(match: re.Match) -> bytes:
    hex_digits, digits = match.groups()
    code = int(hex_digits, 16) if hex_digits else int(digits)
    allowed = code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0x10FFFF
    return match.group() if allowed else b"&#xFFFD;"


def _numeric_ref(match: re.Match) -> bytes:
    name = match.group(1)
    code = html.entities.name2codepoint.get(name.decode("ascii"))
    if name in _XML_NAMED or code is None:
        return match.group()
    return b"&#%d;" % code


def _undefined_entity(doc: feedparser.FeedParserDict) -> bool:
    exc = doc.get("bozo_exception")
    return isinstance(exc, xml.sax.SAXParseException) and "undefined entity" in str(exc)


def _not_a_feed(result: FetchResult) -> str:
    head = (result.body or b"")[:4096].decode("utf-8", "replace")
    media_type = (result.content_type or "").split(";")[0].strip().lower()
    if media_type in ("text/html", "application/xhtml+xml") or re.search(r"<html[\s>]|<!doctype html", head, re.I):
        found = re.search(r"<title[^>]*>(.*?)</title>", head, re.I | re.S)
        title = one_line(html_to_text(found.group(1))) if found else "untitled"
        return f'not a feed: got an HTML page ("{title}") from {result.final_url}'
    return f"not a feed: no RSS, Atom or RDF document at {result.final_url}"


# --- the items ---------------------------------------------------------------------------


@dataclass
class _Context:
    """What every item of one document needs, and the per-item problems found."""

    result: FetchResult
    feed_title: str | None
    fetched_at: datetime
    warnings: list[str]
    counts: dict[str, int] = field(default_factory=dict)

    def articles(self, entries: list) -> list[ArticleRecord]:
        articles: list[ArticleRecord] = []
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            try:
                article = self.article(entry)
            except ValueError as exc:  # e.g. a link urlsplit cannot read
                self.warnings.append(f"skipped item {index + 1}: {one_line(str(exc))}")
                continue
            if article is None:
                self.count("empty items (no title, link or text) dropped")
            elif article.canonical_url in seen:
                self.count("repeated items in the same document dropped")
            else:
                seen.add(article.canonical_url)
                articles.append(article)
        self.warnings.extend(f"{what}: {n}" for what, n in self.counts.items())
        return articles

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def article(self, entry) -> ArticleRecord | None:
        title, text = _entry_title(entry), _entry_text(entry)
        link = _entry_link(entry, self.result.final_url)
        if not (title or text or link):
            return None  # a phantom, e.g. an illegally nested empty <item/>
        publisher = _publisher(entry)
        if link and is_google_news(link):
            link = google_news_target(link, _entry_html(entry)) or link
            if publisher and title.endswith(f" - {publisher}"):
                title = title[: -len(publisher) - 3]  # Google appends " - Publisher" to every title
        guid = one_line(entry.get("id") or "") or None
        digest = content_hash(title, text)
        published_at, estimated = self.published(entry)
        return ArticleRecord(
            guid=guid,
            url=link or synthetic_url(self.result.feed_id, guid, digest),
            canonical_url=canonical_url(link) if link else synthetic_url(self.result.feed_id, guid, digest),
            title=title or _fallback_title(text, link),
            text=text,
            author=one_line(html_to_text(entry.get("author") or "")) or None,
            source=publisher or self.feed_title or _host(link or self.result.final_url),
            published_at=published_at,
            published_estimated=estimated,
            content_hash=digest,
            fetched_at=self.fetched_at,
        )

    def published(self, entry) -> tuple[datetime, bool]:
        """(published time in UTC, whether it was estimated)."""
        parsed = entry.get("published_parsed") or entry.get("updated_parsed") or entry.get("created_parsed")
        if parsed is None:
            if entry.get("published") or entry.get("updated"):
                self.count("items with an unreadable date (fetch time used)")
            return self.fetched_at, True
        year, month, day, hour, minute, second = parsed[:6]
        when = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)  # feedparser normalised to UTC
        if when > self.fetched_at + FUTURE_TOLERANCE:
            self.count("items dated in the future (fetch time used)")
            return self.fetched_at, True
        return when, False


def _entry_title(entry) -> str:
    detail = entry.get("title_detail") or {}
    raw = entry.get("title") or ""
    text = html_to_text(raw) if "html" in (detail.get("type") or "") else _unescape_refs(raw)
    return one_line(text)


def _unescape_refs(text: str) -> str:
    # Plain-text titles are sometimes escaped twice (&amp;#8217; in the XML). Only full
    # references with a semicolon are decoded, so "AT&T" or "R&D" stay as they are.
    if "&" not in text:
        return text
    return re.sub(r"&(#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);", lambda m: html.unescape(m.group()), text)


def _entry_text(entry) -> str:
    """Clean text of the richest body the entry carries (full content over a teaser)."""
    candidates = [*entry.get("content", []), entry.get("summary_detail") or {"value": entry.get("summary", "")}]
    texts = [_detail_text(detail) for detail in candidates]
    return max(texts, key=len, default="")


def _detail_text(detail) -> str:
    value = detail.get("value") or ""
    if "html" in (detail.get("type") or "text/html"):
        return html_to_text(value)
    return text_lines(value)


def _entry_html(entry) -> str:
    return " ".join([*(c.get("value", "") for c in entry.get("content", [])), entry.get("summary", "")])


def _entry_link(entry, base: str) -> str | None:
    """The item's absolute http(s) link: the original behind a FeedBurner proxy or a
    redirector when the feed says so; None when the item has none."""
    raw = entry.get("feedburner_origlink") or entry.get("link")
    if not raw:
        return None
    link = unwrap_redirector(urljoin(base, raw.strip()))  # feedparser resolved xml:base already
    return link if urlsplit(link).scheme.lower() in ("http", "https") else None


def _publisher(entry) -> str | None:
    source = entry.get("source") or {}
    return one_line(html_to_text(source.get("title") or "")) or None


def _fallback_title(text: str, link: str | None) -> str:
    first = text.split("\n", 1)[0]
    if len(first) > 100:
        first = first[:100].rsplit(" ", 1)[0] + "…"
    return first or link or "(untitled)"


def _host(url: str) -> str | None:
    return urlsplit(url).hostname or None


EXTRACT_MAX_BYTES = 1 << 20  # HTML given to trafilatura, after scripts and styles are dropped
EXTRACT_SECONDS = 10.0  # wall-clock bound on one extraction


def extract_article_text(html_bytes: bytes, url: str) -> str:
    """The main text of an article page (full-text feeds, classify --url); "" if none.

    Bounded in size and time: trafilatura's cost grows faster than the page (a 14 MB
    page took 148 s of CPU and 628 MB), so it sees at most EXTRACT_MAX_BYTES of HTML
    without its scripts and styles (~3 s of CPU for a pathological 1 MiB page on our
    machines), and a run past EXTRACT_SECONDS is an error."""
    from monitor.errors import FetchError
    from monitor.timebox import call_with_timeout

    html = without_scripts(html_bytes)[:EXTRACT_MAX_BYTES]
    try:
        return call_with_timeout(lambda: _extract(html, url), EXTRACT_SECONDS, f"extract {url}")
    except TimeoutError:
        raise FetchError(f"{url}: no article text within {EXTRACT_SECONDS:g} s (page too complex)") from None


def _extract(html: bytes, url: str) -> str:
    import trafilatura  # heavy (lxml, justext, htmldate): only the full-text path pays for it

    text = trafilatura.extract(html, url=url, include_comments=False, include_tables=False, favor_precision=True)
    return text_lines(text or "")


def without_scripts(html: bytes) -> bytes:
    """The page without <script> and <style> elements (often most of a news page's bytes).
    One forward scan with find(): no regex, so no backtracking on unclosed tags."""
    lower = html.lower()
    kept, position = [], 0
    while True:
        starts = [found for tag in (b"<script", b"<style") if (found := lower.find(tag, position)) >= 0]
        if not starts:
            kept.append(html[position:])
            return b"".join(kept)
        start = min(starts)
        kept.append(html[position:start])
        closing = b"</script" if lower.startswith(b"<script", start) else b"</style"
        end = lower.find(closing, start)
        if end < 0:
            return b"".join(kept)  # unclosed: the rest is script
        end = lower.find(b">", end)
        if end < 0:
            return b"".join(kept)
        position = end + 1
