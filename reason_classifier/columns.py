"""Which column of an export holds the answers, when nobody said: one guess for tagging, discovery and trends."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .errors import InputError
from .survey_files import SurveyFormat, detect_format, open_reader

LIKELY_TEXT_COLUMNS = (
    "answer",
    "response",
    "reason",
    "cancellation_reason",
    "feedback",
    "comment",
    "comments",
    "text",
    "why",
)
"""Column names (any case) taken as the answer text of an export when none is named, in this order."""


def guess_column(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    """The first of `candidates` among `columns`, compared trimmed and in lower case, as the export spells it; None
    when there is none. Candidates are tried in their order, so the most telling name wins whatever the column order."""
    by_name = {column.strip().lower(): column for column in columns}
    return next((by_name[name] for name in candidates if name in by_name), None)


def guess_text_column(columns: Sequence[str], where: object) -> str:
    """The answer column among `columns` by its name (LIKELY_TEXT_COLUMNS); `InputError` naming `where` (the
    export) and listing the columns when no name fits."""
    column = guess_column(columns, LIKELY_TEXT_COLUMNS)
    if column is None:
        raise InputError(
            f"{where}: which column holds the answers? Pass --text-column; the columns are: "
            f"{', '.join(map(repr, columns))}"
        )
    return column


def guess_export_text_column(
    path: str | Path,
    input_format: str | SurveyFormat | None = None,
    encoding: str = "utf-8-sig",
    sheet: str | None = None,
) -> str:
    """The answer column of the export at `path`, from its header alone (`guess_text_column`); reading errors are
    the export's (`InputError`)."""
    with open_reader(path, detect_format(path, input_format), 1, encoding, sheet) as reader:
        return guess_text_column(reader.columns, path)
