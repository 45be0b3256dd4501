"""Tags of stored articles: model scores, entities, effective labels, analyst corrections.

Effective labels = the model's labels with the analyst's corrections applied: for each
label the latest correction (add or remove) wins over the model, now and after every
re-tag. `articles.relevant` is "any effective label". Corrections are kept as history
(who, when) and feed the next `train` (`corrections_for_training`).

The review band: a tagging flags the labels whose score is near their threshold
(`TagResult.review`); `articles.review_labels` keeps those no analyst has decided yet,
and `needs_review` is true while any remain. Any correction of a label (the review
queue's accept = add, reject = remove, or the article page, or `label`) decides it, now
and in every later re-tag.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.errors import InputError
from monitor.records import TagResult
from monitor.storage import schema
from monitor.storage.feeds import insert_ignoring_conflicts

a, scores_t, labels_t = schema.articles, schema.article_scores, schema.article_labels
corrections_t, entities_t = schema.corrections, schema.entities


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- writing model tags -------------------------------------------------------------------


@dataclass(frozen=True)
class Tagged:
    """One article's tagging, to be saved."""

    article_id: int
    tag: TagResult
    published_at: datetime


def save_tags(conn, article_id: int, tag: TagResult, published_at: datetime) -> list[str]:
    """save_tags_batch for one article. Returns its effective labels."""
    return save_tags_batch(conn, [Tagged(article_id, tag, published_at)])[article_id]


def save_tags_batch(conn, batch: Sequence[Tagged]) -> dict[int, list[str]]:
    """Replace the scores, entities and effective labels of a batch of articles with
    their new tagging (corrections still win), in a fixed handful of statements whatever
    the batch size. Returns {article id: effective labels}. Runs in the caller's
    transaction.

    Safe beside another writer tagging the same articles (a daemon and `run --once` or
    `reprocess` on one PostgreSQL): the articles' rows are locked first, in id order, so
    the second writer waits and then replaces the first one's rows; the inserts are
    ON CONFLICT as well, so a retry after a crash is never a duplicate-key error."""
    if not batch:
        return {}
    ids = sorted({item.article_id for item in batch})
    lock_articles(conn, ids)
    conn.execute(delete(scores_t).where(scores_t.c.article_id.in_(ids)))
    conn.execute(delete(entities_t).where(entities_t.c.article_id.in_(ids)))
    conn.execute(_upsert_scores(conn), [
        {"article_id": item.article_id, "label_id": label, "score": float(score), "predicted": label in item.tag.labels}
        for item in batch for label, score in item.tag.scores.items()
    ])
    entity_rows = [
        {"article_id": item.article_id, "text": e.text[:500], "label": e.label, "canonical_id": e.id,
         "mentions": getattr(e, "mentions", 1)}
        for item in batch for e in item.tag.entities
    ]
    if entity_rows:
        conn.execute(insert(entities_t), entity_rows)
    actions = _latest_actions(conn, ids)
    effective = _write_effective_many(
        conn, {item.article_id: (item.tag.labels, item.published_at) for item in batch}, actions)
    now = _now()
    conn.execute(_UPDATE_TAGGED, [
        _tagged_values(item, effective[item.article_id], now, decided=set(actions[item.article_id]))
        for item in batch
    ])
    return effective


def _tagged_values(item: Tagged, effective: list[str], now: datetime, decided: set[str]) -> dict:
    """The article row's columns after tagging (one place to add more)."""
    review = _review_values(item.tag.review, item.tag.uncertainty, decided)
    return {"b_id": item.article_id, "b_relevant": bool(effective), "b_model_version": item.tag.model_version,
            "b_tagged_at": now, **{f"b_{key}": value for key, value in review.items()}}


_UPDATE_TAGGED = update(a).where(a.c.id == bindparam("b_id")).values(
    relevant=bindparam("b_relevant"), model_version=bindparam("b_model_version"), tagged_at=bindparam("b_tagged_at"),
    needs_review=bindparam("b_needs_review"), review_labels=bindparam("b_review_labels"),
    review_uncertainty=bindparam("b_review_uncertainty"))


def review_label_ids(stored: str | None) -> list[str]:
    """`articles.review_labels` as a list, most uncertain first."""
    return [label for label in (stored or "").split(",") if label]


