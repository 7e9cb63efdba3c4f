"""Batch files under stress: broken quoting, formulas, byte-order marks, oversized and unstorable cells, full disks,
and what a killed run leaves behind (issue 15, items 11-15)."""

from __future__ import annotations

import codecs
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest

from reason_classifier.atomic import Terminated, remove_stale_temporaries, temporary_beside
from reason_classifier.classifier import ReasonClassifier
from reason_classifier.errors import InputError, OutputError
from reason_classifier.survey_files import (
    EXCEL_CELL_CHARS,
    MAX_XLSX_RATIO,
    DelimitedReader,
    ExcelReader,
    SurveyFormat,
    escape_formula,
    open_writer,
)
from reason_classifier.tagging import tag_file


@pytest.fixture(scope="module")
def classifier(tiny_classifier: ReasonClassifier) -> ReasonClassifier:
    """Tagging and files need a model, not the shipped one's judgement: the tiny test model (tests/conftest.py)."""
    return tiny_classifier


def rows_of(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as file:
        return list(csv.reader(file))


def read_all(reader) -> tuple[pd.DataFrame, dict[int, str]]:
    tables, problems, offset = [], {}, 0
    for chunk in reader.chunks():
        tables.append(chunk.table)
        problems.update({offset + position: problem for position, problem in chunk.problems.items()})
        offset += len(chunk.table)
    return pd.concat(tables, ignore_index=True), problems


# 11. An unterminated quote merges rows.


def test_an_unterminated_quote_keeps_every_line_as_its_own_row_and_flags_it(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text('id,answer\n1,"too expensive\n2,support is slow\n3,app crashes\n4,bye\n', encoding="utf-8")
    table, problems = read_all(DelimitedReader(source, chunk_rows=2))
    assert table["id"].tolist() == ["1", "2", "3", "4"]
    assert table["answer"].tolist()[1:] == ["support is slow", "app crashes", "bye"]
    assert list(problems) == [0]
    assert "row 1 (line 2: a quote opened on this line is not closed" in problems[0]


def test_a_stray_quote_later_in_the_file_does_not_swallow_the_rows_between(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text(
        'id,answer\n1,"too expensive\n2,fine\n3,"also bad\n4,ok\n5,"quoted, fine"\n6,"two\nlines"\n',
        encoding="utf-8",
    )
    table, problems = read_all(DelimitedReader(source))
    assert table["id"].tolist() == ["1", "2", "3", "4", "5", "6"]
    assert table["answer"].tolist()[4:] == ["quoted, fine", "two\nlines"]
    assert sorted(problems) == [0, 2]
    assert "(line 2:" in problems[0] and "(line 4:" in problems[2]


def test_text_after_a_closing_quote_flags_the_row(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text('id,answer\n1,"too" expensive\n2,fine\n', encoding="utf-8")
    table, problems = read_all(DelimitedReader(source))
    assert table["id"].tolist() == ["1", "2"] and list(problems) == [0]
    assert table["answer"][0] == '"too" expensive' and "line 2" in problems[0]


def test_tagging_a_file_with_an_unterminated_quote_tags_the_other_rows(tmp_path, classifier):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text('id,answer\n1,"too expensive\n2,support never answered\n3,app keeps crashing\n', encoding="utf-8")
    summary = tag_file(source, target, classifier, "answer")
    back = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert back["id"].tolist() == ["1", "2", "3"] and summary.rows == 3 and summary.errors == 1
    assert "line 2" in back["error"][0] and back["category"][0] == "other"
    assert back["category"].tolist()[1:] == ["support", "product"]


# 13. What the summary says must be what happened.


def test_the_summary_counts_the_model_abstentions_and_the_output_says_which(tmp_path, classifier):
    answers = ["too expensive", "", "asdfghjkl qwerty", "n/a", "support is slow", "😀", "ok thanks bye"]
    predictions = classifier.predict(answers)
    # The test is only telling if some `other` rows are not abstentions (errors, or `other` chosen outright).
    assert sum(p.category == "other" and p.error is None for p in predictions) > sum(p.abstained for p in predictions)
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"answer": a}) + "\n" for a in answers), encoding="utf-8")
    summary = tag_file(source, target, classifier, "answer")
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [row["abstained"] for row in rows] == [p.abstained for p in predictions]
    assert summary.abstained == sum(p.abstained for p in predictions)
    assert summary.as_dict()["abstained"] == summary.abstained
    assert rows[1]["abstained"] is False and rows[1]["error"] == "empty answer"


