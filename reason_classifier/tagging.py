"""Tagging survey exports: the main job, as a pure table function and a streaming file pipeline.

`tag_table` is the unit of work: a table in, the same table plus the tag columns out, with no
state of its own. `tag_chunk` adds what a file reader found wrong with a row; the file pipeline
here and the Ray engine (`ray_tagging`) both call it, so a row comes out the same on one machine
or many.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .atomic import terminate_cleanly
from .classifier import ReasonClassifier
from .errors import InputError
from .progress import ProgressCallback, ProgressEvent
from .survey_files import (
    DEFAULT_CHUNK_ROWS,
    Chunk,
    SurveyFormat,
    SurveyReader,
    SurveyWriter,
    detect_format,
    open_reader,
    open_writer,
)
from .taxonomy import ABSTAIN_CATEGORY, CATEGORIES

TAG_COLUMNS: tuple[str, ...] = ("category", "sub_reason", "confidence", "abstained", "language", "error")
"""`abstained` is true where the model was too unsure and answered `other`; false for rows with an `error`."""


def tag_table(table: pd.DataFrame, classifier: ReasonClassifier, text_column: str) -> pd.DataFrame:
    """`table` with TAG_COLUMNS appended; rows, their order and the original columns are untouched."""
    if text_column not in table.columns:
        raise InputError(f"no column {text_column!r}; the columns are: {', '.join(map(repr, table.columns))}")
    clash = [c for c in TAG_COLUMNS if c in table.columns]
    if clash:
        raise InputError(
            f"the input already has column(s) {', '.join(clash)}, which tagging adds; rename them first "
            "(is this file already tagged?)"
        )
    values = [None if v is pd.NA else v for v in table[text_column].tolist()]
    predictions = classifier.predict(values)
    tags = pd.DataFrame(
        {
            "category": pd.array([p.category for p in predictions], dtype="string"),
            "sub_reason": pd.array([p.sub_reason for p in predictions], dtype="string"),
            "confidence": pd.array([p.confidence for p in predictions], dtype="Float64"),
            "abstained": pd.array([p.abstained for p in predictions], dtype="boolean"),
            "language": pd.array([p.language for p in predictions], dtype="string"),
            "error": pd.array([p.error for p in predictions], dtype="string"),
        },
        index=table.index,
    )
    return pd.concat([table, tags], axis=1)


@dataclass
class TagSummary:
    """What a tagging run did, for the summary table and for scripts."""

    rows: int = 0
    categories: Counter = field(default_factory=Counter)
    errors: int = 0
    abstained: int = 0
    seconds: float = 0.0
    output: Path | None = None

    def share(self, category: str) -> float:
        return self.categories[category] / self.rows if self.rows else 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def add(self, tagged: pd.DataFrame) -> None:
        self.rows += len(tagged)
        self.categories.update(tagged["category"].tolist())
        self.errors += int(tagged["error"].notna().sum())
        self.abstained += int(tagged["abstained"].sum())

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "categories": {c: self.categories[c] for c in CATEGORIES},
            "errors": self.errors,
            "abstained": self.abstained,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "output": str(self.output) if self.output else None,
        }


def tag_file(
    input_path: str | Path,
    output_path: str | Path,
    classifier: ReasonClassifier,
    text_column: str,
    *,
    input_format: str | SurveyFormat | None = None,
    output_format: str | SurveyFormat | None = None,
    encoding: str = "utf-8-sig",
    sheet: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: ProgressCallback | None = None,
    bom: bool | None = None,
    escape_formulas: bool = False,
) -> TagSummary:
    """Tag a whole export chunk by chunk into `output_path`, which appears only once it is complete.

    Memory is bounded by `chunk_rows`, not by the size of the file. `on_progress` hears of the rows done
    (of the total, when the format knows it) after each chunk. For CSV/TSV output, `bom` writes a UTF-8
    byte-order mark (None: when the input had one, or was an .xlsx, since such output is usually
    opened in Excel, which needs the mark to read UTF-8); `escape_formulas` prefixes cells that a
    spreadsheet would run as formulas with `'`. SIGTERM removes the unfinished output like an error.
    """
    started = time.perf_counter()
    source_format = detect_format(input_path, input_format)
    target_format = (
        detect_format(output_path, output_format) if output_format or Path(output_path).suffix else source_format
    )
    if Path(input_path).resolve() == Path(output_path).resolve():
        raise InputError(f"{output_path}: the output would overwrite the input; choose another output path")
    with open_reader(input_path, source_format, chunk_rows, encoding, sheet) as reader, terminate_cleanly():
        reader.require_column(text_column)
        same_delimiter = getattr(reader, "delimiter", None) if target_format is source_format else None
        if bom is None:
            bom = getattr(reader, "has_bom", False) or source_format is SurveyFormat.EXCEL
        summary = _tag_chunks(
            reader,
            open_writer(
                output_path,
                target_format,
                same_delimiter,
                bom=bom,
                escape_formulas=escape_formulas,
                sheet_title=getattr(reader, "sheet_title", None),
            ),
            classifier,
            text_column,
            on_progress,
        )
    summary.seconds = time.perf_counter() - started
    return summary


def _tag_chunks(
    reader: SurveyReader,
    writer: SurveyWriter,
    classifier: ReasonClassifier,
    text_column: str,
    on_progress: ProgressCallback | None,
) -> TagSummary:
    input_path = reader.path
    summary = TagSummary(output=writer.path)
    with writer:
        for chunk in reader.chunks():
            tagged = tag_chunk(chunk, classifier, text_column, input_path)
            write_tagged(writer, tagged)
            summary.add(tagged)
            if on_progress:
                on_progress(ProgressEvent(f"tagging {Path(input_path).name}", summary.rows, reader.total_rows))
    return summary


def tag_chunk(chunk: Chunk, classifier: ReasonClassifier, text_column: str, source: str | Path) -> pd.DataFrame:
    """One chunk of the export `source` tagged, with the rows its reader found malformed flagged as unclassified.

    Shared by `tag_file` and the Ray engine, so a row is judged the same on one machine or many.
    """
    if text_column not in chunk.table.columns:
        if len(chunk.table):
            raise InputError(
                f"{source}: no field {text_column!r} in rows "
                f"{chunk.first_row}-{chunk.first_row + len(chunk.table) - 1}; "
                f"the fields are: {', '.join(map(repr, chunk.table.columns))}"
            )
        chunk.table[text_column] = pd.Series(dtype=object)
    tagged = tag_table(chunk.table, classifier, text_column)
    for position, problem in chunk.problems.items():
        _mark_unclassified(tagged, position, problem)
    return tagged


def write_tagged(writer: SurveyWriter, tagged: pd.DataFrame) -> None:
    """Write a tagged chunk, first making its cells storable in the output format and noting in `error` what that
    changed (a cell .xlsx cannot hold flags its row instead of aborting the file)."""
    for position, problem in writer.prepare(tagged).items():
        _add_error(tagged, position, problem)
    writer.write(tagged)


def _mark_unclassified(tagged: pd.DataFrame, position: int, problem: str) -> None:
    row = tagged.index[position]
    tagged.loc[row, ["category", "sub_reason", "confidence", "abstained", "language", "error"]] = [
        ABSTAIN_CATEGORY,
        None,
        None,
        False,
        None,
        problem,
    ]


def _add_error(tagged: pd.DataFrame, position: int, problem: str) -> None:
    """Note what writing had to change in a row; its tags stand, since they were made from the text as read."""
    column = tagged.columns.get_loc("error")
    earlier = tagged.iat[position, column]
    tagged.iat[position, column] = problem if pd.isna(earlier) else f"{earlier}; {problem}"
