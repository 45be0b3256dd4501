"""The HTML pages. Each route reads its input, calls service.py or storage.browse, and
renders one template; user-caused problems render the same page with a message.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from urllib.parse import quote, unquote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from monitor.errors import FetchError, InputError, MonitorError
from monitor.storage import browse
from monitor.taxonomy import FRICTION_POINT, SCENARIO
from monitor.web import present, service
from monitor.web.security import CSRF_COOKIE

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
ANALYST_COOKIE = "tm_analyst"
TREND_DAYS = (14, 90)


def _when(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%d %b %Y, %H:%M UTC") if value else "never"


def _day(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%d %b %Y") if value else ""


FILTERS = {"when": _when, "day": _day, "pct": lambda v: f"{round(100 * (v or 0))}%"}


# --- rendering helpers ---------------------------------------------------------------


def render(request: Request, name: str, status: int = 200, **context) -> Response:
    """A template with what every page needs: the app, the CSRF token, the analyst's name."""
    nonce = request.cookies.get(CSRF_COOKIE) or request.app.state.csrf.new_nonce()
    app = request.app.state.monitor
    context |= {
        "csrf": request.app.state.csrf.token_for(nonce),
        "taxonomy": app.taxonomy,
        "analyst": analyst_of(request),
        "nav": context.get("nav", ""),
        "review_count": _capped(browse.review_count(app.engine)),
    }
    response = request.app.state.templates.TemplateResponse(request, name, context, status_code=status)
    if CSRF_COOKIE not in request.cookies:
        response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="strict", path="/")
    return response


def _capped(count: int) -> str:
    return f"{browse.COUNT_CAP}+" if count > browse.COUNT_CAP else str(count)


def analyst_of(request: Request) -> str:
    return service.clean_author(unquote(request.cookies.get(ANALYST_COOKIE, "")))


def remember_analyst(response: Response, name: str) -> None:
    # Quoted: a cookie is ASCII without spaces, a name need not be.
    response.set_cookie(ANALYST_COOKIE, quote(name), max_age=365 * 86400, httponly=True, samesite="strict", path="/")


