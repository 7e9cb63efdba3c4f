"""`tag --engine ray`: a local Ray on 2 CPUs writes, for every input file, exactly what the local `tag` writes."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from reason_classifier.classifier import ReasonClassifier
from reason_classifier.errors import InputError
from reason_classifier.tagging import tag_file

ray = pytest.importorskip("ray")

from reason_classifier.cli.main import app  # noqa: E402
from reason_classifier.ray_tagging import RayTagOptions, find_sources, output_paths, ray_session, tag_on_ray  # noqa: E402

CHUNK_ROWS = 128  # small, so each file is many blocks and their order matters
PHRASES = [
    "Too expensive for what we get",
    "Zu teuer für unser Budget",
    "The app crashes every time I export",
    "Support never answered my ticket",
    "We switched to a competitor with better integrations",
    "Trop cher, et le support ne répond pas",
    "Nos mudamos a otra herramienta",
    "company closed",
    "",
    "   ",
    "x" * 5001,
]


def _answers(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(PHRASES)} {i}" if rng.random() < 0.8 else rng.choice(PHRASES) for i in range(count)]


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of exports in three formats, with bad rows of every kind the readers and the tagger flag."""
    folder = tmp_path_factory.mktemp("exports")
    answers = _answers(900, 1)
    lines = ["id,answer,plan"] + [f'{i:04d},"{a}",NA' for i, a in enumerate(answers)]
    lines[5] = "0004,too,many,fields"  # a ragged line
    lines[9] = ""  # a blank line
    (folder / "a.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    records: list[str] = []
    for i, answer in enumerate(_answers(800, 2)):
        value: object = answer
        if i % 97 == 3:
            value = 42  # not text
        elif i % 97 == 5:
            value = ["a", "list"]
        elif i % 97 == 7:
            value = None
        record = {"id": i, "answer": value} if i % 97 != 11 else {"id": i}  # a row without the answer key
        records.append(json.dumps(record))
    records[20] = "{not json"
    records[30] = "[1, 2]"
    (folder / "b.jsonl").write_text("\n".join(records) + "\n", encoding="utf-8")

    parquet_answers: list[str | None] = list(_answers(1200, 3))
    parquet_answers[::50] = [None] * len(parquet_answers[::50])
    table = pa.table({"answer": parquet_answers, "mrr": pa.array(range(1200), pa.int64())})
    pq.write_table(table, folder / "c.parquet", row_group_size=300)

    (folder / "sub").mkdir()
    (folder / "sub" / "d.csv").write_text(
        "answer;id\n" + "\n".join(f"{a.replace(';', ',')};{i}" for i, a in enumerate(_answers(400, 4))) + "\n",
        encoding="utf-8",
    )
    (folder / "sub" / "empty.csv").write_text("answer,id\n", encoding="utf-8")
    (folder / "_SUCCESS").write_text("", encoding="utf-8")  # not an export: skipped
    return folder


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with ray_session(num_cpus=2, object_store_bytes=300 * 1024**2):
        yield


OPTIONS = RayTagOptions(text_column="answer", model="fast", chunk_rows=CHUNK_ROWS)


# Confidences are written rounded to 4 decimals; an actor's and the local process's float sums may
# differ in the last bit and round to neighbouring values. Everything else must be identical.
CONFIDENCE_ULP = 1.5e-4


def _assert_same_rows(written: Path, expected: Path, name: str) -> None:
    got = [json.loads(line) for line in written.read_text(encoding="utf-8").splitlines()]
    want = [json.loads(line) for line in expected.read_text(encoding="utf-8").splitlines()]
    assert len(got) == len(want), name
    for row, (a, b) in enumerate(zip(got, want, strict=True)):
        ca, cb = a.pop("confidence", None), b.pop("confidence", None)
        assert a == b, (name, row)  # same rows, order, values and tags
        assert (ca is None) == (cb is None) and (ca is None or abs(ca - cb) <= CONFIDENCE_ULP), (name, row, ca, cb)


def _local(source: Path, target: Path, tiny_classifier: ReasonClassifier) -> Path:
    tag_file(source, target, tiny_classifier, "answer", chunk_rows=CHUNK_ROWS)
    return target


def test_ray_output_equals_local_tag_row_for_row(
    exports: Path, tmp_path: Path, tiny_classifier: ReasonClassifier, tiny_model: Path, local_ray: None
) -> None:
    options = RayTagOptions(text_column="answer", model=str(tiny_model), chunk_rows=CHUNK_ROWS, output_format="jsonl")
    result = tag_on_ray(exports, tmp_path / "ray", options, workers=2)

    names = {Path(s).relative_to(exports).as_posix() for s in result.outputs}
    assert names == {"a.csv", "b.jsonl", "c.parquet", "sub/d.csv", "sub/empty.csv"}
    for source, written in result.outputs.items():
        relative = Path(source).relative_to(exports)
        assert written == tmp_path / "ray" / relative.with_suffix(".jsonl")
        expected = _local(Path(source), tmp_path / "local" / relative.with_suffix(".jsonl"), tiny_classifier)
        _assert_same_rows(written, expected, str(relative))
    assert result.summary.rows == 900 + 800 + 1200 + 400
    tagged = pd.concat([pd.read_json(p, lines=True, dtype=False) for p in result.outputs.values() if p.stat().st_size])
    assert len(tagged) == result.summary.rows
    errors = tagged["error"].dropna()
    assert result.summary.errors == len(errors) > 100  # the bad rows are there, flagged, not dropped
    for kind in ("not valid JSON", "is a JSON list", "not text", "no answer field", "too long", "empty", "fields"):
        assert errors.str.contains(kind).any(), kind


def test_cli_tags_a_glob_to_parquet_as_the_local_tag_does(
    exports: Path, tmp_path: Path, tiny_classifier: ReasonClassifier, tiny_model: Path, local_ray: None
) -> None:
    result = CliRunner().invoke(
        app,
        ["tag", str(exports / "[ac].*"), "-o", str(tmp_path / "out"), "--engine", "ray", "--model", str(tiny_model)]
        + ["--json"],
        env={"REASON_CLASSIFIER_CHUNK_ROWS": str(CHUNK_ROWS), "REASON_CLASSIFIER_THREADS": "1"},
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 900 + 1200 and summary["workers"] == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.parquet", "c.parquet"]
    for name in ("a.csv", "c.parquet"):
        expected = _local(exports / name, tmp_path / "local" / f"{Path(name).stem}.parquet", tiny_classifier)
        got = pd.read_parquet(tmp_path / "out" / f"{Path(name).stem}.parquet")
        want = pd.read_parquet(expected)
        pd.testing.assert_frame_equal(got.drop(columns="confidence"), want.drop(columns="confidence"), check_exact=True)
        np.testing.assert_allclose(got["confidence"], want["confidence"], rtol=0, atol=CONFIDENCE_ULP)


def test_a_file_without_the_text_column_stops_the_run_before_ray_starts(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.csv").write_text("answer\ntoo expensive\n", encoding="utf-8")
    (tmp_path / "in" / "wrong.csv").write_text("reason\ntoo expensive\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"wrong\.csv: no column 'answer'"):
        tag_on_ray(tmp_path / "in", tmp_path / "out", OPTIONS, workers=1)
    assert not (tmp_path / "out").exists()


def test_an_error_in_a_ray_worker_is_the_projects_error_naming_file_and_rows(
    tmp_path: Path, tiny_model: Path, local_ray: None
) -> None:
    (tmp_path / "in").mkdir()
    lines = [json.dumps({"reason": "too expensive"})] * 3 + [json.dumps({"answer": "too expensive"})] * 3
    (tmp_path / "in" / "keys.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    options = RayTagOptions(text_column="answer", model=str(tiny_model), chunk_rows=3, output_format="jsonl")
    with pytest.raises(InputError, match=r"keys\.jsonl: no field 'answer' in rows 1-3") as raised:
        tag_on_ray(tmp_path / "in", tmp_path / "out", options, workers=1)
    assert type(raised.value) is InputError  # the project's error, not Ray's wrapper of it
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_cli_ray_engine_needs_an_output_folder(exports: Path) -> None:
    result = CliRunner().invoke(app, ["tag", str(exports), "--engine", "ray"])
    assert result.exit_code == 2
    assert "-o" in result.output


def test_sources_and_outputs_keep_the_folder_layout_and_refuse_clashes(exports: Path, tmp_path: Path) -> None:
    sources = find_sources(exports)
    assert [Path(s).relative_to(exports).as_posix() for s in sources] == [
        "a.csv",
        "b.jsonl",
        "c.parquet",
        "sub/d.csv",
        "sub/empty.csv",
    ]
    targets = output_paths(sources, tmp_path, "jsonl")
    assert targets[str(exports / "sub" / "d.csv")] == tmp_path / "sub" / "d.jsonl"
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.csv").write_text("answer\n", encoding="utf-8")
    (tmp_path / "x" / "a.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="would both be written"):
        output_paths(find_sources(tmp_path / "x"), tmp_path / "out", "parquet")
    with pytest.raises(InputError, match="no such file"):
        find_sources(tmp_path / "nothing-here")
