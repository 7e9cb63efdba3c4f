"""The `reason-classifier` command as a user runs it (in-process through typer's runner)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from reason_classifier.cli.main import app

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "exit_survey.csv"
runner = CliRunner()


def rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file))


def test_tag_the_shipped_example_keeps_every_row_and_prints_a_summary(tmp_path, tiny_model):
    target = tmp_path / "tagged.csv"
    result = runner.invoke(
        app, ["tag", str(EXAMPLE), "-o", str(target), "--text-column", "answer", "--model", str(tiny_model)]
    )
    assert result.exit_code == 0, result.output
    original, tagged = rows(EXAMPLE), rows(target)
    assert len(tagged) == len(original) == 60
    assert [r["customer_id"] for r in tagged] == [r["customer_id"] for r in original]
    assert [r["answer"] for r in tagged] == [r["answer"] for r in original]
    for category in ("product", "pricing", "support", "market", "other"):
        assert category in result.output
    assert "60 answers tagged" in result.output


def test_tag_guesses_the_answer_column_and_names_the_default_output(tmp_path, tiny_model):
    source = tmp_path / "export.csv"
    source.write_text("id,Answer\n1,too expensive\n", encoding="utf-8")
    result = runner.invoke(app, ["tag", str(source), "--json", "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["rows"] == 1 and summary["categories"]["pricing"] == 1
    assert (tmp_path / "export.tagged.csv").exists()


def test_tag_missing_column_is_a_clear_error_with_exit_code_2(tmp_path):
    result = runner.invoke(app, ["tag", str(EXAMPLE), "-o", str(tmp_path / "o.csv"), "--text-column", "why"])
    assert result.exit_code == 2
    assert "no column 'why'" in result.output and "'answer'" in result.output
    assert not (tmp_path / "o.csv").exists()


def test_tag_unknown_extension_and_missing_file(tmp_path):
    (tmp_path / "export.txt").write_text("answer\nx\n")
    result = runner.invoke(app, ["tag", str(tmp_path / "export.txt"), "-c", "answer"])
    assert result.exit_code == 2 and "--format" in result.output
    result = runner.invoke(app, ["tag", str(tmp_path / "nope.csv"), "-c", "answer"])
    assert result.exit_code == 2 and "no such file" in result.output


def test_classify_prints_one_json_prediction_per_answer(tiny_model):
    result = runner.invoke(app, ["classify", "Za drogo jak na nasz budżet", "", "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    predictions = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert predictions[0]["category"] == "pricing" and predictions[0]["language"] == "pl"
    assert predictions[1]["error"] == "empty answer"


def test_evaluate_writes_metrics_png_and_a_self_contained_html_report(tmp_path, tiny_model):
    labelled = tmp_path / "labelled.csv"
    labelled.write_text(
        "text,category,sub_reason,lang\n"
        "It costs far too much,pricing,too_expensive,en\n"
        "The app crashes every day,product,bugs_performance,en\n"
        "Support never replies,support,slow_response,en\n"
        "Przeszliśmy do konkurencji,market,switched_competitor,pl\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["evaluate", str(tiny_model), str(labelled), "-o", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["rows"] == 4 and set(metrics["per_language"]) == {"en", "pl"}
    assert 0 <= metrics["calibration"]["ece"] <= 1
    assert (tmp_path / "report" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "http" not in page
    assert "macro-F1" in page and "<table>" in page


def test_train_sets_aside_a_held_out_split_and_writes_a_loadable_model_folder(tmp_path):
    from reason_classifier.classifier import ReasonClassifier

    config = tmp_path / "config.yaml"
    config.write_text("encoder: hashed-char-ngrams\nchar_ngram_weight: 0\nfolds: 2\n", encoding="utf-8")
    data = Path(__file__).resolve().parent.parent / "labels" / "train" / "pl.csv"
    result = runner.invoke(app, ["train", str(data), "-o", str(tmp_path / "model"), "--config", str(config)])
    assert result.exit_code == 0, result.output
    # Without a terminal, the stages show as plain lines with their counts (issue 15: it used to print nothing).
    assert "encoding · 1,024/" in result.output
    assert "cross-validation · validation loss " in result.output and " · 2/2 · done in" in result.output
    assert "calibrating · 1/1 · done in" in result.output and "fitting the head · 1/1 · done in" in result.output
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert "20% of" in metrics["heldout"]["data"] and 0 < metrics["heldout"]["macro_f1"] <= 1
    assert "## Evaluation" in (tmp_path / "model" / "README.md").read_text()
    assert ReasonClassifier.load(tmp_path / "model").predict(["za drogo"])[0].error is None
    bad = runner.invoke(app, ["train", str(data), "-o", str(tmp_path / "m2"), "--config", str(tmp_path / "none.yaml")])
    assert bad.exit_code == 2 and "none.yaml" in bad.output
