"""Read-only queries behind the web page: the article list, one article, trends, and the
candidate texts for "similar stories". Writes go through the tagging stage
(storage.tags.apply_correction), never through here.

The list shows each near-duplicate cluster once: a row is the earliest article (lowest
id) of its cluster that matches the filters, and the rest of the cluster shows as
"also in".

The review queue lists every article with an undecided review-band label, most uncertain
first (ix_articles_review); decisions are corrections (storage.tags.apply_correction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Generic, TypeVar

from sqlalchemy import Engine, and_, distinct, exists, func, select

from monitor.records import MAX_ID, Entity, StoredArticle
from monitor.storage import schema
from monitor.storage.tags import review_label_ids

A = schema.articles
AL = schema.article_labels
AF = schema.article_feeds
COUNT_CAP = 1_000  # counting every match of a broad filter over 200k rows costs more than it tells
PageRow = TypeVar("PageRow")


@dataclass(frozen=True)
class ArticleFilter:
    label: str | None = None
    feed_id: int | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    relevant: bool | None = None
    q: str | None = None  # case-insensitive title substring
    needs_review: bool | None = None


@dataclass(frozen=True)
class ArticleRow:
    id: int
    title: str
    url: str
    source: str | None
    feed_name: str | None
    published_at: datetime
    relevant: bool | None
    labels: list[str]
    analyst_labels: list[str]  # the subset of labels an analyst added
    also_in: list[str]
    needs_review: bool = False


@dataclass(frozen=True)
class ArticlePage(Generic[PageRow]):
    """One page of the article list (ArticleRow) or of the review queue (ReviewItem)."""

    rows: list[PageRow]
    page: int
    page_size: int
    total: int  # capped at COUNT_CAP
    total_capped: bool

    @property
    def has_next(self) -> bool:
        return self.page * self.page_size < self.total or (self.total_capped and len(self.rows) == self.page_size)


@dataclass(frozen=True)
class CorrectionRow:
    label_id: str
    action: str  # add | remove
    author: str
    created_at: datetime


@dataclass(frozen=True)
class ArticleDetail:
    article: StoredArticle
    predicted: set[str]  # what the model said, before corrections
    corrections: list[CorrectionRow] = field(default_factory=list)  # newest first
    feeds: list[str] = field(default_factory=list)
    review_labels: list[str] = field(default_factory=list)  # undecided review-band labels, most uncertain first

    @property
    def needs_review(self) -> bool:
        return bool(self.review_labels)


@dataclass(frozen=True)
class Candidate:
    """A stored story as the similarity index needs it."""

    id: int
    cluster_id: int
    title: str
    text: str
    source: str | None
    published_at: datetime


def list_articles(engine: Engine, filters: ArticleFilter, page: int, page_size: int) -> ArticlePage[ArticleRow]:
    a = A.alias("a")
    where = _matches(a, filters, label_joined=filters.label is not None) + [_first_in_cluster(a, filters)]
    base = select(a.c.id).where(*where)
    if filters.label:
        # Drive from ix_article_labels_label_published so a rare label does not scan every article.
        base = base.join(AL, and_(AL.c.article_id == a.c.id, AL.c.label_id == filters.label))
        # The same date range on the denormalised copy lets the index do the range too.
        if filters.since is not None:
            base = base.where(AL.c.published_at >= filters.since)
        if filters.until is not None:
            base = base.where(AL.c.published_at < filters.until)
        order = (AL.c.published_at.desc(), a.c.id.desc())
    else:
        order = (a.c.published_at.desc(), a.c.id.desc())
    with engine.connect() as conn:
        ids = conn.execute(base.order_by(*order).limit(page_size).offset((page - 1) * page_size)).scalars().all()
        total = conn.execute(select(func.count()).select_from(base.limit(COUNT_CAP + 1).subquery())).scalar_one()
        rows = _rows(conn, list(ids))
    return ArticlePage(rows, page, page_size, min(total, COUNT_CAP), total > COUNT_CAP)


def _matches(a, f: ArticleFilter, label_joined: bool = False) -> list:
    """The filter as conditions on one alias of articles (reused for the cluster check)."""
    conds = []
    if f.label and not label_joined:
        conds.append(exists().where(AL.c.article_id == a.c.id, AL.c.label_id == f.label))
    if f.feed_id is not None:
        conds.append(exists().where(AF.c.article_id == a.c.id, AF.c.feed_id == f.feed_id))
    if f.since is not None:
        conds.append(a.c.published_at >= f.since)
    if f.until is not None:
        conds.append(a.c.published_at < f.until)
    if f.relevant is not None:
        conds.append(a.c.relevant.is_(f.relevant))
    if f.needs_review is not None:
        conds.append(a.c.needs_review.is_(f.needs_review))
    if f.q:
        pattern = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conds.append(a.c.title.ilike(pattern, escape="\\"))
    return conds


def _first_in_cluster(a, f: ArticleFilter):
    """True unless an earlier article of the same cluster also matches (it is the row)."""
    b = A.alias("b")
    earlier = exists().where(b.c.cluster_id == a.c.cluster_id, b.c.id < a.c.id, *_matches(b, f))
    return a.c.cluster_id.is_(None) | ~earlier


def _rows(conn, ids: list[int]) -> list[ArticleRow]:
    if not ids:
        return []
    feeds = schema.feeds
    found = conn.execute(
        select(A, feeds.c.name.label("feed_name")).outerjoin(feeds, feeds.c.id == A.c.feed_id).where(A.c.id.in_(ids))
    ).mappings().all()
    labels = _labels_by_article(conn, ids)
    also = _also_in(conn, {r["id"]: (r["cluster_id"], r["source"]) for r in found})
    by_id = {r["id"]: r for r in found}
    return [
        ArticleRow(
            id=i, title=by_id[i]["title"], url=by_id[i]["url"], source=by_id[i]["source"],
            feed_name=by_id[i]["feed_name"], published_at=by_id[i]["published_at"],
            relevant=by_id[i]["relevant"], labels=[lab for lab, _ in labels.get(i, [])],
            analyst_labels=[lab for lab, origin in labels.get(i, []) if origin == "analyst"],
            also_in=also.get(i, []), needs_review=bool(by_id[i]["needs_review"]),
        )
        for i in ids
    ]


def _labels_by_article(conn, ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = {}
    rows = conn.execute(select(AL.c.article_id, AL.c.label_id, AL.c.origin).where(AL.c.article_id.in_(ids)))
    for article_id, label_id, origin in rows:
        out.setdefault(article_id, []).append((label_id, origin))
    return out


def _also_in(conn, clusters: dict[int, tuple[int | None, str | None]]) -> dict[int, list[str]]:
    """Other sources carrying the same story, per shown article."""
    cluster_ids = {c for c, _ in clusters.values() if c is not None}
    if not cluster_ids:
        return {}
    members = conn.execute(select(A.c.id, A.c.cluster_id, A.c.source).where(A.c.cluster_id.in_(cluster_ids))).all()
    out: dict[int, list[str]] = {}
    for article_id, (cluster_id, own_source) in clusters.items():
        sources = [s for i, c, s in members if c == cluster_id and i != article_id and s and s != own_source]
        out[article_id] = sorted(set(sources))
    return out


def article_exists(engine: Engine, article_id: int) -> bool:
    if not 1 <= article_id <= MAX_ID:
        return False
    with engine.connect() as conn:
        return conn.execute(select(A.c.id).where(A.c.id == article_id)).first() is not None


def get_article(engine: Engine, article_id: int) -> ArticleDetail | None:
    if not 1 <= article_id <= MAX_ID:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(A, schema.feeds.c.name.label("feed_name"))
            .outerjoin(schema.feeds, schema.feeds.c.id == A.c.feed_id)
            .where(A.c.id == article_id)
        ).mappings().first()
        if row is None:
            return None
        scores = conn.execute(
            select(schema.article_scores.c.label_id, schema.article_scores.c.score, schema.article_scores.c.predicted)
            .where(schema.article_scores.c.article_id == article_id)
        ).all()
        labels = [lab for lab, _ in _labels_by_article(conn, [article_id]).get(article_id, [])]
        corrections = _corrections(conn, article_id)
        article = StoredArticle(
            id=row["id"], title=row["title"], url=row["url"], source=row["source"], feed_name=row["feed_name"],
            published_at=row["published_at"], published_estimated=row["published_estimated"], text=row["text"],
            cluster_id=row["cluster_id"], labels=labels, scores={s.label_id: s.score for s in scores},
            entities=_entities(conn, article_id), corrected=_latest_actions(corrections),
            model_version=row["model_version"],
            also_in=_also_in(conn, {article_id: (row["cluster_id"], row["source"])}).get(article_id, []),
        )
        return ArticleDetail(
            article=article, predicted={s.label_id for s in scores if s.predicted},
            corrections=corrections, feeds=_feed_names(conn, article_id),
            review_labels=review_label_ids(row["review_labels"]),
        )


def _corrections(conn, article_id: int) -> list[CorrectionRow]:
    c = schema.corrections
    rows = conn.execute(
        select(c.c.label_id, c.c.action, c.c.author, c.c.created_at)
        .where(c.c.article_id == article_id)
        .order_by(c.c.created_at.desc(), c.c.id.desc())
    ).all()
    return [CorrectionRow(*r) for r in rows]


def _latest_actions(corrections: list[CorrectionRow]) -> dict[str, str]:
    latest: dict[str, str] = {}
    for corr in corrections:  # newest first: the first seen per label wins
        latest.setdefault(corr.label_id, corr.action)
    return latest


def _entities(conn, article_id: int) -> list[Entity]:
    e = schema.entities
    rows = conn.execute(select(e.c.text, e.c.label, e.c.canonical_id).where(e.c.article_id == article_id).order_by(e.c.id))
    return [Entity(text=t, label=lab, id=cid) for t, lab, cid in rows]


def _feed_names(conn, article_id: int) -> list[str]:
    rows = conn.execute(
        select(schema.feeds.c.name).join(AF, AF.c.feed_id == schema.feeds.c.id)
        .where(AF.c.article_id == article_id).order_by(schema.feeds.c.name)
    )
    return list(rows.scalars())


def feed_choices(engine: Engine) -> list[tuple[int, str]]:
    """(id, name) of every feed, for the filter menu."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(schema.feeds.c.id, schema.feeds.c.name).order_by(schema.feeds.c.name))]


