"""The JSON API beside the pages, documented at /docs and /openapi.json.

Statuses: 400 a URL we will not or cannot fetch; 404 an unknown article; 413 a body over
web.max_body_bytes; 415 a POST that is not JSON; 422 empty text, an unknown label id or
a malformed body. Errors are `{"detail": "<one line>"}`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from monitor.errors import MonitorError
from monitor.storage import browse
from monitor.service import article_json
from monitor.web import service
from monitor.web.pages import status_for


class Problem(BaseModel):
    detail: str


def require_json(request: Request) -> None:
    """JSON only: a cross-site HTML form cannot send it without a CORS preflight we never answer."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise HTTPException(415, "send the body as application/json")


ERRORS: dict[int | str, dict[str, object]] = {code: {"model": Problem} for code in (400, 401, 404, 413, 415, 422)}
router = APIRouter(prefix="/api", tags=["api"], responses=ERRORS)


class ClassifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"title": "Microsoft and OpenAI renegotiate", "text": "Microsoft and OpenAI are renegotiating ..."},
        {"url": "https://example.com/news/article.html"},
    ]})
    title: str = Field("", description="The headline (optional).")
    text: str = Field("", description="The article text; required unless `url` is given.")
    url: str | None = Field(None, description="An http(s) article page to fetch instead of `text`.")


class ScoreOut(BaseModel):
    id: str
    score: float


class EntityOut(BaseModel):
    text: str
    label: str
    id: str | None


class ClassifyOut(BaseModel):
    """Exactly `tension-monitor classify --json`."""

    relevant: bool
    friction_points: list[ScoreOut]
    scenarios: list[ScoreOut]
    scores: dict[str, float]
    entities: list[EntityOut]
    model_version: str
    thresholds: dict[str, float]
    evidence: dict[str, list[str]]
    truncated: bool
    needs_review: bool = Field(description="some label's score is within the review band around its threshold")
    review: list[str] = Field(description="those labels, most uncertain first")
    uncertainty: float = Field(description="0..1, higher = closer to a threshold; 0 when nothing needs review")


@router.post("/classify", dependencies=[Depends(require_json)], responses={200: {"model": ClassifyOut}})
def classify(request: Request, body: ClassifyIn) -> JSONResponse:
    """Tag a text (or the page at `url`) against the tension model; nothing is stored."""
    app = request.app.state.monitor
    try:
        result = service.classify(app, None, body.title, body.text, body.url or "")
    except MonitorError as exc:
        raise HTTPException(status_for(exc), str(exc)) from None
    # The record's own JSON, not a response model: the shape stays the CLI's even as keys are added.
    return JSONResponse(article_json(result.title, result.url, result.tag))


class ArticleOut(BaseModel):
    id: int
    title: str
    url: str
    source: str | None
    feed: str | None
    published_at: datetime
    relevant: bool | None
    labels: list[str]
    analyst_labels: list[str]
    also_in: list[str]
    needs_review: bool = Field(description="a label's score is near its threshold and no analyst has decided it")


class PageOut(BaseModel):
    page: int
    page_size: int
    total: int = Field(description=f"matching stories, counted up to {browse.COUNT_CAP}")
    total_capped: bool
    next_page: int | None

    @staticmethod
    def fields(result: browse.ArticlePage) -> dict:
        return {"page": result.page, "page_size": result.page_size, "total": result.total,
                "total_capped": result.total_capped, "next_page": result.page + 1 if result.has_next else None}


class ArticlesOut(PageOut):
    items: list[ArticleOut]


