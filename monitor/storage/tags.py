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

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import Engine, delete, insert, select, update

from monitor.errors import InputError
from monitor.records import TagResult
from monitor.storage import schema

a, scores_t, labels_t = schema.articles, schema.article_scores, schema.article_labels
corrections_t, entities_t = schema.corrections, schema.entities


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- writing model tags -------------------------------------------------------------------


def save_tags(conn, article_id: int, tag: TagResult, published_at: datetime) -> list[str]:
    """Replace the article's scores, entities and effective labels with this tagging
    (corrections still win). Returns the effective labels. Runs in the caller's transaction."""
    conn.execute(delete(scores_t).where(scores_t.c.article_id == article_id))
    conn.execute(delete(entities_t).where(entities_t.c.article_id == article_id))
    conn.execute(insert(scores_t), [
        {"article_id": article_id, "label_id": label, "score": float(score), "predicted": label in tag.labels}
        for label, score in tag.scores.items()
    ])
    if tag.entities:
        conn.execute(insert(entities_t), [
            {"article_id": article_id, "text": e.text[:500], "label": e.label, "canonical_id": e.id,
             "mentions": getattr(e, "mentions", 1)}
            for e in tag.entities
        ])
    actions = _latest_actions(conn, article_id)
    effective = _write_effective(conn, article_id, tag.labels, published_at, actions)
    conn.execute(update(a).where(a.c.id == article_id).values(
        relevant=bool(effective), model_version=tag.model_version, tagged_at=_now(),
        **_review_values(tag.review, tag.uncertainty, decided=set(actions))))
    return effective


def review_label_ids(stored: str | None) -> list[str]:
    """`articles.review_labels` as a list, most uncertain first."""
    return [label for label in (stored or "").split(",") if label]


def _review_values(review: Sequence[str], uncertainty: float | None, decided: set[str]) -> dict:
    """The review columns of an article: band labels an analyst has decided leave the band.
    The uncertainty stays the tagging's (its closest label) while any band label is left."""
    left = [label for label in review if label not in decided]
    return {"needs_review": bool(left), "review_labels": ",".join(left) or None,
            "review_uncertainty": float(uncertainty) if left and uncertainty is not None else None}


def _latest_actions(conn, article_id: int) -> dict[str, str]:
    rows = conn.execute(
        select(corrections_t.c.label_id, corrections_t.c.action)
        .where(corrections_t.c.article_id == article_id).order_by(corrections_t.c.id)
    )
    return {label: action for label, action in rows}


def _write_effective(conn, article_id: int, model_labels: Sequence[str], published_at: datetime,
                     actions: dict[str, str]) -> list[str]:
    from monitor.taxonomy import LABEL_IDS

    added = {label for label, action in actions.items() if action == "add"}
    removed = {label for label, action in actions.items() if action == "remove"}
    effective = [label for label in LABEL_IDS if (label in model_labels or label in added) and label not in removed]
    conn.execute(delete(labels_t).where(labels_t.c.article_id == article_id))
    if effective:
        conn.execute(insert(labels_t), [
            {"article_id": article_id, "label_id": label, "published_at": published_at,
             "origin": "analyst" if label in added else "model"}
            for label in effective
        ])
    return effective


# --- what to tag ---------------------------------------------------------------------------


def untagged_article_ids(conn, limit: int) -> list[int]:
    """Ids of stored articles not tagged yet, oldest first."""
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
        effective = _write_effective(conn, article_id, model_labels, row.published_at, _latest_actions(conn, article_id))
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


def reprocess(engine: Engine, tag: Callable[[list[tuple[str, str]]], list[TagResult]],
              batch_size: int = 256, progress: Callable[[int], None] | None = None) -> ReprocessReport:
    """Re-tag every stored article with `tag` (the current model); corrections still win.
    One transaction per batch. Reports what moved per label."""
    report = ReprocessReport()
    for ids in articles_for_reprocess(engine, batch_size):
        with engine.connect() as conn:
            items, before = article_texts(conn, ids), effective_labels(conn, ids)
        results = tag([(item.title, item.text) for item in items])
        with engine.begin() as conn:
            for item, result in zip(items, results):
                after = save_tags(conn, item.id, result, item.published_at)
                _count_moves(report, set(before[item.id]), set(after))
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
