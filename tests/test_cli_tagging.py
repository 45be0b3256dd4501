"""The tagging commands as a user runs them: output, exit codes, one-line errors, the
correction round trip."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories import SeedArticle, seed_articles

REPO = Path(__file__).resolve().parent.parent
ARTEFACTS = REPO / "models" / "artefacts"
CLI = REPO / ".venv" / "bin" / "tension-monitor"

CLOUD_TEXT = (
    "OpenAI has agreed to buy data center capacity from Oracle as part of the Stargate project, loosening "
    "its dependence on Microsoft's Azure, which was once its exclusive cloud provider. The deal covers "
    "gigawatts of new capacity and hundreds of thousands of Nvidia GPUs."
)
TALENT_TEXT = (
    "Microsoft has hired three senior researchers from OpenAI to join its superintelligence team under "
    "Mustafa Suleyman, with pay packages worth tens of millions of dollars, as the talent war heats up."
)


@pytest.fixture
def config(make_settings, tmp_path):
    """Write a config (root = the repo, database in tmp_path) and return its path."""

    def make(body: str = "") -> str:
        make_settings(body)
        return str(tmp_path / "monitor.toml")

    return make


@pytest.fixture
def run(capsys, monkeypatch):
    """Run the real entry point in-process: (exit code, stdout, stderr)."""
    from monitor.cli import main

    def invoke(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["tension-monitor", *args])
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


# --- classify ----------------------------------------------------------------------------------


def test_classify_file_prints_labels_evidence_and_entities(run, config, tmp_path):
    article = tmp_path / "article.txt"
    article.write_text(CLOUD_TEXT, encoding="utf-8")
    code, out, _ = run("--config", config(), "classify", str(article), "--title", "OpenAI signs compute deal with Oracle")
    assert code == 0
    title, verdict = out.splitlines()[:2]
    assert title == "OpenAI signs compute deal with Oracle" and verdict.startswith("relevant")
    assert "cloud" in out and "Friction points" in out
    assert "“" in out  # an evidence sentence is quoted
    assert "OpenAI (ORG, openai)" in out and "Oracle (ORG, oracle)" in out


def test_classify_json_from_stdin_has_the_documented_shape(run, config):
    code, out, _ = run("--config", config(), "classify", "-", "--json", "--title", "Talent war",
                       stdin=TALENT_TEXT.encode())
    assert code == 0
    data = json.loads(out)
    assert {"relevant", "friction_points", "scenarios", "scores", "entities", "model_version"} <= set(data)
    assert data["relevant"] is True
    assert "talent" in [item["id"] for item in data["friction_points"]]
    assert all(set(item) == {"id", "score"} for item in data["friction_points"] + data["scenarios"])
    assert len(data["scores"]) == 13
    assert all(set(e) == {"text", "label", "id"} for e in data["entities"])


def test_classify_jsonl_batch_one_result_per_line_with_id(run, config, tmp_path):
    batch = tmp_path / "batch.jsonl"
    rows = [
        {"id": "a1", "title": "Compute", "text": CLOUD_TEXT},
        {"id": 7, "title": "", "text": TALENT_TEXT},
        {"id": "x", "title": "Cup final", "text": "The home side won the regional football cup on Saturday."},
    ]
    batch.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    code, out, _ = run("--config", config(), "classify", "--jsonl", str(batch))
    assert code == 0
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in results] == ["a1", 7, "x"]
    assert "cloud" in [s["id"] for s in results[0]["friction_points"]]
    assert results[2]["relevant"] is False
    assert all(len(r["scores"]) == 13 and "model_version" in r for r in results)


def test_long_text_is_cut_with_a_warning(run, config, tmp_path):
    article = tmp_path / "long.txt"
    article.write_text(CLOUD_TEXT + " More detail followed." * 200, encoding="utf-8")
    code, out, err = run("--config", config('[nlp]\nmax_chars = 1000\n'), "classify", str(article), "--json")
    assert code == 0
    assert "warning:" in err and "only the first 1000 are tagged" in err
    assert json.loads(out)["truncated"] is True


@pytest.mark.parametrize("content, expected", [
    (b"", "no text to classify"),
    (b"   \n\t  \n", "no text to classify"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary data"),
    ("Caf\u00e9 au lait et Microsoft".encode("latin-1"), "not UTF-8 text"),
])
def test_bad_files_exit_2_with_one_line(run, config, tmp_path, content, expected):
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    code, out, err = run("--config", config(), "classify", str(path))
    assert code == 2 and out == ""
    assert expected in one_error_line(err)


def test_missing_file_and_empty_stdin_exit_2(run, config):
    cfg = config()
    code, _, err = run("--config", cfg, "classify", "/no/such/file.txt")
    assert code == 2 and "no such file" in one_error_line(err)
    code, _, err = run("--config", cfg, "classify", "-", stdin=b"  \n")
    assert code == 2 and "stdin: no text to classify" in one_error_line(err)


def test_unreachable_url_exits_2_with_one_line(run, config):
    cfg = config('[fetch]\nallow_private_addresses = true\nconnect_timeout = 2\ntotal_timeout = 5\n')
    code, _, err = run("--config", cfg, "classify", "--url", "http://127.0.0.1:9/article")
    assert code == 2
    assert "cannot fetch http://127.0.0.1:9/article" in one_error_line(err)


def test_bad_jsonl_line_exits_2_naming_the_line(run, config, tmp_path):
    batch = tmp_path / "batch.jsonl"
    batch.write_text('{"id": 1, "title": "t", "text": "OpenAI"}\n{"id": 2, "text": "  "}\n', encoding="utf-8")
    code, out, err = run("--config", config(), "classify", "--jsonl", str(batch))
    assert code == 2 and out == ""
    assert "batch.jsonl:2: no text to classify" in one_error_line(err)


# --- evaluate / train --------------------------------------------------------------------------


def test_evaluate_prints_metrics_and_json(run, config, tmp_path):
    data = tmp_path / "eval.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in [
        {"title": "Compute deal", "text": CLOUD_TEXT, "labels": ["cloud", "new_ecosystem", "divergence"]},
        {"title": "Talent", "text": TALENT_TEXT, "labels": ["talent"]},
        {"title": "Cup final", "text": "The home side won the regional football cup on Saturday.", "labels": []},
    ]), encoding="utf-8")
    cfg = config()
    code, out, _ = run("--config", cfg, "evaluate", "--data", str(data))
    assert code == 0
    assert "micro-F1" in out and "macro-F1" in out and "relevance F1" in out and "talent" in out
    code, out, _ = run("--config", cfg, "evaluate", "--data", str(data), "--json")
    metrics = json.loads(out)
    assert metrics["relevance_f1"] == 1.0 and metrics["n"] == 3
    assert len(metrics["per_label"]) == 13


def test_evaluate_unknown_label_exits_2(run, config, tmp_path):
    data = tmp_path / "eval.jsonl"
    data.write_text(json.dumps({"title": "t", "text": "x", "labels": ["cloudy"]}) + "\n", encoding="utf-8")
    code, _, err = run("--config", config(), "evaluate", "--data", str(data))
    assert code == 2 and "unknown label id(s) cloudy" in one_error_line(err)


def test_incompatible_artefact_exits_2_saying_run_train(run, config, tmp_path):
    folder = tmp_path / "artefacts"
    shutil.copytree(ARTEFACTS, folder)
    card = json.loads((folder / "model-card.json").read_text())
    card["versions"]["scikit-learn"] = "1.0.0"
    (folder / "model-card.json").write_text(json.dumps(card))
    code, _, err = run("--config", config(f'[model]\nartefact_dir = "{folder}"\n'), "classify", "-", stdin=b"OpenAI and Microsoft")
    assert code == 2
    line = one_error_line(err)
    assert "scikit-learn 1.0.0" in line and "run `tension-monitor train`" in line


# --- label, train, reprocess, export: the correction round trip -----------------------------------


def test_label_errors_exit_2(run, config):
    cfg = config()
    code, _, err = run("--config", cfg, "label", "999", "--add", "cloud")
    assert code == 2 and "no article with id 999" in one_error_line(err)
    code, _, err = run("--config", cfg, "label", "1", "--add", "clouds")
    assert code == 2 and "unknown label id(s): clouds" in one_error_line(err)


def test_correction_round_trip(run, config, make_settings, tmp_path):
    cfg = config(f'[model]\nartefact_dir = "{tmp_path / "artefacts"}"\n')
    settings = make_settings(f'[model]\nartefact_dir = "{tmp_path / "artefacts"}"\n')
    from monitor.storage.engine import open_store
    from monitor.storage import schema

    engine = open_store(settings.database_url)
    when = datetime(2025, 3, 1, tzinfo=timezone.utc)
    [talent_id, other_id] = seed_articles(engine, [
        SeedArticle("Microsoft poaches OpenAI researchers", when, labels={"talent": 0.9}, text=TALENT_TEXT),
        SeedArticle("Compute deal", when, labels={"cloud": 0.9}, text=CLOUD_TEXT),
    ])

    # The analyst says the talent story is also about competition and not about talent.
    code, out, _ = run("--config", cfg, "label", str(talent_id), "--add", "competition", "--remove", "talent",
                       "--author", "ana")
    assert code == 0 and out.strip() == f"article {talent_id}: competition"
    with engine.connect() as conn:
        rows = conn.execute(select(schema.corrections.c.label_id, schema.corrections.c.action,
                                   schema.corrections.c.author)).all()
        origins = dict(conn.execute(select(schema.article_labels.c.label_id, schema.article_labels.c.origin)
                                    .where(schema.article_labels.c.article_id == talent_id)).all())
    assert sorted(rows) == [("competition", "add", "ana"), ("talent", "remove", "ana")]
    assert origins == {"competition": "analyst"}

    # train uses the correction...
    code, out, _ = run("--config", cfg, "train")
    assert code == 0 and "1 from analyst corrections" in out and "micro-F1" in out
    card = json.loads((tmp_path / "artefacts" / "model-card.json").read_text())
    assert card["training_data"]["n_corrections"] == 1

    # ...and re-tagging with the new model keeps the analyst's word over the model's.
    code, out, _ = run("--config", cfg, "reprocess")
    assert code == 0 and "re-tagged 2 articles" in out
    with engine.connect() as conn:
        labels = [r[0] for r in conn.execute(select(schema.article_labels.c.label_id)
                                             .where(schema.article_labels.c.article_id == talent_id))]
        relevant, version = conn.execute(select(schema.articles.c.relevant, schema.articles.c.model_version)
                                         .where(schema.articles.c.id == talent_id)).one()
    assert "competition" in labels and "talent" not in labels
    assert relevant and version == card["model_version"]

    # export shows the effective labels, the correction, the scores and the entities.
    code, out, _ = run("--config", cfg, "export", "--format", "jsonl")
    exported = {row["id"]: row for row in map(json.loads, out.splitlines())}
    assert exported[talent_id]["corrected"] == {"competition": "add", "talent": "remove"}
    assert "talent" not in exported[talent_id]["labels"] and "competition" in exported[talent_id]["labels"]
    assert "cloud" in exported[other_id]["labels"] and len(exported[other_id]["scores"]) == 13
    assert {"text": "Oracle", "label": "ORG", "id": "oracle"} in exported[other_id]["entities"]
    csv_file = tmp_path / "out.csv"
    code, _, err = run("--config", cfg, "export", "--format", "csv", "--since", "2025-01-01", "--output", str(csv_file))
    assert code == 0 and "wrote 2 articles" in err
    header = csv_file.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("id,published_at,title") and "score_new_ecosystem" in header
    code, _, err = run("--config", cfg, "export", "--since", "last tuesday")
    assert code == 2 and "--since" in one_error_line(err)
    engine.dispose()


# --- the installed entry point, cold ---------------------------------------------------------------


@pytest.mark.skipif(not CLI.exists(), reason="the venv entry point is not installed")
def test_installed_command_classifies_and_refuses_binary(config, tmp_path):
    cfg = config()
    article = tmp_path / "a.txt"
    article.write_text(CLOUD_TEXT, encoding="utf-8")
    done = subprocess.run([str(CLI), "--config", cfg, "classify", str(article), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "cloud" in json.loads(done.stdout)["scores"]
    article.write_bytes(b"\x00\x01\x02binary")
    done = subprocess.run([str(CLI), "--config", cfg, "classify", str(article)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {article}: binary data, not text"]