def _review_values(review: Sequence[str], uncertainty: float | None, decided: set[str]) -> dict:
    """The review columns of an article: band labels an analyst has decided leave the band.
    The uncertainty stays the tagging's (its closest label) while any band label is left."""
    left = [label for label in review if label not in decided]
    return {"needs_review": bool(left), "review_labels": ",".join(left) or None,
            "review_uncertainty": float(uncertainty) if left and uncertainty is not None else None}


def lock_articles(conn, ids: Sequence[int]) -> None:
    """Row-lock these articles until the transaction ends (PostgreSQL; SQLite has one
    writer at a time anyway). FOR NO KEY UPDATE: a feed run linking a new poll to one of
    them (a foreign-key check) is not held up."""
    if conn.dialect.name == "postgresql" and ids:
        conn.execute(select(a.c.id).where(a.c.id.in_(list(ids))).order_by(a.c.id).with_for_update(key_share=True))


def _upsert_scores(conn):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(scores_t)
    return statement.on_conflict_do_update(
        index_elements=[scores_t.c.article_id, scores_t.c.label_id],
        set_={"score": statement.excluded.score, "predicted": statement.excluded.predicted},
    )


def _latest_actions(conn, ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """{article id: {label: latest action}} for the articles' corrections."""
    actions: dict[int, dict[str, str]] = {article_id: {} for article_id in ids}
    rows = conn.execute(
        select(corrections_t.c.article_id, corrections_t.c.label_id, corrections_t.c.action)
        .where(corrections_t.c.article_id.in_(list(ids))).order_by(corrections_t.c.id)
    )
    for article_id, label, action in rows:
        actions[article_id][label] = action
    return actions


def _write_effective(conn, article_id: int, model_labels: Sequence[str], published_at: datetime) -> list[str]:
    return _write_effective_many(conn, {article_id: (model_labels, published_at)})[article_id]


def _write_effective_many(conn, model: dict[int, tuple[Sequence[str], datetime]],
                          actions: dict[int, dict[str, str]] | None = None) -> dict[int, list[str]]:
    """Effective labels = the model's, with each label's latest correction winning."""
    from monitor.taxonomy import LABEL_IDS

    ids = list(model)
    actions = actions if actions is not None else _latest_actions(conn, ids)
    effective, rows = {}, []
    for article_id, (model_labels, published_at) in model.items():
        added = {label for label, action in actions[article_id].items() if action == "add"}
        removed = {label for label, action in actions[article_id].items() if action == "remove"}
        effective[article_id] = [
            label for label in LABEL_IDS if (label in model_labels or label in added) and label not in removed]
        rows += [{"article_id": article_id, "label_id": label, "published_at": published_at,
                  "origin": "analyst" if label in added else "model"} for label in effective[article_id]]
    conn.execute(delete(labels_t).where(labels_t.c.article_id.in_(ids)))
    if rows:
        conn.execute(insert_ignoring_conflicts(conn, labels_t), rows)
    return effective


# --- what to tag ---------------------------------------------------------------------------


def untagged_article_ids(conn, limit: int) -> list[int]:
    """Ids of stored articles not tagged yet, oldest first (index-backed: ix_articles_untagged)."""
    query = select(a.c.id).where(a.c.tagged_at.is_(None)).order_by(a.c.id).limit(limit)
    return [row[0] for row in conn.execute(query)]


@dataclass(frozen=True)
class ArticleText:
    id: int
    title: str
    text: str
    published_at: datetime


def article_texts(conn, ids: Sequence[int]) -> list[ArticleText]:
    """(id, title, text, published_at) for the given ids, in id order."""
    if not ids:
        return []
    query = select(a.c.id, a.c.title, a.c.text, a.c.published_at).where(a.c.id.in_(list(ids))).order_by(a.c.id)
    return [ArticleText(*row) for row in conn.execute(query)]


def untagged_articles(conn, limit: int) -> list[ArticleText]:
    return article_texts(conn, untagged_article_ids(conn, limit))


def claim_untagged(conn, limit: int, after_id: int = 0) -> list[ArticleText]:
    """The next untagged articles after `after_id`, oldest first, row-locked until the
    caller's transaction ends. On PostgreSQL rows another process has claimed are
    skipped (SKIP LOCKED), so a daemon, `run --once` and workers share the backlog
    instead of tagging the same articles; a claimer that dies releases its rows with its
    connection. SQLite has no row locks: there the claim is a plain read."""
    query = (
        select(a.c.id, a.c.title, a.c.text, a.c.published_at)
        .where(a.c.tagged_at.is_(None), a.c.id > after_id).order_by(a.c.id).limit(limit)
        .with_for_update(skip_locked=True, key_share=True)
    )
    return [ArticleText(*row) for row in conn.execute(query)]


def effective_labels(conn, ids: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        query = select(labels_t.c.article_id, labels_t.c.label_id).where(labels_t.c.article_id.in_(list(ids)))
        for article_id, label in conn.execute(query):
            out[article_id].append(label)
    return out


# --- corrections --------------------------------------------------------------------------------


def apply_correction(engine: Engine, article_id: int, add: list[str], remove: list[str], author: str, taxonomy) -> list[str]:
    """Store an analyst's correction and return the article's effective labels. The
    corrected labels leave the article's review band (decided)."""
    add, remove = list(dict.fromkeys(add)), list(dict.fromkeys(remove))
    unknown = [label for label in add + remove if label not in taxonomy]
    if unknown:
        raise InputError(f"unknown label id(s): {', '.join(unknown)} (known: {', '.join(taxonomy.ids)})")
    both = sorted(set(add) & set(remove))
    if both:
        raise InputError(f"cannot both add and remove: {', '.join(both)}")
    if not add and not remove:
        raise InputError("nothing to change: give --add and/or --remove with a label id")
    author = (author or "").strip() or "analyst"
    with engine.begin() as conn:
        row = conn.execute(select(a.c.published_at, a.c.review_labels, a.c.review_uncertainty)
                           .where(a.c.id == article_id)).first()
        if row is None:
            raise InputError(f"no article with id {article_id}")
        now = _now()
        conn.execute(insert(corrections_t), [
            {"article_id": article_id, "label_id": label, "action": action, "author": author, "created_at": now}
            for action, labels in (("add", add), ("remove", remove)) for label in labels
        ])
        model_labels = [
            label for (label,) in conn.execute(
                select(scores_t.c.label_id).where(scores_t.c.article_id == article_id, scores_t.c.predicted.is_(True)))
        ]
        effective = _write_effective(conn, article_id, model_labels, row.published_at)
        review = _review_values(review_label_ids(row.review_labels), row.review_uncertainty, decided=set(add + remove))
        conn.execute(update(a).where(a.c.id == article_id).values(relevant=bool(effective), **review))
    return effective


def corrections_for_training(engine: Engine) -> list[tuple[str, str, list[str]]]:
    """(title, text, effective labels) for every article an analyst corrected."""
    with engine.connect() as conn:
        ids = [row[0] for row in conn.execute(select(corrections_t.c.article_id).distinct().order_by(corrections_t.c.article_id))]
        out = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            labels = effective_labels(conn, chunk)
            for item in article_texts(conn, chunk):
                out.append((item.title, item.text, labels[item.id]))
        return out


# --- reprocess and export -----------------------------------------------------------------------


@dataclass
class ReprocessReport:
    articles: int = 0
    gained: dict[str, int] = field(default_factory=dict)  # label -> articles that now carry it
    lost: dict[str, int] = field(default_factory=dict)  # label -> articles that no longer do
    changed: int = 0  # articles whose effective labels changed


def articles_for_reprocess(engine: Engine, batch_size: int = 256) -> Iterator[list[int]]:
    """Every stored article id, in batches."""
    last = 0
    while True:
        with engine.connect() as conn:
            ids = [row[0] for row in conn.execute(
                select(a.c.id).where(a.c.id > last).order_by(a.c.id).limit(batch_size))]
        if not ids:
            return
        yield ids
        last = ids[-1]


def reprocess(engine: Engine, tag_batches: Callable[[Iterable[list[tuple[str, str]]]], Iterator[list[TagResult]]],
              batch_size: int = 256, progress: Callable[[int], None] | None = None) -> ReprocessReport:
    """Re-tag every stored article; corrections still win. `tag_batches` maps batches of
    (title, text) to their TagResults in order (tagpool.Tagger.map: inline or in N
    processes). One transaction per batch. Reports what moved per label."""
    report = ReprocessReport()
    read: deque[tuple[list[ArticleText], dict[int, list[str]]]] = deque()

    def batches() -> Iterator[list[tuple[str, str]]]:
        for ids in articles_for_reprocess(engine, batch_size):
            with engine.connect() as conn:
                read.append((article_texts(conn, ids), effective_labels(conn, ids)))
            yield [(item.title, item.text) for item in read[-1][0]]

    for results in tag_batches(batches()):
        items, before = read.popleft()
        with engine.begin() as conn:
            after = save_tags_batch(conn, [Tagged(item.id, result, item.published_at) for item, result in zip(items, results)])
        for item in items:
            _count_moves(report, set(before[item.id]), set(after[item.id]))
        report.articles += len(items)
        if progress:
            progress(report.articles)
    return report


def _count_moves(report: ReprocessReport, before: set[str], after: set[str]) -> None:
    for label in after - before:
        report.gained[label] = report.gained.get(label, 0) + 1
    for label in before - after:
        report.lost[label] = report.lost.get(label, 0) + 1
    report.changed += before != after


def export_articles(engine: Engine, since: datetime | None = None, batch_size: int = 500) -> Iterator[dict]:
    """Stored articles with effective labels, scores, entities and corrections, oldest first."""
    last = 0
    while True:
        with engine.connect() as conn:
            query = select(a).where(a.c.id > last).order_by(a.c.id).limit(batch_size)
            if since is not None:
                query = query.where(a.c.published_at >= since)
            rows = conn.execute(query).mappings().all()
            if not rows:
                return
            ids = [row["id"] for row in rows]
            extra = _export_extras(conn, ids)
        for row in rows:
            yield {
                "id": row["id"], "title": row["title"], "url": row["url"], "source": row["source"],
                "published_at": row["published_at"].isoformat(), "fetched_at": row["fetched_at"].isoformat(),
                "relevant": row["relevant"], "labels": extra["labels"].get(row["id"], []),
                "corrected": extra["corrected"].get(row["id"], {}),
                "scores": extra["scores"].get(row["id"], {}), "entities": extra["entities"].get(row["id"], []),
                "model_version": row["model_version"], "cluster_id": row["cluster_id"],
                "needs_review": row["needs_review"], "review_labels": review_label_ids(row["review_labels"]),
                "review_uncertainty": None if row["review_uncertainty"] is None else round(row["review_uncertainty"], 4),
                "text": row["text"],
            }
        last = ids[-1]


def _export_extras(conn, ids: list[int]) -> dict[str, dict]:
    from monitor.taxonomy import LABEL_IDS

    order = {label: i for i, label in enumerate(LABEL_IDS)}
    labels: dict[int, list[str]] = {}
    for article_id, label in conn.execute(select(labels_t.c.article_id, labels_t.c.label_id).where(labels_t.c.article_id.in_(ids))):
        labels.setdefault(article_id, []).append(label)
    for found in labels.values():
        found.sort(key=lambda label: order.get(label, 99))
    scores: dict[int, dict[str, float]] = {}
    for article_id, label, score in conn.execute(
            select(scores_t.c.article_id, scores_t.c.label_id, scores_t.c.score).where(scores_t.c.article_id.in_(ids))):
        scores.setdefault(article_id, {})[label] = round(score, 4)
    entities: dict[int, list[dict]] = {}
    for article_id, text, label, canonical in conn.execute(
            select(entities_t.c.article_id, entities_t.c.text, entities_t.c.label, entities_t.c.canonical_id)
            .where(entities_t.c.article_id.in_(ids)).order_by(entities_t.c.id)):
        entities.setdefault(article_id, []).append({"text": text, "label": label, "id": canonical})
    corrected: dict[int, dict[str, str]] = {}
    for article_id, label, action in conn.execute(
            select(corrections_t.c.article_id, corrections_t.c.label_id, corrections_t.c.action)
            .where(corrections_t.c.article_id.in_(ids)).order_by(corrections_t.c.id)):
        corrected.setdefault(article_id, {})[label] = action
    return {"labels": labels, "scores": scores, "entities": entities, "corrected": corrected}
