"""The daily digest, in the parts the work falls into:

- ``window``: which window of fetched articles a digest covers, and the daily schedule;
- ``content``: reading the store into a ``Digest`` (what moved, sections, entities, trends);
- ``render``: subject, HTML and text (Jinja2);
- ``deliver``: the digest row's state machine (claim, send, sent/failed/uncertain) and
  the entry points the CLI, the daemon and the web page call.

``monitor.mailer`` turns a message into SMTP and touches no database.
"""

from monitor.digest.content import Digest, DigestStory, EntityMove, Movement, Section, Trend, build_digest
from monitor.digest.deliver import (
    SendOutcome,
    match_signposts,
    scan_stories,
    preview_digest,
    resend_digest,
    send_digest_now,
    send_due_digest,
    send_rendered,
    tension_by_day,
    tension_series_for,
)
from monitor.digest.render import render, render_digest, subject_for
from monitor.digest.window import digest_window, last_send_time, next_send_time

__all__ = [
    "Digest", "DigestStory", "EntityMove", "Movement", "Section", "SendOutcome", "Trend", "build_digest",
    "digest_window", "last_send_time", "match_signposts", "next_send_time", "preview_digest", "render", "render_digest",
    "resend_digest", "scan_stories", "send_digest_now", "send_due_digest", "send_rendered", "subject_for", "tension_by_day", "tension_series_for",
]