# 12. Formula injection.

FORMULAS = ['=HYPERLINK("http://evil.example","click")', "=cmd|' /C notepad'!'A1'", "+1+2", "@SUM(A1)", "#N/A"]


def test_xlsx_output_stores_formula_like_answers_as_text(tmp_path, classifier):
    source, target = tmp_path / "in.csv", tmp_path / "out.xlsx"
    pd.DataFrame({"id": range(len(FORMULAS)), "answer": FORMULAS}).to_csv(source, index=False)
    tag_file(source, target, classifier, "answer")
    sheet = openpyxl.load_workbook(target).active
    cells = [row[1] for row in sheet.iter_rows(min_row=2)]
    assert [cell.value for cell in cells] == FORMULAS
    assert {cell.data_type for cell in cells} == {"s"}


def test_csv_escape_formulas_prefixes_would_be_formulas_only(tmp_path, classifier):
    source = tmp_path / "in.csv"
    pd.DataFrame({"answer": [*FORMULAS, "-5", "fine"]}).to_csv(source, index=False)
    tag_file(source, tmp_path / "plain.csv", classifier, "answer")
    tag_file(source, tmp_path / "escaped.csv", classifier, "answer", escape_formulas=True)
    assert [row[0] for row in rows_of(tmp_path / "plain.csv")[1:]] == [*FORMULAS, "-5", "fine"]
    escaped = [row[0] for row in rows_of(tmp_path / "escaped.csv")[1:]]
    assert escaped == ["'" + f for f in FORMULAS[:4]] + ["#N/A", "-5", "fine"]
    assert escape_formula("\tx") == "'\tx" and escape_formula("-1.5e3") == "-1.5e3"


def test_an_uncalculated_formula_cell_keeps_its_text_and_the_sheet_keeps_its_name(tmp_path, classifier):
    source, target = tmp_path / "in.xlsx", tmp_path / "out.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Responses"
    sheet.append(["id", "answer"])
    sheet.append([1, "too expensive"])
    sheet.append([2, '=CONCAT("too ", "expensive")'])  # openpyxl stores no computed value
    book.save(source)
    with ExcelReader(source) as reader:
        table, _ = read_all(reader)
    assert table["answer"].tolist() == ["too expensive", '=CONCAT("too ", "expensive")']
    tag_file(source, target, classifier, "answer")
    written = openpyxl.load_workbook(target)
    assert written.sheetnames == ["Responses"]
    assert written["Responses"]["B3"].value == '=CONCAT("too ", "expensive")'
    assert written["Responses"]["B3"].data_type == "s"


# 14. Encodings and bytes.


def test_csv_output_keeps_the_inputs_byte_order_mark(tmp_path, classifier):
    with_bom, without = tmp_path / "bom.csv", tmp_path / "plain.csv"
    with_bom.write_bytes(codecs.BOM_UTF8 + "id,answer\n1,zu teuer für uns\n".encode())
    without.write_bytes("id,answer\n1,太贵了\n".encode())
    tag_file(with_bom, tmp_path / "bom.out.csv", classifier, "answer")
    tag_file(without, tmp_path / "plain.out.csv", classifier, "answer")
    tag_file(with_bom, tmp_path / "nobom.out.csv", classifier, "answer", bom=False)
    tag_file(without, tmp_path / "forced.out.csv", classifier, "answer", bom=True)
    assert (tmp_path / "bom.out.csv").read_bytes().startswith(codecs.BOM_UTF8 + b"id,answer,")
    assert (tmp_path / "plain.out.csv").read_bytes().startswith(b"id,answer,")
    assert (tmp_path / "nobom.out.csv").read_bytes().startswith(b"id,answer,")
    assert (tmp_path / "forced.out.csv").read_bytes().startswith(codecs.BOM_UTF8)
    assert rows_of(tmp_path / "bom.out.csv")[1][1] == "zu teuer für uns"


