"""`tension-monitor digest`: preview and send through the real command line entry point."""

from __future__ import annotations

import email
import sys
from datetime import datetime, timedelta, timezone
from email import policy

import pytest
from sqlalchemy import func, select

from monitor.app import App
from monitor.storage import schema
from tests.factories import SeedArticle, seed_articles
from tests.test_mailer import Inbox, LoopbackController, smtp, smtp_toml  # noqa: F401  (fixtures)

# A window safely in the past of the real clock (the command uses the real "now").
UNTIL = (datetime.now(timezone.utc) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
SINCE = UNTIL - timedelta(days=1)
WINDOW = ["--since", SINCE.isoformat(), "--until", UNTIL.isoformat()]


@pytest.fixture
def run(monkeypatch, capsys):
    """Run the CLI in this process: (exit code, stdout, stderr)."""
    from monitor.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["tension-monitor", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


@pytest.fixture
def config(make_settings, store_url, smtp):
    """A config pointing at the test SMTP server and a store with two relevant stories in WINDOW."""
    settings = make_settings(smtp_toml(smtp.port), db_url=store_url)
    app = App(settings)
    seed_articles(app.engine, [
        SeedArticle("Microsoft and OpenAI rework revenue share", UNTIL - timedelta(hours=3), {"commercialization": 0.8},
                    source="Wire", url="https://news.example.com/revenue-share"),
        SeedArticle("CMA closes review of AI hiring deal", UNTIL - timedelta(hours=5), {"regulation": 0.7}, source="Policy Desk"),
        SeedArticle("Unrelated gadget news", UNTIL - timedelta(hours=4), {}),
    ])
    app.close()
    return str(settings.source_path)


def digest_rows(store_url: str) -> int:
    from monitor.storage.engine import make_engine

    engine = make_engine(store_url)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(schema.digests)).scalar_one()
    engine.dispose()
    return count


def test_preview_writes_html_without_sending(run, config, smtp, tmp_path, store_url):
    out = tmp_path / "out" / "digest.html"
    code, stdout, _err = run("--config", config, "digest", "--preview", str(out), *WINDOW)
    assert code == 0
    assert stdout.count("\n") == 1 and stdout.startswith(f"wrote {out}: 2 relevant stories of 3 articles fetched")
    html = out.read_text(encoding="utf-8")
    assert 'href="https://news.example.com/revenue-share"' in html and "CMA closes review" in html
    assert smtp.envelopes == [] and digest_rows(store_url) == 0


def test_preview_eml_writes_the_whole_message(run, config, smtp, tmp_path):
    out = tmp_path / "digest.eml"
    code, _stdout, _err = run("--config", config, "digest", "--preview", str(out), *WINDOW)
    assert code == 0 and smtp.envelopes == []
    msg = email.message_from_bytes(out.read_bytes(), policy=policy.default)
    assert msg["Subject"].startswith("Tension Monitor: 2 stories")
    assert [part.get_content_type() for part in msg.iter_parts()] == ["text/plain", "text/html"]
    assert "analyst@example.com" in msg["To"] and msg["Message-ID"].startswith("<digest.")


def test_send_once_per_window_unless_forced(run, config, smtp):
    code, stdout, _err = run("--config", config, "digest", "--send", *WINDOW)
    assert code == 0 and stdout.startswith("sent to 2 recipients: 2 relevant stories") and len(smtp.envelopes) == 1
    code, stdout, _err = run("--config", config, "digest", "--send", *WINDOW)
    assert code == 0 and stdout.startswith("already sent for this window") and len(smtp.envelopes) == 1
    code, stdout, _err = run("--config", config, "digest", "--send", "--force", *WINDOW)
    assert code == 0 and stdout.startswith("sent to") and len(smtp.envelopes) == 2


def test_a_refused_send_is_one_line_and_exit_1(run, config, smtp, store_url):
    smtp.mode = "refuse"
    code, stdout, err = run("--config", config, "digest", "--send", *WINDOW)
    assert code == 1 and stdout == ""
    assert err.strip().splitlines()[-1].startswith("error: digest not sent after 3 tries") and "554" in err
    smtp.mode = "accept"
    assert run("--config", config, "digest", "--send", *WINDOW)[0] == 0 and len(smtp.envelopes) == 1


def test_since_with_an_offset_is_converted_to_utc(run, config, tmp_path):
    since = SINCE.astimezone(timezone(timedelta(hours=2))).isoformat()  # the same instant, written at +02:00
    code, stdout, _err = run("--config", config, "digest", "--preview", str(tmp_path / "d.html"),
                             "--since", since, "--until", UNTIL.isoformat())
    assert code == 0 and f"({SINCE:%Y-%m-%d %H:%M} → {UNTIL:%Y-%m-%d %H:%M} UTC)" in stdout


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--send", "--since", "last tuesday"], "error: --since: not an ISO date or datetime: 'last tuesday'"),
        (["--send", "--until", "2026-13-01"], "error: --until: not an ISO date or datetime: '2026-13-01'"),
        (["--send", "--until", "2999-01-01"], "error: --until 2999-01-01 00:00 UTC is in the future"),
        (["--send", "--since", "2026-06-02", "--until", "2026-06-01"], "error: empty window:"),
        ([], "error: digest: give exactly one of --preview PATH, --send or --resend [ID]"),
        (["--preview", "x.html", "--force"], "error: digest: --force only goes with --send"),
        (["--send", "--force"], "error: digest: --force re-sends the window named by --since/--until"),
        (["--resend", "abc"], "error: digest --resend: not a digest id: 'abc'"),
        (["--resend", "99"], "error: digest --resend: no digest with id 99"),
        (["--resend"], "error: digest --resend: no digest has been sent yet"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, run, config, smtp):
    code, stdout, err = run("--config", config, "digest", *args)
    assert code == 2 and stdout == "" and smtp.envelopes == []
    assert err.count("\n") == 1 and err.startswith(message)


def test_plain_send_twice_mails_once_when_nothing_new_arrived(run, config, smtp):
    code, out, _ = run("--config", config, "digest", "--send", "--since", SINCE.isoformat())
    assert code == 0 and out.startswith("sent to 2 recipients")
    code, out, _ = run("--config", config, "digest", "--send")
    assert code == 0 and "nothing fetched since the last digest" in out
    assert len(smtp.envelopes) == 1
    code, out, _ = run("--config", config, "digest", "--resend")
    assert code == 0 and out.startswith("re-sent digest 1 to 2 recipients: Tension Monitor: 2 stories")
    assert len(smtp.envelopes) == 2


def test_resend_mails_a_stored_digest_exactly_as_it_was_sent(run, config, smtp):
    run("--config", config, "digest", "--send", *WINDOW)
    run("--config", config, "digest", "--send", "--since", UNTIL.isoformat())  # a later, empty digest
    assert len(smtp.envelopes) == 2
    code, out, _ = run("--config", config, "digest", "--resend", "1")
    assert code == 0 and out.startswith("re-sent digest 1")
    first, again = smtp.messages[0], smtp.messages[2]
    assert again["Message-ID"] == first["Message-ID"] and again["Subject"] == first["Subject"]
    for kind in ("plain", "html"):
        assert again.get_body((kind,)).get_content() == first.get_body((kind,)).get_content()


def test_help_says_what_force_and_resend_do(run):
    code, out, _ = run("digest", "--help")
    flat = " ".join(out.split())
    assert code == 0 and "re-send the window they name" in flat and "Send a stored digest again exactly" in flat


def test_status_reports_the_digest_just_sent(run, config, smtp):
    import json

    run("--config", config, "digest", "--send", *WINDOW)
    code, out, _ = run("--config", config, "status", "--json")
    last = json.loads(out)["last_digest"]
    assert code == 0 and last["status"] == "sent"
    assert last["window_end"].startswith(UNTIL.strftime("%Y-%m-%dT%H:%M"))
