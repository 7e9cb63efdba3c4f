"""Batch tagging: every row kept, in order, with its original values; bad rows flagged; outputs atomic."""

from __future__ import annotations

import csv
import json
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reason_classifier.classifier import ReasonClassifier
from reason_classifier.errors import InputError
from reason_classifier.progress import ProgressEvent
from reason_classifier.survey_files import SurveyFormat
from reason_classifier.tagging import TAG_COLUMNS, tag_file, tag_table


@pytest.fixture(scope="module")
def classifier(tiny_classifier: ReasonClassifier) -> ReasonClassifier:
    """Tagging and files need a model, not the shipped one's judgement: the tiny test model (tests/conftest.py)."""
    return tiny_classifier


ANSWERS = [
    "Too expensive for a team of three",
    "太贵了，不值这个价",
    "客服一直不回覆，等了兩個禮拜",
    "Aplikacja ciągle się zawiesza",
    "We switched to a cheaper competitor",
    "",
    "   ",
    "x" * 6000,
    "Support never answered 😡😡",
    'Line one, with a comma\nand "quotes" on line two',
]
EXPECTED_ERRORS = {5: "empty answer", 6: "answer is only whitespace", 7: "answer too long"}


def survey_frame(rows: int = 23) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"00{i}" for i in range(rows)],
            "answer": [ANSWERS[i % len(ANSWERS)] for i in range(rows)],
            "plan": ["NA" if i % 4 == 0 else "team" for i in range(rows)],
        }
    )


def write_frame(frame: pd.DataFrame, path, fmt: SurveyFormat) -> None:
    if fmt is SurveyFormat.CSV:
        frame.to_csv(path, index=False)
    elif fmt is SurveyFormat.TSV:
        frame.to_csv(path, index=False, sep="\t")
    elif fmt is SurveyFormat.JSONL:
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif fmt is SurveyFormat.PARQUET:
        frame.to_parquet(path, index=False)
    else:
        frame.to_excel(path, index=False)


def read_back(path, fmt: SurveyFormat) -> pd.DataFrame:
    if fmt in (SurveyFormat.CSV, SurveyFormat.TSV):
        return pd.read_csv(path, dtype=str, keep_default_na=False, sep="\t" if fmt is SurveyFormat.TSV else ",")
    if fmt is SurveyFormat.JSONL:
        return pd.DataFrame([json.loads(line) for line in open(path, encoding="utf-8")])
    if fmt is SurveyFormat.PARQUET:
        return pd.read_parquet(path)
    return pd.read_excel(path, dtype=str, keep_default_na=False)


EXTENSIONS = {
    SurveyFormat.CSV: "csv",
    SurveyFormat.TSV: "tsv",
    SurveyFormat.JSONL: "jsonl",
    SurveyFormat.PARQUET: "parquet",
    SurveyFormat.EXCEL: "xlsx",
}