def trend_counts(engine: Engine, days: int, today: date) -> dict[str, list[int]]:
    """Stories (clusters counted once) per label per day, oldest first, `days` days ending today (UTC)."""
    start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time()).replace(tzinfo=timezone.utc)
    day = day_expr(engine.dialect.name, AL.c.published_at)
    # The story of each labelled row by primary-key lookup (a scalar subquery), not a
    # join: PostgreSQL would otherwise hash-join against a scan of every article, so the
    # cost would grow with the store instead of with the window (ix_article_labels_published).
    story = select(func.coalesce(A.c.cluster_id, A.c.id)).where(A.c.id == AL.c.article_id).scalar_subquery()
    rows = (
        select(AL.c.label_id, day.label("day"), story.label("story"))
        .where(AL.c.published_at >= start, AL.c.published_at < start + timedelta(days=days))
        .subquery()
    )
    stmt = select(rows.c.label_id, rows.c.day, func.count(distinct(rows.c.story))).group_by(rows.c.label_id, rows.c.day)
    counts: dict[str, list[int]] = {}
    with engine.connect() as conn:
        for label_id, day_text, n in conn.execute(stmt):
            index = (date.fromisoformat(str(day_text)[:10]) - start.date()).days
            if 0 <= index < days:
                counts.setdefault(label_id, [0] * days)[index] += n
    return counts


