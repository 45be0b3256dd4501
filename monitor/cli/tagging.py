"""Tagging commands: train, evaluate, classify, label, reprocess, export.

spaCy, scikit-learn and the store are imported inside the commands, so `--help` stays fast.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from monitor.cli import pass_ctx, processes_option
from monitor.errors import FetchError, InputError
from monitor.records import MAX_ID
from monitor.textio import decode_text, read_file_bytes, read_json_objects, write_problem

JSONL_CHUNK = 256  # rows per tag_texts call in `classify --jsonl`


def register(cli: click.Group) -> None:
    for command in (train, evaluate, classify, label, reprocess, export):
        cli.add_command(command)


def _console():
    from rich.console import Console

    # Piped output gets a wide table rather than rich's 80-column default.
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def _metrics_table(title: str, metrics: dict):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name in ("label", "precision", "recall", "F1", "support"):
        table.add_column(name, justify="left" if name == "label" else "right")
    for label, row in metrics["per_label"].items():
        table.add_row(label, f"{row['precision']:.2f}", f"{row['recall']:.2f}", f"{row['f1']:.2f}", str(row["support"]))
    return table


def _summary(metrics: dict) -> str:
    return (f"micro-F1 {metrics['micro_f1']:.3f}   macro-F1 {metrics['macro_f1']:.3f}   "
            f"relevance F1 {metrics['relevance_f1']:.3f}   ({metrics['n']} texts)")


# --- train / evaluate ------------------------------------------------------------------------


@click.command()
@click.option("--compare", is_flag=True, help="Cross-validate every candidate model and print the comparison instead.")
@click.option("--dev", "dev_path", type=click.Path(dir_okay=False, path_type=Path),
              help="With --compare: also score each candidate on this labelled JSONL (measuring only).")
@click.option("--candidates", default="", help="With --compare: comma-separated candidate names (default: all).")
@pass_ctx
def train(ctx, compare: bool, dev_path: Path | None, candidates: str) -> None:
    """Train the classifier on models/training/*.jsonl plus analyst corrections; print
    cross-validated per-label P/R/F1; write the artefact and model card."""
    from monitor import training

    app, console = ctx.app, _console()
    if compare:
        dev = training.read_jsonl(dev_path, app.taxonomy) if dev_path else None
        names = [name.strip() for name in candidates.split(",") if name.strip()] or None
        unknown = [name for name in names or [] if name not in training.CANDIDATES]
        if unknown:
            raise InputError(f"unknown candidate {', '.join(unknown)}; known: {', '.join(training.CANDIDATES)}")
        _print_comparison(console, training.compare(app.settings, app.taxonomy, names=names, dev_rows=dev))
        return
    card = training.train(app.settings, app.taxonomy, nlp=app.nlp, engine_factory=lambda: app.engine)
    cv, data = card["cross_validation"], card["training_data"]
    console.print(_metrics_table(f"{cv['folds']}-fold cross-validation", cv))
    console.print(_summary(cv))
    console.print(
        f"trained {card['model_version']} on {data['n_examples']} examples "
        f"({data['n_corrections']} from analyst corrections, {data['n_negatives']} negatives) "
        f"in {card['training_seconds']:.1f} s"
    )
    from monitor.classify import artefact_paths

    artefact, card_path = artefact_paths(app.settings)
    console.print(f"wrote {artefact} and {card_path}")


def _print_comparison(console, table: list[dict]) -> None:
    from rich.table import Table

    out = Table(title="candidates (CV = 5-fold on the training data)", title_justify="left")
    for name in ("model", "CV micro", "CV macro", "CV relevance", "CV ECE", "dev micro", "dev macro", "dev relevance", "seconds"):
        out.add_column(name, justify="left" if name == "model" else "right")
    for row in table:
        cv, dev = row["cv"], row.get("dev")
        cells = [f"{cv['micro_f1']:.3f}", f"{cv['macro_f1']:.3f}", f"{cv['relevance_f1']:.3f}", f"{row['ece']:.3f}"]
        cells += [f"{dev[k]:.3f}" for k in ("micro_f1", "macro_f1", "relevance_f1")] if dev else ["", "", ""]
        out.add_row(row["model"], *cells, f"{row['seconds']:.1f}")
    console.print(out)


@click.command()
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Labelled JSONL: one {\"title\", \"text\", \"labels\"} per line.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@pass_ctx
def evaluate(ctx, data_path: Path, as_json: bool) -> None:
    """Score the current model on labelled data: micro-F1, macro-F1, relevance F1, per label."""
    from monitor import training

    app = ctx.app
    rows = training.read_jsonl(data_path, app.taxonomy)
    metrics = training.evaluate(app.classifier, app.nlp, rows)
    metrics["model_version"] = app.classifier.model_version
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    console = _console()
    console.print(_metrics_table(f"{data_path} ({app.classifier.model_version})", metrics))
    console.print(_summary(metrics))


# --- classify -------------------------------------------------------------------------------------


@click.command()
@click.argument("source", required=False, metavar="[FILE | -]")
@click.option("--url", help="Fetch this article page and classify its text.")
@click.option("--title", default="", help="The article's title (tagged with the text).")
@click.option("--jsonl", "jsonl_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Batch: one {\"id\", \"title\", \"text\"} per line in, one result per line out.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def classify(ctx, source: str | None, url: str | None, title: str, jsonl_path: Path | None, as_json: bool) -> None:
    """Tag one article (a file, stdin or --url) against the tension model; nothing is stored."""
    given = [x for x in (source, url, jsonl_path) if x]
    if len(given) > 1:
        raise InputError("give one of FILE, -, --url or --jsonl")
    if jsonl_path:
        _classify_jsonl(ctx.app, jsonl_path)
        return
    text = "" if url else _read_text(source)
    if not url and not (title.strip() or text.strip()):
        raise InputError(f"{_name(source, url)}: no text to classify (empty or whitespace only)")
    from monitor.service import classify_article

    app = ctx.app
    _warn_if_long(app, title, text, _name(source, url))
    try:
        article = classify_article(app, title, text, url or "")
    except FetchError as exc:
        raise InputError(f"cannot fetch {url}: {exc}") from None
    if as_json:
        click.echo(json.dumps(article.to_json(), ensure_ascii=False))
    else:
        _print_result(_console(), article, app.taxonomy)


def _name(source: str | None, url: str | None) -> str:
    return url or ("stdin" if source in (None, "-") else source)


def _read_text(source: str | None) -> str:
    if source in (None, "-"):
        if source is None and sys.stdin.isatty():
            raise InputError("nothing to classify: give a FILE, - for stdin, --url or --jsonl")
        data, name = sys.stdin.buffer.read(), "stdin"
    else:
        data, name = read_file_bytes(Path(source)), source
    return decode_text(data, name)


def _warn_if_long(app, title: str, text: str, name: str) -> None:
    limit = app.settings.nlp.max_chars
    size = len(title) + len(text) + 2
    if size > limit:
        click.echo(f"warning: {name}: text has {size} characters; only the first {limit} are tagged (nlp.max_chars)", err=True)


def _print_result(console, article, taxonomy) -> None:
    from rich.markup import escape

    result = article.tag
    if article.title:
        console.print(f"[bold]{escape(article.title)}[/]" + (f"  [dim]{escape(article.url)}[/]" if article.url else ""))
    verdict = "[bold green]relevant[/]" if result.relevant else "[dim]not relevant[/] (no label above its threshold)"
    console.print(f"{verdict}   model {result.model_version}" + ("   [yellow](text truncated)[/]" if result.truncated else ""))
    for heading, chosen in (("Friction points", result.friction_points), ("Scenarios", result.scenarios)):
        if not chosen:
            continue
        console.print(f"\n[bold]{heading}[/]")
        for item in chosen:
            name = taxonomy.get(item.id).name if item.id in taxonomy else item.id
            console.print(f"  [bold]{item.id}[/] ({escape(name)})  {item.score:.2f}  (threshold {result.thresholds[item.id]:.2f})")
            for sentence in result.evidence.get(item.id, []):
                console.print(f"      “{escape(sentence)}”")
    if result.needs_review:
        band = ", ".join(f"{k} {result.scores[k]:.2f} vs {result.thresholds[k]:.2f}" for k in result.review)
        console.print(f"\n[yellow]needs review[/] (near the threshold): {band}")
    near = sorted(((s, k) for k, s in result.scores.items() if k not in result.labels), reverse=True)[:3]
    console.print("\n[dim]next highest: " + ", ".join(f"{k} {s:.2f}" for s, k in near) + "[/]")
    if result.entities:
        shown = ", ".join(escape(f"{e.text} ({e.label}{', ' + e.id if e.id else ''})") for e in result.entities[:25])
        more = f" and {len(result.entities) - 25} more" if len(result.entities) > 25 else ""
        console.print(f"\n[bold]Entities[/] {shown}{more}")


def _classify_jsonl(app, path: Path) -> None:
    from monitor.classify import tag_texts

    rows = _read_jsonl_inputs(path)
    limit = app.settings.nlp.max_chars
    for row in rows:
        if len(row["title"]) + len(row["text"]) + 2 > limit:
            click.echo(f"warning: {path}: id {row['id']}: cut at {limit} characters (nlp.max_chars)", err=True)
    nlp, classifier = app.nlp, app.classifier
    for start in range(0, len(rows), JSONL_CHUNK):
        chunk = rows[start:start + JSONL_CHUNK]
        for row, result in zip(chunk, tag_texts(nlp, classifier, [(r["title"], r["text"]) for r in chunk])):
            click.echo(json.dumps({"id": row["id"], **result.to_json()}, ensure_ascii=False))


def _read_jsonl_inputs(path: Path) -> list[dict]:
    rows = []
    for number, row in read_json_objects(path):
        if not isinstance(row.get("text", ""), str) or not isinstance(row.get("title", ""), str):
            raise InputError(f"{path}:{number}: expected {{\"id\", \"title\", \"text\"}} with string title and text")
        title, text = row.get("title") or "", row.get("text") or ""
        if not (title.strip() or text.strip()):
            raise InputError(f"{path}:{number}: no text to classify (empty or whitespace only)")
        rows.append({"id": row.get("id", number), "title": title, "text": text})
    if not rows:
        raise InputError(f"{path}: no rows to classify")
    return rows


# --- corrections, reprocess, export -------------------------------------------------------------


@click.command()
@click.argument("article_id", type=int)
@click.option("--add", "add", multiple=True, metavar="ID", help="A label id the article carries (repeatable).")
@click.option("--remove", "remove", multiple=True, metavar="ID", help="A label id it does not carry (repeatable).")
@click.option("--author", default=None, help="Who corrects (default: $USER).")
@pass_ctx
def label(ctx, article_id: int, add: tuple[str, ...], remove: tuple[str, ...], author: str | None) -> None:
    """Correct a stored article's labels; the correction wins over the model everywhere
    and feeds the next `train`."""
    import getpass

    from monitor.storage.tags import apply_correction

    if not 1 <= article_id <= MAX_ID:
        raise InputError(f"no article with id {article_id}")
    app = ctx.app
    who = author or _user(getpass)
    effective = apply_correction(app.engine, article_id, list(add), list(remove), who, app.taxonomy)
    click.echo(f"article {article_id}: {', '.join(effective) if effective else '(no labels: not relevant)'}")


def _user(getpass) -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "analyst"


@click.command()
@processes_option
@pass_ctx
def reprocess(ctx, processes: int) -> None:
    """Re-tag every stored article with the current model and taxonomy; print what moved.
    Analyst corrections still win."""
    from monitor.storage.tags import reprocess as run
    from monitor.tagpool import Tagger

    app = ctx.app
    with Tagger(app, processes) as tagger:
        report = run(app.engine, tagger.map)
    _print_moves(_console(), report, app.classifier.model_version, app.taxonomy)


def _print_moves(console, report, model_version: str, taxonomy) -> None:
    from rich.table import Table

    console.print(f"re-tagged {report.articles} articles with {model_version}; {report.changed} changed labels")
    if not report.changed:
        return
    table = Table(title="what moved", title_justify="left")
    for name in ("label", "gained", "lost"):
        table.add_column(name, justify="left" if name == "label" else "right")
    for label_id in taxonomy.ids:
        gained, lost = report.gained.get(label_id, 0), report.lost.get(label_id, 0)
        if gained or lost:
            table.add_row(label_id, f"+{gained}", f"-{lost}")
    console.print(table)


@click.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--since", help="Only articles published on or after this date (YYYY-MM-DD or ISO 8601).")
@click.option("--output", "output", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
@pass_ctx
def export(ctx, fmt: str, since: str | None, output: Path | None) -> None:
    """Export stored articles with effective labels, scores, entities and review flags."""
    from monitor.storage.tags import export_articles

    rows = export_articles(ctx.app.engine, _parse_since(since))
    if fmt == "jsonl":
        rows = _with_tension_index(ctx.app, rows, _parse_since(since))
    try:
        count = _write_export(output, fmt, rows, ctx.app.taxonomy.ids)
    except OSError as exc:  # a missing folder, a full disk (/dev/full), no permission
        where, problem = (output, write_problem(exc, output)) if output else ("standard output", exc.strerror or str(exc))
        raise InputError(f"export: cannot write to {where}: {problem}") from None
    if output:
        click.echo(f"wrote {count} articles to {output}", err=True)


def _write_export(output: Path | None, fmt: str, rows, label_ids: list[str]) -> int:
    handle = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        count = _write_jsonl(handle, rows) if fmt == "jsonl" else _write_csv(handle, rows, label_ids)
        handle.flush()  # a full disk shows up here or at close, not at write
    finally:
        if output:
            handle.close()
    return count


def _with_tension_index(app, rows, since: datetime | None):
    """Each row with the tension index of its publication day (UTC), docs/TENSION_INDEX.md."""
    from monitor.digest import tension_by_day

    index = tension_by_day(app, since)
    for row in rows:
        row["tension_index"] = index.get(datetime.fromisoformat(row["published_at"]).astimezone(timezone.utc).date())
        yield row


def _parse_since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"--since {value!r}: expected a date like 2025-01-31 or an ISO 8601 time") from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def _write_jsonl(handle, rows) -> int:
    count = 0
    for row in rows:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


def _write_csv(handle, rows, label_ids: list[str]) -> int:
    import csv

    writer = csv.writer(handle)
    writer.writerow(["id", "published_at", "title", "url", "source", "relevant", "labels", "corrected",
                     *[f"score_{label}" for label in label_ids], "entities", "model_version",
                     "needs_review", "review_labels", "review_uncertainty"])
    count = 0
    for row in rows:
        writer.writerow([
            row["id"], row["published_at"], row["title"], row["url"], row["source"] or "", row["relevant"],
            ";".join(row["labels"]), ";".join(f"{k}:{v}" for k, v in row["corrected"].items()),
            *[row["scores"].get(label, "") for label in label_ids],
            ";".join(e["id"] or e["text"] for e in row["entities"]), row["model_version"] or "",
            row["needs_review"], ";".join(row["review_labels"]),
            "" if row["review_uncertainty"] is None else row["review_uncertainty"],
        ])
        count += 1
    return count