def test_a_byte_order_mark_is_seen_under_every_name_of_utf_8(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(codecs.BOM_UTF8 + b"id,answer\n1,too expensive\n")
    for name in ("utf-8-sig", "UTF8", "utf_8", "u8", "utf"):
        reader = DelimitedReader(path, encoding=name)
        reader.close()
        assert reader.has_bom, name
    reader = DelimitedReader(path, encoding="latin-1")
    reader.close()
    assert not reader.has_bom


def test_csv_made_from_an_xlsx_gets_a_byte_order_mark_for_excel(tmp_path, classifier):
    source = tmp_path / "in.xlsx"
    pd.DataFrame({"answer": ["zu teuer"]}).to_excel(source, index=False)
    tag_file(source, tmp_path / "out.csv", classifier, "answer")
    assert (tmp_path / "out.csv").read_bytes().startswith(codecs.BOM_UTF8)


def xlsx_with_text(path: Path, text: str) -> Path:
    """An .xlsx whose second row's answer is `text`, put in the XML directly (openpyxl would cut long text)."""
    pd.DataFrame({"id": [1, 2], "answer": ["fine", "PLACEHOLDER"]}).to_excel(path, index=False)
    with zipfile.ZipFile(path) as archive:
        parts = {info.filename: archive.read(info) for info in archive.infolist()}
    holder = next(name for name, data in parts.items() if b"PLACEHOLDER" in data)
    parts[holder] = parts[holder].replace(b"PLACEHOLDER", text.encode())
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return path


def test_an_xlsx_cell_over_excels_limit_flags_its_row(tmp_path):
    path = xlsx_with_text(tmp_path / "long.xlsx", "x" * (EXCEL_CELL_CHARS + 10))
    with ExcelReader(path) as reader:
        table, problems = read_all(reader)
    assert table["id"].tolist() == [1, 2] and table["answer"][1] is None
    assert list(problems) == [1] and f"holds {EXCEL_CELL_CHARS + 10:,} characters" in problems[1]


def test_a_small_xlsx_that_unpacks_to_hundreds_of_megabytes_is_refused_before_unpacking(tmp_path):
    path = xlsx_with_text(tmp_path / "bomb.xlsx", "x" * (64 * 1024 * 1024))
    assert path.stat().st_size < 1024 * 1024
    with pytest.raises(InputError, match=rf"part xl/\S+.xml unpacks to 67,1\d\d,\d\d\d bytes .*{MAX_XLSX_RATIO}x"):
        ExcelReader(path)


def test_a_50_mb_header_line_is_a_clear_input_error(tmp_path):
    path = tmp_path / "wide.csv"
    with open(path, "wb") as file:
        file.write(b"id," + b"a" * (50 * 1024 * 1024) + b"\n1,x\n")
    with pytest.raises(InputError, match=r"line 1: the header line is 5\d,\d\d\d,\d\d\d bytes long"):
        DelimitedReader(path)


def test_a_control_character_with_xlsx_output_flags_the_row_and_keeps_the_rest(tmp_path, classifier):
    source, target = tmp_path / "in.csv", tmp_path / "out.xlsx"
    pd.DataFrame({"id": ["1", "2"], "answer": ["too expensive\x07", "support is slow"]}).to_csv(source, index=False)
    summary = tag_file(source, target, classifier, "answer")
    back = pd.read_excel(target, dtype=str, keep_default_na=False)
    assert back["answer"].tolist() == ["too expensive\\x07", "support is slow"]
    assert "control characters" in back["error"][0] and back["error"][1] == ""
    assert back["category"][0] == "pricing" and summary.errors == 1


def test_a_lone_surrogate_flags_its_row_instead_of_aborting_the_file(tmp_path):
    target = tmp_path / "out.csv"
    table = pd.DataFrame({"id": ["1", "2"], "note": ["bad \ud800 text", "fine"], "error": [None, None]}, dtype=object)
    with open_writer(target, SurveyFormat.CSV) as writer:
        problems = writer.prepare(table)
        writer.write(table)
    assert list(problems) == [0] and "lone surrogate" in problems[0]
    assert rows_of(target)[1:] == [["1", "bad \ufffd text", ""], ["2", "fine", ""]]


def test_an_output_folder_that_cannot_be_made_is_an_output_error(tmp_path, classifier):
    source = tmp_path / "in.csv"
    source.write_text("answer\ntoo expensive\n", encoding="utf-8")
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(OutputError, match=r"a-file/out.csv: cannot write the output"):
        tag_file(source, tmp_path / "a-file" / "out.csv", classifier, "answer")


@pytest.fixture()
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (needs root and mount; skipped elsewhere)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("a full disk needs a small tmpfs: root and mount")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=False)


