"""The review band in the store, on SQLite and PostgreSQL: the flag a tagging writes, the
queue's order, decisions as corrections that the next `train` reads, and re-tags that
leave decided labels alone."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from monitor.records import LabelScore, TagResult
from monitor.storage import browse, schema
from monitor.storage.tags import apply_correction, corrections_for_training, export_articles, reprocess, save_tags
from monitor.taxonomy import LABEL_IDS, load_taxonomy
from tests.conftest import REPO
from tests.factories import SeedArticle, seed_articles

NOW = datetime.now(timezone.utc).replace(microsecond=0)
THRESHOLD = 0.5


def review_tag(scores: dict[str, float], review: list[str], uncertainty: float) -> TagResult:
    """A tagging as classify.tag_texts returns it: every label at THRESHOLD, labels at or
    above it predicted, `review` the band labels most uncertain first."""
    full = {label: scores.get(label, 0.02) for label in LABEL_IDS}
    labels = [label for label in LABEL_IDS if full[label] >= THRESHOLD]
    return TagResult(
        scores=full, labels=labels, friction_points=[LabelScore(label, full[label]) for label in labels],
        scenarios=[], entities=[], evidence={}, thresholds={label: THRESHOLD for label in LABEL_IDS},
        model_version="review-test", review=review, uncertainty=uncertainty,
    )


def flag(engine, article_id: int, tag: TagResult) -> list[str]:
    """Store a tagging for a seeded article, as the pipeline and `reprocess` do."""
    with engine.begin() as conn:
        published = conn.execute(select(schema.articles.c.published_at).where(schema.articles.c.id == article_id)).scalar_one()
        return save_tags(conn, article_id, tag, published)


def seed_flagged(engine) -> list[int]:
    """Three flagged stories (uncertainty 0.4, 0.9, 0.7) and one the model was sure about."""
    ids = seed_articles(engine, [
        SeedArticle("Mildly unsure about cloud", NOW - timedelta(hours=1), {"cloud": 0.58}, text="Azure capacity story."),
        SeedArticle("Very unsure: cloud or talent", NOW - timedelta(hours=2), {"cloud": 0.52}, text="Talent and compute."),
        SeedArticle("Unsure about regulation", NOW - timedelta(hours=3), {}, text="An FTC letter."),
        SeedArticle("Clearly cloud", NOW - timedelta(hours=4), {"cloud": 0.97}, text="Stargate data centres."),
    ])
    flag(engine, ids[0], review_tag({"cloud": 0.58}, ["cloud"], 0.4))
    flag(engine, ids[1], review_tag({"cloud": 0.52, "talent": 0.45}, ["cloud", "talent"], 0.9))
    flag(engine, ids[2], review_tag({"regulation": 0.47}, ["regulation"], 0.7))
    flag(engine, ids[3], review_tag({"cloud": 0.97}, [], 0.0))
    return ids


def queue_ids(engine) -> list[int]:
    return [item.id for item in browse.review_queue(engine, 1, 50).rows]


def test_tagging_stores_the_flag_and_the_queue_is_most_uncertain_first(engine):
    ids = seed_flagged(engine)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(schema.articles.c.id, schema.articles.c.needs_review,
                                                     schema.articles.c.review_labels, schema.articles.c.review_uncertainty))}
    assert rows[ids[1]].needs_review is True and rows[ids[1]].review_labels == "cloud,talent"
    assert abs(rows[ids[1]].review_uncertainty - 0.9) < 1e-9
    assert rows[ids[3]].needs_review is False and rows[ids[3]].review_labels is None
    page = browse.review_queue(engine, 1, 50)
    assert [item.id for item in page.rows] == [ids[1], ids[2], ids[0]] and page.total == 3
    first = page.rows[0]
    assert [(lab.label_id, lab.score, lab.predicted) for lab in first.labels] == [("cloud", 0.52, True), ("talent", 0.45, False)]
    assert browse.review_count(engine) == 3
    second = browse.review_queue(engine, 2, 2)  # paginated
    assert [item.id for item in second.rows] == [ids[0]] and not second.has_next


def test_article_filter_and_detail_carry_the_flag(engine):
    ids = seed_flagged(engine)
    flagged = browse.list_articles(engine, browse.ArticleFilter(needs_review=True), 1, 50)
    assert {row.id for row in flagged.rows} == {ids[0], ids[1], ids[2]} and all(row.needs_review for row in flagged.rows)
    assert [row.id for row in browse.list_articles(engine, browse.ArticleFilter(needs_review=False), 1, 50).rows] == [ids[3]]
    detail = browse.get_article(engine, ids[1])
    assert detail.needs_review and detail.review_labels == ["cloud", "talent"]


def test_decisions_are_corrections_the_next_train_reads(engine):
    taxonomy = load_taxonomy(REPO / "config" / "taxonomy.toml")
    ids = seed_flagged(engine)
    # Accept the predicted cloud label: a confirmation; the article stays for talent.
    assert apply_correction(engine, ids[1], add=["cloud"], remove=[], author="Priya", taxonomy=taxonomy) == ["cloud"]
    assert queue_ids(engine) == [ids[1], ids[2], ids[0]]
    assert [lab.label_id for lab in browse.review_queue(engine, 1, 50).rows[0].labels] == ["talent"]
    # Accept the unpredicted talent label: it is added; nothing is left to decide.
    apply_correction(engine, ids[1], add=["talent"], remove=[], author="Priya", taxonomy=taxonomy)
    # Reject the predicted cloud label of another story: it is removed.
    assert apply_correction(engine, ids[0], add=[], remove=["cloud"], author="Priya", taxonomy=taxonomy) == []
    assert queue_ids(engine) == [ids[2]] and browse.review_count(engine) == 1
    training = {title: sorted(labels) for title, _text, labels in corrections_for_training(engine)}
    assert training == {"Very unsure: cloud or talent": ["cloud", "talent"], "Mildly unsure about cloud": []}
    with engine.connect() as conn:
        origins = dict(conn.execute(select(schema.article_labels.c.label_id, schema.article_labels.c.origin)
                                    .where(schema.article_labels.c.article_id == ids[1])).all())
    assert origins == {"cloud": "analyst", "talent": "analyst"}


def test_reject_of_an_unpredicted_label_confirms_it_absent(engine):
    taxonomy = load_taxonomy(REPO / "config" / "taxonomy.toml")
    ids = seed_flagged(engine)
    assert apply_correction(engine, ids[2], add=[], remove=["regulation"], author="a", taxonomy=taxonomy) == []
    assert ids[2] not in queue_ids(engine)
    assert ("Unsure about regulation", "An FTC letter.", []) in corrections_for_training(engine)


def test_reprocess_recomputes_the_flag_but_keeps_decided_labels_out(engine):
    taxonomy = load_taxonomy(REPO / "config" / "taxonomy.toml")
    ids = seed_flagged(engine)
    apply_correction(engine, ids[1], add=["cloud"], remove=[], author="a", taxonomy=taxonomy)
    apply_correction(engine, ids[2], add=[], remove=["regulation"], author="a", taxonomy=taxonomy)

    # The new model is unsure about the same labels again, and now about the clear story too.
    retag = {
        "Mildly unsure about cloud": review_tag({"cloud": 0.9}, [], 0.0),
        "Very unsure: cloud or talent": review_tag({"cloud": 0.51, "talent": 0.49}, ["cloud", "talent"], 0.95),
        "Unsure about regulation": review_tag({"regulation": 0.5}, ["regulation"], 1.0),
        "Clearly cloud": review_tag({"cloud": 0.55, "investors": 0.48}, ["investors", "cloud"], 0.6),
    }
    with engine.connect() as conn:
        titles = dict(conn.execute(select(schema.articles.c.title, schema.articles.c.id)).all())
    reprocess(engine, lambda batches: ([retag[title] for title, _text in items] for items in batches))

    page = browse.review_queue(engine, 1, 50)
    assert [item.id for item in page.rows] == [ids[1], ids[3]]
    assert [lab.label_id for lab in page.rows[0].labels] == ["talent"]  # cloud was accepted before
    assert [lab.label_id for lab in page.rows[1].labels] == ["investors", "cloud"]
    assert titles["Unsure about regulation"] not in {item.id for item in page.rows}  # rejected before: stays out
    detail = browse.get_article(engine, ids[2])
    assert detail.article.labels == [] and not detail.needs_review  # the rejection still wins


def test_export_includes_the_review_fields(engine):
    ids = seed_flagged(engine)
    exported = {row["id"]: row for row in export_articles(engine)}
    assert exported[ids[1]]["needs_review"] is True
    assert exported[ids[1]]["review_labels"] == ["cloud", "talent"] and exported[ids[1]]["review_uncertainty"] == 0.9
    assert exported[ids[3]]["needs_review"] is False and exported[ids[3]]["review_labels"] == []
    assert exported[ids[3]]["review_uncertainty"] is None
    json.dumps(list(exported.values()))  # the JSONL export can write every row


def test_cli_export_jsonl_and_csv(store_url, tmp_path, capsys, monkeypatch):
    import sys

    from monitor.cli import main
    from monitor.storage.engine import open_store

    engine = open_store(store_url)
    try:
        ids = seed_flagged(engine)
    finally:
        engine.dispose()
    config = tmp_path / "monitor.toml"
    config.write_text(f'root = "{REPO}"\n[storage]\nurl = "{store_url}"\n', encoding="utf-8")

    def export(fmt: str) -> list[str]:
        monkeypatch.setattr(sys, "argv", ["tension-monitor", "--config", str(config), "export", "--format", fmt])
        main()
        return capsys.readouterr().out.splitlines()

    rows = {row["id"]: row for row in map(json.loads, export("jsonl"))}
    assert rows[ids[2]]["needs_review"] is True and rows[ids[2]]["review_labels"] == ["regulation"]
    lines = export("csv")
    assert lines[0].endswith(",needs_review,review_labels,review_uncertainty")
    assert any(line.startswith(f"{ids[1]},") and line.endswith(",True,cloud;talent,0.9") for line in lines[1:])


def test_upgrading_a_store_of_revision_0001_leaves_old_articles_unflagged(store_url):
    from alembic import command
    from sqlalchemy import text

    from monitor.storage.engine import _alembic_config, make_engine, migrate

    engine = make_engine(store_url)
    try:
        command.upgrade(_alembic_config(engine), "0001")
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO articles (url, canonical_url, content_hash, title, text, published_at, published_estimated,"
                " fetched_at) VALUES ('u', 'u', 'h', 'Old story', 'Body', :t, false, :t)"), {"t": NOW.replace(tzinfo=None)})
        migrate(engine)
        with engine.connect() as conn:
            assert conn.execute(select(schema.articles.c.needs_review, schema.articles.c.review_labels)).one() == (False, None)
        assert browse.review_count(engine) == 0
    finally:
        engine.dispose()