def error_page(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", status=status, message=message, code=status)


def status_for(exc: MonitorError) -> int:
    """The HTTP status of a user-caused problem (the same mapping the API uses)."""
    if isinstance(exc, service.NotFound):
        return 404
    if isinstance(exc, (FetchError, service.BadUrl)):
        return 400
    return 422 if isinstance(exc, InputError) else 400


def csrf_ok(request: Request, token: str) -> bool:
    return request.app.state.csrf.valid(request.cookies.get(CSRF_COOKIE), token)


CSRF_MESSAGE = "This form has expired or was not sent from this site. Reload the page and try again."


# --- paste ---------------------------------------------------------------------------


@router.get("/")
def paste_form(request: Request):
    return render(request, "paste.html", nav="paste", form={"title": "", "text": "", "url": ""}, result=None)


@router.post("/")
def paste_submit(request: Request, title: str = Form(""), text: str = Form(""), url: str = Form(""), csrf: str = Form("")):
    form = {"title": title, "text": text, "url": url}
    if not csrf_ok(request, csrf):
        return render(request, "paste.html", 403, nav="paste", form=form, result=None, error=CSRF_MESSAGE)
    app = request.app.state.monitor
    try:
        result = service.classify(app, request.app.state.similar, title, text, url)
    except MonitorError as exc:
        return render(request, "paste.html", status_for(exc), nav="paste", form=form, result=None, error=str(exc))
    return render(request, "paste.html", nav="paste", form=form, result=_paste_view(app, result))


def _paste_view(app, result: service.Classified) -> dict:
    tag = result.tag
    rows = {
        kind: present.score_rows(app.taxonomy, kind, tag.scores, tag.thresholds, set(tag.labels), tag.evidence)
        for kind in (FRICTION_POINT, SCENARIO)
    }
    return {
        "classified": result, "tag": tag, "rows": rows,
        "segments": present.highlight(result.text, tag.evidence),
        "entities": present.entity_rows(tag.entities),
    }


# --- articles ------------------------------------------------------------------------


@router.get("/articles")
def articles(request: Request, label: str = "", feed: str = "", since: str = "", until: str = "",
             relevant: str = "", review: str = "", q: str = "", page: str = "1"):
    app = request.app.state.monitor
    form = {"label": label, "feed": feed, "since": since, "until": until, "relevant": relevant, "review": review, "q": q}
    feeds = browse.feed_choices(app.engine)
    try:
        filters = service.article_filter(app, label, _int(feed, "feed"), _date(since, "from"), _date(until, "to"),
                                         _yes_no(relevant, "relevant"), q, _yes_no(review, "review"))
        result = browse.list_articles(app.engine, filters, _page(page), app.settings.web.page_size)
    except InputError as exc:
        return render(request, "articles.html", status_for(exc), nav="articles", form=form, feeds=feeds, result=None, error=str(exc))
    return render(request, "articles.html", nav="articles", form=form, feeds=feeds, result=result,
                  page_link=lambda n: _page_link(form, n))


def _int(value: str, name: str) -> int | None:
    if not value.strip():
        return None
    if not value.strip().isdigit():
        raise InputError(f"{name}: not a number: {value[:40]!r}")
    return int(value)


def _date(value: str, name: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{name}: not a date (YYYY-MM-DD): {value[:40]!r}") from None


def _yes_no(value: str, name: str) -> bool | None:
    choices = {"": None, "yes": True, "no": False}
    if value not in choices:
        raise InputError(f"{name}: must be yes, no or empty, not {value[:20]!r}")
    return choices[value]


def _page(value: str) -> int:
    number = _int(value, "page") or 1
    return max(1, number)


def _page_link(form: dict, page: int) -> str:
    return "/articles?" + urlencode({k: v for k, v in form.items() if v} | {"page": page})


# --- one article ---------------------------------------------------------------------


@router.get("/articles/{article_id:int}")
def article(request: Request, article_id: int):
    app = request.app.state.monitor
    detail = browse.get_article(app.engine, article_id)
    if detail is None:
        return error_page(request, 404, f"There is no article with id {article_id}.")
    from monitor.storage.threads import timeline

    return render(request, "article.html", nav="articles", detail=detail, **_article_view(app, detail),
                  notice=request.query_params.get("changed", ""), thread=timeline(app.engine, article_id))


def _article_view(app, detail: browse.ArticleDetail) -> dict:
    a = detail.article
    on, thresholds = set(a.labels), service.thresholds(app)
    rows = {kind: present.score_rows(app.taxonomy, kind, a.scores, thresholds, on) for kind in (FRICTION_POINT, SCENARIO)}
    latest: dict[str, browse.CorrectionRow] = {}
    for correction in detail.corrections:  # newest first: the first per label is what holds now
        latest.setdefault(correction.label_id, correction)
    return {"rows": rows, "entities": present.entity_rows(a.entities), "latest": latest}


@router.post("/articles/{article_id:int}/labels")
def article_label(request: Request, article_id: int, label: str = Form(""), action: str = Form(""),
                  analyst: str = Form(""), csrf: str = Form("")):
    if not csrf_ok(request, csrf):
        return error_page(request, 403, CSRF_MESSAGE)
    author = _author(request, analyst)
    try:
        service.correct_label(request.app.state.monitor, article_id, label, action, author)
    except MonitorError as exc:
        return error_page(request, status_for(exc), str(exc))
    return _saved(f"/articles/{article_id}?changed={label}#labels", author)


def _author(request: Request, analyst: str) -> str:
    """The name typed in the form, else the remembered one."""
    return service.clean_author(analyst) if analyst.strip() else analyst_of(request)


def _saved(target: str, author: str) -> Response:
    """After a correction: back to a page (303), remembering who made it."""
    response = RedirectResponse(target, status_code=303)
    remember_analyst(response, author)
    return response


# --- the review queue ----------------------------------------------------------------


@router.get("/review")
def review(request: Request, page: str = "1", label: str = "", decision: str = ""):
    app = request.app.state.monitor
    try:
        result = browse.review_queue(app.engine, _page(page), app.settings.web.page_size)
    except InputError as exc:
        return render(request, "review.html", status_for(exc), nav="review", result=None, saved=None, error=str(exc))
    # What the last click saved, echoed only when it names a real label and decision.
    saved = (decision, app.taxonomy.get(label).name) if label in app.taxonomy and decision in service.REVIEW_DECISIONS else None
    return render(request, "review.html", nav="review", result=result, thresholds=service.thresholds(app), saved=saved)


@router.post("/review/{article_id:int}")
def review_decide(request: Request, article_id: int, label: str = Form(""), decision: str = Form(""),
                  page: str = Form("1"), analyst: str = Form(""), csrf: str = Form("")):
    """Accept or reject one band label; back to the queue, where the next item waits."""
    if not csrf_ok(request, csrf):
        return error_page(request, 403, CSRF_MESSAGE)
    author = _author(request, analyst)
    try:
        service.review_decision(request.app.state.monitor, article_id, label, decision, author)
        number = _page(page)
    except MonitorError as exc:
        return error_page(request, status_for(exc), str(exc))
    return _saved("/review?" + urlencode({"page": number, "label": label, "decision": decision}), author)


@router.post("/analyst")
def analyst_name(request: Request, analyst: str = Form(""), next: str = Form("/"), csrf: str = Form("")):
    """Remember who is correcting (a cookie); corrections store this name."""
    if not csrf_ok(request, csrf):
        return error_page(request, 403, CSRF_MESSAGE)
    # Only a path on this site: never redirect to another host.
    target = next if next.startswith("/") and not next.startswith(("//", "/\\")) else "/"
    response = RedirectResponse(target, status_code=303)
    remember_analyst(response, service.clean_author(analyst))
    return response


# --- trends, feeds, digest -----------------------------------------------------------


@router.get("/trends")
def trends(request: Request):
    app = request.app.state.monitor
    today = datetime.now(timezone.utc).date()
    longest = request.app.state.trends.counts(app.engine, max(TREND_DAYS), today)
    charts = {
        label.id: {days: present.bar_chart(longest.get(label.id, [0] * max(TREND_DAYS))[-days:], today) for days in TREND_DAYS}
        for label in app.taxonomy.labels
    }
    from monitor.digest import tension_series_for

    series = tension_series_for(app, today, max(TREND_DAYS))
    index = present.index_chart([point.value for point in series], today)
    return render(request, "trends.html", nav="trends", charts=charts, days=TREND_DAYS, today=today, index=index)


@router.get("/feeds")
def feeds(request: Request):
    from monitor.storage.feeds import feed_statuses

    statuses = feed_statuses(request.app.state.monitor.engine)
    return render(request, "feeds.html", nav="feeds", feeds=statuses, now=datetime.now(timezone.utc))


@router.get("/digest")
def digest(request: Request):
    app = request.app.state.monitor
    sent = service.sent_digest(app)
    preview, preview_error = None, None
    try:
        preview = service.next_digest(app, datetime.now(timezone.utc))
    except MonitorError as exc:
        preview_error = str(exc)
    return render(request, "digest.html", nav="digest", sent=sent, preview=preview, preview_error=preview_error)


@router.get("/digest/sent.html")
def digest_sent_frame(request: Request):
    sent = service.sent_digest(request.app.state.monitor)
    return _digest_frame(sent[1] if sent and sent[1] else "<p>No digest has been sent yet.</p>")


@router.get("/digest/next.html")
def digest_next_frame(request: Request):
    preview = service.next_digest(request.app.state.monitor, datetime.now(timezone.utc))
    return _digest_frame(preview.html)


@router.get("/digests")
def digests(request: Request):
    from monitor.storage.digests import digest_history

    history = digest_history(request.app.state.monitor.engine)
    return render(request, "digests.html", nav="digest", history=history)


@router.get("/alerts")
def alerts_page(request: Request):
    from monitor.storage.alerts import recent

    app = request.app.state.monitor
    return render(request, "alerts.html", nav="digest", alerts=recent(app.engine), enabled=app.settings.alerts.enabled)


@router.get("/digests/{digest_id}")
def stored_digest(request: Request, digest_id: int):
    found = _stored(request, digest_id)
    if found is None:
        return error_page(request, 404, f"There is no digest with id {digest_id}.")
    record, html, text = found
    return render(request, "digest_stored.html", nav="digest", record=record, has_html=html is not None, text=text)


@router.get("/digests/{digest_id}/sent.html")
def stored_digest_frame(request: Request, digest_id: int):
    found = _stored(request, digest_id)
    if found is None or found[1] is None:
        return _digest_frame("<p>This digest has no stored HTML.</p>", status=404)
    return _digest_frame(found[1])


def _stored(request: Request, digest_id: int):
    from monitor.storage.digests import stored_digest as find

    if digest_id > 2**31 - 1:  # beyond the id column: no such row (PostgreSQL would refuse the query)
        return None
    return find(request.app.state.monitor.engine, digest_id)


def _digest_frame(html: str, status: int = 200) -> Response:
    # Our own rendered e-mail, shown in a sandboxed frame with a policy of its own.
    from monitor.web.security import DIGEST_CSP

    return HTMLResponse(html, status_code=status, headers={"content-security-policy": DIGEST_CSP, "x-frame-options": "SAMEORIGIN"})