def test_a_full_disk_is_an_output_error_and_leaves_nothing_behind(tmp_path, tiny_disk, classifier):
    source = tmp_path / "in.csv"
    pd.DataFrame({"answer": ["too expensive for what we get"] * 4000}).to_csv(source, index=False)
    with pytest.raises(OutputError, match="the disk is full"):
        tag_file(source, tiny_disk / "out.csv", classifier, "answer")
    assert list(tiny_disk.iterdir()) == []


# 15. Leftovers of killed runs.


def test_stale_temporaries_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "out.csv"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    mine = temporary_beside(target)
    stale = mine.with_name(mine.name.replace(f".{os.getpid()}.", f".{dead.stdout.strip()}."))
    mine.rename(stale)
    live = temporary_beside(target)
    other = tmp_path / ".other.csv.host.1.abcdefgh.partial"
    other.write_text("")
    assert remove_stale_temporaries(target) == [stale]
    assert sorted(tmp_path.iterdir()) == sorted([live, other])


SLOW_TAGGING = """
import sys, time
from reason_classifier.classifier import ReasonClassifier
from reason_classifier.tagging import tag_file

class Slow(ReasonClassifier):
    def predict(self, texts):
        print("chunk", flush=True)
        time.sleep(0.2)
        return super().predict(texts)

base = ReasonClassifier.load(sys.argv[3], detect_language=False)
slow = Slow(base.encoder, base.taxonomy, base.head, base.abstain_below, char_ngrams=base.char_ngrams)
tag_file(sys.argv[1], sys.argv[2], slow, "answer", chunk_rows=5)
print("done", flush=True)
"""


def start_tagging(source: Path, target: Path, model: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_TAGGING, str(source), str(target), str(model)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "chunk\n"  # the output's temporary file exists from here on
    return process


def partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


class TerminatedOnSecondChunk(ReasonClassifier):
    calls = 0

    def predict(self, texts):
        TerminatedOnSecondChunk.calls += 1
        if TerminatedOnSecondChunk.calls == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().predict(texts)


def test_sigterm_in_this_process_unwinds_and_removes_the_temporary_file(tmp_path, classifier):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"answer": ["too expensive", "support is slow"] * 10}).to_csv(source, index=False)
    terminating = TerminatedOnSecondChunk(
        classifier.encoder, classifier.taxonomy, classifier.head, char_ngrams=classifier.char_ngrams
    )
    with pytest.raises(Terminated) as raised:
        tag_file(source, target, terminating, "answer", chunk_rows=5)
    assert raised.value.code == 128 + signal.SIGTERM
    assert partials(tmp_path) == [] and not target.exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is only there while tagging