@pytest.mark.parametrize("fmt", list(SurveyFormat))
def test_every_format_keeps_every_row_in_order_with_original_values(fmt, tmp_path, classifier):
    frame = survey_frame()
    source, target = tmp_path / f"in.{EXTENSIONS[fmt]}", tmp_path / f"out.{EXTENSIONS[fmt]}"
    write_frame(frame, source, fmt)
    summary = tag_file(source, target, classifier, "answer", chunk_rows=7)
    tagged = read_back(target, fmt)

    assert summary.rows == len(frame) == len(tagged)
    assert list(tagged.columns) == [*frame.columns, *TAG_COLUMNS]
    assert tagged["customer_id"].tolist() == frame["customer_id"].tolist()
    assert tagged["plan"].tolist() == frame["plan"].tolist()
    if fmt is not SurveyFormat.EXCEL:  # Excel itself turns "\n" into "\r\n"-free text but keeps whitespace-only cells
        assert tagged["answer"].tolist() == frame["answer"].tolist()
    for i in range(len(frame)):
        problem = EXPECTED_ERRORS.get(i % len(ANSWERS))
        row = tagged.iloc[i]
        if problem:
            assert problem in str(row["error"]) and row["category"] == "other"
        else:
            assert pd.isna(row["error"]) or row["error"] == ""
            assert row["category"] in ("product", "pricing", "support", "market", "other")
    assert summary.errors == sum(1 for i in range(len(frame)) if i % len(ANSWERS) in EXPECTED_ERRORS)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_csv_cells_stay_strings_and_quoted_multiline_fields_survive(tmp_path, classifier):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    rows = [
        ["id", "answer", "mrr"],
        ["007", 'said "no", twice\nthen left', "1,234.50"],
        ["NA", "n/a", ""],
        ["1e5", "太貴了", "0012"],
    ]
    with open(source, "w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(rows)
    tag_file(source, target, classifier, "answer")
    with open(target, encoding="utf-8", newline="") as file:
        back = list(csv.reader(file))
    assert [r[:3] for r in back] == rows
    assert back[0][3:] == list(TAG_COLUMNS)


def test_csv_with_bom_semicolons_and_a_ragged_row(tmp_path, classifier):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_bytes(
        "\ufeffid;answer\n1;za drogo\n2;support never replied;extra\n3\n\n4;app crashes\n".encode("utf-8")
    )
    summary = tag_file(source, target, classifier, "answer")
    back = pd.read_csv(target, sep=";", dtype=str, keep_default_na=False)
    assert back["id"].tolist() == ["1", "2", "3", "", "4"]
    assert "row 2 (line 3) has 3 fields, the header has 2; extra fields: ['extra']" in back["error"][1]
    assert "row 3 (line 4) has 1 fields" in back["error"][2]
    assert "blank line" in back["error"][3]
    assert back["error"][0] == back["error"][4] == ""
    assert summary.rows == 5 and summary.errors == 3


def test_undecodable_bytes_name_the_line_and_encoding_option_fixes_it(tmp_path, classifier):
    source = tmp_path / "in.csv"
    source.write_bytes("id,answer\n1,fine\n2,caf\xe9 too pricey\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"line 3: bytes b'\\xe9' are not valid utf-8-sig.*--encoding"):
        tag_file(source, tmp_path / "out.csv", classifier, "answer")
    assert not (tmp_path / "out.csv").exists()
    tag_file(source, tmp_path / "out.csv", classifier, "answer", encoding="cp1252")
    assert "café too pricey" in (tmp_path / "out.csv").read_text(encoding="utf-8")


def test_missing_text_column_lists_the_columns(tmp_path, classifier):
    source = tmp_path / "in.csv"
    survey_frame(3).to_csv(source, index=False)
    with pytest.raises(InputError, match=r"no column 'reason'; the columns are: 'customer_id', 'answer', 'plan'"):
        tag_file(source, tmp_path / "out.csv", classifier, "reason")


def test_already_tagged_input_is_refused_not_overwritten(tmp_path, classifier):
    frame = survey_frame(3).assign(category="x")
    with pytest.raises(InputError, match="already has column"):
        tag_table(frame, classifier, "answer")


def test_jsonl_keeps_missing_keys_and_flags_bad_lines(tmp_path, classifier):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(
        '{"id": 1, "answer": "too expensive", "mrr": 49.5}\n'
        '{"id": 2, "answer": "no export to excel"}\n'
        "{not json\n"
        '"just a string"\n'
        "\n"
        '{"id": 5, "note": "no answer key", "nested": {"a": [1, 2]}}\n',
        encoding="utf-8",
    )
    tag_file(source, target, classifier, "answer")
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5
    assert rows[0]["mrr"] == 49.5 and "mrr" not in rows[1]
    assert rows[2]["error"].startswith("line 3 is not valid JSON") and "{not json" in rows[2]["error"]
    assert "not an object" in rows[3]["error"] and rows[3]["category"] == "other"
    assert rows[4]["nested"] == {"a": [1, 2]} and rows[4]["error"] == "no answer field in this row"


def test_parquet_keeps_arrow_types_including_nullable_ints_and_timestamps(tmp_path, classifier):
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    table = pa.table(
        {
            "seats": pa.array([3, None, 7], pa.int64()),
            "cancelled_at": pa.array([datetime(2026, 1, 5), datetime(2026, 2, 1), None], pa.timestamp("us")),
            "answer": pa.array(["too expensive", None, "support is slow"]),
        }
    )
    pq.write_table(table, source)
    tag_file(source, target, classifier, "answer", chunk_rows=2)
    back = pq.read_table(target)
    assert back.schema.field("seats").type == pa.int64()
    assert back.schema.field("cancelled_at").type == pa.timestamp("us")
    assert back.column("seats").to_pylist() == [3, None, 7]
    assert back.column("error").to_pylist()[1] == "empty answer"


def test_excel_to_csv_keeps_numbers_and_dates(tmp_path, classifier):
    source, target = tmp_path / "in.xlsx", tmp_path / "out.csv"
    pd.DataFrame({"when": [datetime(2026, 3, 1)], "mrr": [99.5], "answer": ["Preis zu hoch"]}).to_excel(
        source, index=False
    )
    tag_file(source, target, classifier, "answer")
    back = pd.read_csv(target, dtype=str)
    assert back.loc[0, "when"] == "2026-03-01 00:00:00" and back.loc[0, "mrr"] == "99.5"
    assert back.loc[0, "category"] == "pricing"


def test_header_only_file_gives_header_only_output(tmp_path, classifier):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("id,answer\n", encoding="utf-8")
    summary = tag_file(source, target, classifier, "answer")
    assert summary.rows == 0
    assert target.read_text(encoding="utf-8").splitlines() == ["id,answer," + ",".join(TAG_COLUMNS)]


class FailsOnSecondChunk(ReasonClassifier):
    calls = 0

    def predict(self, texts):
        FailsOnSecondChunk.calls += 1
        if FailsOnSecondChunk.calls == 2:
            raise RuntimeError("interrupted")
        return super().predict(texts)


def test_interrupted_run_leaves_no_partial_output_and_keeps_the_old_file(tmp_path, classifier):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    survey_frame(20).to_csv(source, index=False)
    target.write_text("previous result\n", encoding="utf-8")
    failing = FailsOnSecondChunk(
        classifier.encoder,
        classifier.taxonomy,
        classifier.head,
        classifier.abstain_below,
        char_ngrams=classifier.char_ngrams,
    )
    with pytest.raises(RuntimeError, match="interrupted"):
        tag_file(source, target, failing, "answer", chunk_rows=5)
    assert target.read_text(encoding="utf-8") == "previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_output_may_not_overwrite_input(tmp_path, classifier):
    source = tmp_path / "in.csv"
    survey_frame(2).to_csv(source, index=False)
    with pytest.raises(InputError, match="overwrite the input"):
        tag_file(source, source, classifier, "answer")


def test_tag_table_leaves_its_input_as_it_was(classifier):
    frame = survey_frame(12)
    tagged = tag_table(frame, classifier, "answer")
    assert len(tagged) == 12 and list(tagged.columns[: len(frame.columns)]) == list(frame.columns)
    pd.testing.assert_frame_equal(frame, survey_frame(12))  # the input is not modified


def test_progress_is_one_event_per_chunk_with_the_total_when_the_format_knows_it(tmp_path, classifier):
    source = tmp_path / "export.parquet"
    write_frame(survey_frame(23), source, SurveyFormat.PARQUET)
    events: list[ProgressEvent] = []
    tag_file(source, tmp_path / "out.parquet", classifier, "answer", chunk_rows=10, on_progress=events.append)
    assert events == [ProgressEvent("tagging export.parquet", done, 23) for done in (10, 20, 23)]
