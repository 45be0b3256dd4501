"""OPML in and out: the subscription list format every feed reader exports.

Reading uses defusedxml because an OPML file comes from somewhere else (entity
expansion bombs and external entities are refused). Writing builds a fresh tree.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.etree import ElementTree

from monitor.errors import InputError

FEED_SCHEMES = ("http://", "https://")


def read_opml(path: Path) -> list[tuple[str, str]]:
    """(name, url) for every feed outline, nested folders included, in file order.

    Outlines without an http(s) xmlUrl (folders, links, `file:` tricks) are skipped;
    a file with no feed at all is an error, since importing it would do nothing."""
    root = _parse(path)
    if root.tag.lower() != "opml":
        raise InputError(f"{path}: not an OPML file (root element is <{root.tag}>, expected <opml>)")
    entries, seen = [], set()
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url.startswith(FEED_SCHEMES) and url not in seen:
            seen.add(url)
            entries.append((_name(outline, url), url))
    if not entries:
        raise InputError(f"{path}: no feeds found (no <outline> with an http(s) xmlUrl)")
    return entries


def _parse(path: Path) -> ElementTree.Element:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import parse

    try:
        return parse(str(path)).getroot()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except ElementTree.ParseError as exc:
        raise InputError(f"{path}: not valid XML: {exc}") from None
    except DefusedXmlException as exc:
        raise InputError(f"{path}: refused unsafe XML: {exc}") from None


def _name(outline: ElementTree.Element, url: str) -> str:
    name = (outline.get("title") or outline.get("text") or "").strip()
    return name or url


def write_opml(entries: Iterable[tuple[str, str]], title: str = "Tension Monitor feeds", now: datetime | None = None) -> str:
    """An OPML 2.0 document listing (name, url) feeds."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = title
    ElementTree.SubElement(head, "dateCreated").text = format_datetime(now or datetime.now(timezone.utc))
    body = ElementTree.SubElement(root, "body")
    for name, url in entries:
        ElementTree.SubElement(body, "outline", type="rss", text=name, title=name, xmlUrl=url)
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"