@pytest.mark.slow
def test_sigterm_during_tagging_removes_the_temporary_file_and_kill_9_leftovers_go_on_the_next_run(
    tmp_path, tiny_model
):
    """A real `kill`: three processes, each loading the tiny model, the last tagging 80 deliberately slow chunks."""
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"answer": ["too expensive", "support is slow"] * 200}).to_csv(source, index=False)

    process = start_tagging(source, target, tiny_model)
    assert len(partials(tmp_path)) == 1
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert partials(tmp_path) == [] and not target.exists()

    process = start_tagging(source, target, tiny_model)
    process.kill()
    process.wait(timeout=60)
    assert len(partials(tmp_path)) == 1  # kill -9 cannot be caught ...

    process = start_tagging(source, target, tiny_model)  # ... so the next run removes what it left
    time.sleep(0.1)
    assert len(partials(tmp_path)) == 1
    assert process.stdout.read().endswith("done\n") and process.wait(timeout=120) == 0
    assert partials(tmp_path) == [] and len(rows_of(target)) == 401


def test_the_tag_command_reports_file_problems_in_one_line_with_exit_code_2(tmp_path, tiny_model):
    from typer.testing import CliRunner

    from reason_classifier.cli.main import app

    wide = tmp_path / "wide.csv"
    wide.write_bytes(b"answer," + b"a" * (2 * 1024 * 1024) + b"\nfine,x\n")
    result = CliRunner().invoke(app, ["tag", str(wide)])
    assert result.exit_code == 2 and "line 1: the header line is 2,097,160 characters long" in result.output
    source = tmp_path / "in.csv"
    source.write_text("answer\ntoo expensive\n", encoding="utf-8")
    (tmp_path / "a-file").write_text("not a folder")
    result = CliRunner().invoke(
        app, ["tag", str(source), "-o", str(tmp_path / "a-file" / "out.csv"), "--model", str(tiny_model)]
    )
    assert result.exit_code == 2 and "cannot write the output" in result.output
    assert isinstance(result.exception, SystemExit)  # typer's clean exit, not an uncaught error


def test_nested_and_mixed_json_values_are_written_to_xlsx_and_parquet_without_aborting(tmp_path):
    table = pd.DataFrame(
        {"nested": [{"x": [1, 2]}, [3], None], "mixed": ["text", 2, 3], "error": [None, None, None]}, dtype=object
    )
    with open_writer(tmp_path / "out.xlsx", SurveyFormat.EXCEL) as writer:
        assert writer.prepare(table) == {}
        writer.write(table)
    sheet = openpyxl.load_workbook(tmp_path / "out.xlsx").active
    assert [cell.value for cell in sheet[2]][:2] == ['{"x": [1, 2]}', "text"]
    table = pd.DataFrame({"mixed": ["text", 2, 3, None], "error": [None] * 4}, dtype=object)
    with open_writer(tmp_path / "out.parquet", SurveyFormat.PARQUET) as writer:
        problems = writer.prepare(table)
        writer.write(table)
    assert list(problems) == [0] and "holds text here and number in most rows" in problems[0]
    assert pq.read_table(tmp_path / "out.parquet").column("mixed").to_pylist() == ["text", "2", "3", None]


def test_a_parquet_column_that_changes_type_between_chunks_is_a_clear_error(tmp_path):
    writer = open_writer(tmp_path / "out.parquet", SurveyFormat.PARQUET)
    with pytest.raises(InputError, match="cannot be written as Parquet"), writer:
        writer.write(pd.DataFrame({"n": [1, 2]}))
        writer.write(pd.DataFrame({"n": ["one", "two"]}))
    assert list(tmp_path.iterdir()) == []