@router.get("/articles", response_model=ArticlesOut)
def articles(
    request: Request,
    label: str | None = Query(None, description="a label id, e.g. `cloud`"),
    since: date | None = Query(None, description="published on or after this UTC day"),
    until: date | None = Query(None, description="published on or before this UTC day"),
    q: str | None = Query(None, max_length=200, description="title contains (case-insensitive)"),
    feed: int | None = Query(None, description="a feed id"),
    relevant: bool | None = Query(None),
    needs_review: bool | None = Query(None, description="only stories waiting for review (true) or not (false)"),
    page: int = Query(1, ge=1),
) -> ArticlesOut:
    """Stored stories, newest first, each near-duplicate cluster once."""
    app = request.app.state.monitor
    try:
        filters = service.article_filter(app, label, feed, since, until, relevant, q, needs_review)
    except MonitorError as exc:
        raise HTTPException(status_for(exc), str(exc)) from None
    result = browse.list_articles(app.engine, filters, page, app.settings.web.page_size)
    items = [ArticleOut(feed=row.feed_name, **{k: v for k, v in vars(row).items() if k != "feed_name"}) for row in result.rows]
    return ArticlesOut(**PageOut.fields(result), items=items)


class LabelsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    add: list[str] = Field(default_factory=list, description="label ids to add")
    remove: list[str] = Field(default_factory=list, description="label ids to remove")
    author: str = Field("analyst", max_length=60, description="who made the correction")


class LabelsOut(BaseModel):
    id: int
    labels: list[str] = Field(description="the article's effective labels after the correction")


@router.post("/articles/{article_id}/labels", dependencies=[Depends(require_json)], response_model=LabelsOut)
def correct(request: Request, article_id: int, body: LabelsIn) -> LabelsOut:
    """Add or remove labels as an analyst correction (the same effect as `tension-monitor label`)."""
    app = request.app.state.monitor
    return _corrected(article_id, lambda: service.correct_labels(app, article_id, body.add, body.remove, body.author))


def _corrected(article_id: int, correct: Callable[[], list[str]]) -> LabelsOut:
    """Run a correction; a user-caused problem becomes its HTTP status."""
    try:
        labels = correct()
    except MonitorError as exc:
        raise HTTPException(status_for(exc), str(exc)) from None
    return LabelsOut(id=article_id, labels=labels)


class ReviewLabelOut(BaseModel):
    id: str
    score: float
    threshold: float | None = Field(description="the current model's threshold for the label")
    predicted: bool = Field(description="the model tagged the story with it")


class ReviewItemOut(BaseModel):
    id: int
    title: str
    url: str
    source: str | None
    published_at: datetime
    uncertainty: float = Field(description="0..1, higher = a label closer to its threshold")
    labels: list[ReviewLabelOut] = Field(description="undecided labels near their threshold, most uncertain first")


class ReviewOut(PageOut):
    items: list[ReviewItemOut]


@router.get("/review", response_model=ReviewOut)
def review(request: Request, page: int = Query(1, ge=1)) -> ReviewOut:
    """The review queue: stories with a label the model could go either way on, most uncertain first."""
    app = request.app.state.monitor
    result = browse.review_queue(app.engine, page, app.settings.web.page_size)
    thresholds = service.thresholds(app)
    items = [
        ReviewItemOut(id=item.id, title=item.title, url=item.url, source=item.source, published_at=item.published_at,
                      uncertainty=round(item.uncertainty, 4), labels=[
                          ReviewLabelOut(id=b.label_id, score=round(b.score, 4), threshold=thresholds.get(b.label_id),
                                         predicted=b.predicted) for b in item.labels])
        for item in result.rows
    ]
    return ReviewOut(**PageOut.fields(result), items=items)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(description="a label id from the item's `labels`")
    decision: Literal["accept", "reject"] = Field(description="accept: the story carries the label; reject: it does not")
    author: str = Field("analyst", max_length=60, description="who decided")


@router.post("/review/{article_id}", dependencies=[Depends(require_json)], response_model=LabelsOut)
def decide(request: Request, article_id: int, body: DecisionIn) -> LabelsOut:
    """Accept or reject a review label: stored as an analyst correction (add or remove)."""
    app = request.app.state.monitor
    return _corrected(article_id, lambda: service.review_decision(app, article_id, body.label, body.decision, body.author))