def day_expr(dialect: str, column):
    # SQLite keeps naive UTC text; PostgreSQL keeps timestamptz, so name the zone explicitly
    # rather than trusting the session's TimeZone.
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)


def newest_article_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.max(A.c.id))).scalar() or 0


def change_marker(engine: Engine) -> tuple[int, int]:
    """(newest article id, newest correction id): two primary-key look-ups that move when
    an article is stored or a label corrected (a retag moves neither; callers expire too)."""
    c = schema.corrections
    with engine.connect() as conn:
        newest = conn.execute(select(func.max(A.c.id))).scalar() or 0
        return newest, conn.execute(select(func.max(c.c.id))).scalar() or 0


def similarity_candidates(engine: Engine, limit: int, text_chars: int = 1500) -> list[Candidate]:
    """The most recently stored cluster heads (title + the start of the text)."""
    stmt = (
        select(A.c.id, func.coalesce(A.c.cluster_id, A.c.id), A.c.title, func.substr(A.c.text, 1, text_chars),
               A.c.source, A.c.published_at)
        .where(A.c.cluster_id.is_(None) | (A.c.cluster_id == A.c.id))
        .order_by(A.c.fetched_at.desc(), A.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [Candidate(*row) for row in conn.execute(stmt)]


# --- the review queue ----------------------------------------------------------------


@dataclass(frozen=True)
class ReviewLabel:
    label_id: str
    score: float
    predicted: bool  # the model tagged it (and no analyst has decided it yet)


@dataclass(frozen=True)
class ReviewItem:
    id: int
    title: str
    url: str
    source: str | None
    published_at: datetime
    uncertainty: float  # 0..1, higher = a band label closer to its threshold
    labels: list[ReviewLabel]  # undecided band labels, most uncertain first


def _flagged():
    return select(A.c.id).where(A.c.needs_review.is_(True))


def review_count(engine: Engine) -> int:
    """Articles waiting for review, counted up to COUNT_CAP + 1 (shown as "1000+")."""
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(_flagged().limit(COUNT_CAP + 1).subquery())).scalar_one()


def review_queue(engine: Engine, page: int, page_size: int) -> ArticlePage[ReviewItem]:
    """Flagged articles, most uncertain first (ties: newest first), with their band labels' scores."""
    stmt = (
        select(A.c.id, A.c.title, A.c.url, A.c.source, A.c.published_at, A.c.review_uncertainty, A.c.review_labels)
        .where(A.c.needs_review.is_(True))
        .order_by(A.c.review_uncertainty.desc(), A.c.published_at.desc(), A.c.id.desc())
        .limit(page_size).offset((page - 1) * page_size)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
        scores = _scores_by_article(conn, [r.id for r in rows])
    total = review_count(engine)
    items = [
        ReviewItem(r.id, r.title, r.url, r.source, r.published_at, r.review_uncertainty or 0.0, [
            ReviewLabel(label, *scores.get(r.id, {}).get(label, (0.0, False))) for label in review_label_ids(r.review_labels)
        ])
        for r in rows
    ]
    return ArticlePage(items, page, page_size, min(total, COUNT_CAP), total > COUNT_CAP)


def _scores_by_article(conn, ids: list[int]) -> dict[int, dict[str, tuple[float, bool]]]:
    s = schema.article_scores
    out: dict[int, dict[str, tuple[float, bool]]] = {}
    if ids:
        for article_id, label, score, predicted in conn.execute(
                select(s.c.article_id, s.c.label_id, s.c.score, s.c.predicted).where(s.c.article_id.in_(ids))):
            out.setdefault(article_id, {})[label] = (score, bool(predicted))
    return out
