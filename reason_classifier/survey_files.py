"""Reading and writing survey exports (CSV, TSV, JSONL, Parquet, Excel) in bounded chunks.

The promise to the user: every row comes out, in order, with every original value as it was.
So CSV cells stay strings ("007" stays "007", "NA" stays "NA"), Parquet keeps its Arrow types,
JSON keeps its values and which keys a row had, and a row that is malformed as read (a CSV line
with too few fields, a JSONL line that is not JSON) is still a row, carried with a `problem`
that ends up in the output's `error` column. Outputs are written under a temporary name and
renamed at the end, so an interrupted run never leaves a half-written file under the final name.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import decimal
import errno
import json
import math
import os
import re
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import pandas as pd

from .answers import MISSING
from .atomic import remove_stale_temporaries, temporary_beside
from .config import DEFAULT_CHUNK_ROWS
from .errors import InputError, OutputError


class SurveyFormat(str, Enum):  # noqa: UP042 - StrEnum changes str() and f-strings of members (behaviour kept)
    CSV = "csv"
    TSV = "tsv"
    JSONL = "jsonl"
    PARQUET = "parquet"
    EXCEL = "excel"


_EXTENSIONS = {
    ".csv": SurveyFormat.CSV,
    ".tsv": SurveyFormat.TSV,
    ".tab": SurveyFormat.TSV,
    ".jsonl": SurveyFormat.JSONL,
    ".ndjson": SurveyFormat.JSONL,
    ".parquet": SurveyFormat.PARQUET,
    ".pq": SurveyFormat.PARQUET,
    ".xlsx": SurveyFormat.EXCEL,
    ".xlsm": SurveyFormat.EXCEL,
}


def detect_format(path: str | Path, explicit: str | SurveyFormat | None = None) -> SurveyFormat:
    """The format named by `explicit`, else by the file's extension."""
    if explicit is not None:
        try:
            return SurveyFormat(explicit)
        except ValueError:
            raise InputError(
                f"unknown format {explicit!r}; use one of {', '.join(f.value for f in SurveyFormat)}"
            ) from None
    suffix = Path(path).suffix.lower()
    if suffix == ".xls":
        raise InputError(f"{path}: old .xls workbooks are not supported; save it as .xlsx or CSV")
    try:
        return _EXTENSIONS[suffix]
    except KeyError:
        known = ", ".join(sorted(_EXTENSIONS))
        raise InputError(
            f"{path}: cannot tell the format from the extension {suffix or '(none)'!r}; use {known} or --format"
        ) from None


@dataclass
class Chunk:
    """A slice of the export: the rows as read, and what was wrong with any of them (position → message)."""

    table: pd.DataFrame
    first_row: int
    problems: dict[int, str] = field(default_factory=dict)


class SurveyReader(ABC):
    """Opens an export, knows its columns, and yields it in chunks of at most `chunk_rows` rows."""

    def __init__(self, path: str | Path, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self.path = Path(path)
        self.chunk_rows = chunk_rows
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such file")
        self.total_rows: int | None = None

    @property
    @abstractmethod
    def columns(self) -> list[str]: ...

    @abstractmethod
    def chunks(self) -> Iterator[Chunk]: ...

    def close(self) -> None:  # noqa: B027 - a default that does nothing; readers that hold a file override it
        """Release the file early; reading all chunks closes it too."""

    def __enter__(self) -> SurveyReader:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()

    def require_column(self, column: str) -> None:
        if column not in self.columns:
            raise InputError(
                f"{self.path}: no column {column!r}; the columns are: {', '.join(map(repr, self.columns)) or '(none)'}"
            )


MAX_LINE_BYTES = 16 * 1024 * 1024
"""A physical line longer than this is not held in memory: its row is kept, flagged, without its text."""
MAX_HEADER_CHARS = 1024 * 1024
"""A header line longer than this is not a survey's header (and would make delimiter sniffing crawl)."""


class _Line(NamedTuple):
    number: int
    text: str
    skipped_bytes: int = 0
    """Set for a line longer than MAX_LINE_BYTES: its size; `text` is then an empty line."""


class _RecordLines:
    """Feeds csv.reader one line at a time and keeps the lines of the record being read, so that a record whose
    quoting is broken can be set aside by its first line and the lines after it read again."""

    def __init__(self, lines: Iterator[_Line]) -> None:
        self._lines = lines
        self._again: deque[_Line] = deque()
        self.record: list[_Line] = []

    def __iter__(self) -> _RecordLines:
        return self

    def __next__(self) -> str:
        line = self._again.popleft() if self._again else next(self._lines)
        self.record.append(line)
        return line.text

    def take(self) -> list[_Line]:
        record, self.record = self.record, []
        return record

    def read_again(self, lines: list[_Line]) -> None:
        self._again.extendleft(reversed(lines))


class DelimitedReader(SurveyReader):
    """CSV and TSV; quoted fields may hold commas, quotes and line breaks. Every cell is kept as a string.

    Quoting is read strictly: a quote that is never closed (or is followed by text) would otherwise swallow
    the lines after it into one field. Such a record is cut back to its first line, which becomes a flagged
    row of its own, and reading resumes on the next line, so no line is lost or merged."""

    def __init__(
        self,
        path: str | Path,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        encoding: str = "utf-8-sig",
        delimiter: str | None = None,
    ) -> None:
        super().__init__(path, chunk_rows)
        self.encoding = encoding
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise InputError(f"unknown encoding {encoding!r}") from None
        self._file: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - the reader owns it; close() closes it
        utf8 = codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
        self.has_bom = utf8 and self._file.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
        self._file.seek(0)
        self._lines = _numbered_lines(self._file, encoding, self.path)
        first = next(self._lines, None)
        if first is None:
            self._file.close()
            raise InputError(f"{self.path}: the file is empty (no header row)")
        if first.skipped_bytes or len(first.text) > MAX_HEADER_CHARS:
            self._file.close()
            size = f"{first.skipped_bytes:,} bytes" if first.skipped_bytes else f"{len(first.text):,} characters"
            raise InputError(
                f"{self.path}, line 1: the header line is {size} long; a header is at most "
                f"{MAX_HEADER_CHARS:,} characters (is this a CSV export?)"
            )
        self.delimiter = delimiter or _sniff_delimiter(first.text)
        self._feed = _RecordLines(_chain_first(first, self._lines))
        header = next(self._records(), None)
        if header is None or header[2] is not None:
            self._file.close()
            raise InputError(f"{self.path}, line 1: cannot read the header: {header[2] if header else 'no fields'}")
        self._header = header[0]

    @property
    def columns(self) -> list[str]:
        return self._header

    def close(self) -> None:
        self._file.close()

    def _records(self) -> Iterator[tuple[list[str], list[_Line], str | None]]:
        """(fields, the lines they came from, what was wrong with them or None), one per record."""
        while True:
            reader = csv.reader(self._feed, delimiter=self.delimiter, strict=True)
            try:
                for fields in reader:
                    yield fields, self._feed.take(), None
                return
            except csv.Error as error:
                lines = self._feed.take()
                self._feed.read_again(lines[1:])
                first = lines[0]
                loose = next(csv.reader([first.text], delimiter=self.delimiter, quoting=csv.QUOTE_NONE), [])
                yield loose, [first], _broken_quoting(first.number, len(lines), error)

    def chunks(self) -> Iterator[Chunk]:
        width, row_number = len(self._header), 0
        rows: list[list[str]] = []
        problems: dict[int, str] = {}
        try:
            for fields, lines, problem in self._records():
                row_number += 1
                overlong = [line for line in lines if line.skipped_bytes]
                if overlong:
                    problem = (
                        f"row {row_number} (line {overlong[0].number}) is {overlong[0].skipped_bytes:,} bytes long, "
                        f"over the {MAX_LINE_BYTES:,}-byte limit for a line; its text was not read"
                    )
                elif problem is not None:
                    problem = f"row {row_number} ({problem})"
                if problem is None and len(fields) != width:
                    problem = _ragged(fields, width, row_number, lines[0].number)
                if problem is not None:
                    problems[len(rows)] = problem
                    fields = (fields + [""] * width)[:width]
                rows.append(fields)
                if len(rows) == self.chunk_rows:
                    yield Chunk(
                        pd.DataFrame(rows, columns=self._header, dtype=object), row_number - len(rows) + 1, problems
                    )
                    rows, problems = [], {}
            if rows or row_number == 0:
                yield Chunk(
                    pd.DataFrame(rows, columns=self._header, dtype=object), row_number - len(rows) + 1, problems
                )
        finally:
            self._file.close()


def _broken_quoting(line: int, lines_read: int, error: csv.Error) -> str:
    if "field larger than field limit" in str(error):
        what = f"a field starting on this line is longer than {csv.field_size_limit():,} characters"
    elif lines_read > 1:
        what = "a quote opened on this line is not closed where the field ends"
    else:
        what = f"its quoting is broken ({error})"
    return (
        f"line {line}: {what}; the line is kept as a row of its own, unclassified, and the lines after it are "
        "read as rows again. Check the quotes on this line"
    )


def _ragged(fields: list[str], width: int, row_number: int, line: int) -> str:
    if not fields:
        return f"row {row_number} (line {line}) is a blank line"
    message = f"row {row_number} (line {line}) has {len(fields)} fields, the header has {width}"
    if len(fields) > width:
        message += f"; extra fields: {fields[width:]!r}"
    return message


def _sniff_delimiter(header_line: str) -> str:
    try:
        return csv.Sniffer().sniff(header_line, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _chain_first(first: _Line, rest: Iterator[_Line]) -> Iterator[_Line]:
    yield first
    yield from rest


def _numbered_lines(binary: BinaryIO, encoding: str, path: Path, max_bytes: int = MAX_LINE_BYTES) -> Iterator[_Line]:
    """Numbered text lines split on "\\n" only (as csv wants), decoding incrementally so a bad byte is reported with
    its line; a line over `max_bytes` is skipped over rather than read, and stands as an empty line."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    pending, number = "", 0
    while raw := binary.readline(max_bytes + 1):
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            size = len(raw)
            while raw and not raw.endswith(b"\n"):
                raw = binary.readline(1 << 20)
                size += len(raw)
            decoder.reset()
            pending = ""
            number += 1
            yield _Line(number, "\n", skipped_bytes=size)
            continue
        try:
            pending += decoder.decode(raw)
        except UnicodeDecodeError as error:
            raise InputError(
                f"{path}, line {number + 1}: bytes {raw[error.start : error.end]!r} are not valid {encoding}; "
                "pass the file's encoding with --encoding (for example cp1252, latin-1 or utf-16)"
            ) from None
        *complete, pending = pending.split("\n")
        for line in complete:
            number += 1
            yield _Line(number, line + "\n")
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise InputError(f"{path}: the file ends in the middle of a {encoding} character") from None
    if pending:
        yield _Line(number + 1, pending)


def _decoded_lines(binary: BinaryIO, encoding: str, path: Path) -> Iterator[str]:
    for line in _numbered_lines(binary, encoding, path):
        yield line.text


class JsonLinesReader(SurveyReader):
    """One JSON object per line; keys may differ between rows, and a row without a key stays without it."""

    def __init__(self, path: str | Path, chunk_rows: int = DEFAULT_CHUNK_ROWS, encoding: str = "utf-8-sig") -> None:
        super().__init__(path, chunk_rows)
        self.encoding = encoding
        self._columns: list[str] = self._first_object_keys()

    @property
    def columns(self) -> list[str]:
        """The keys of the first object, then of every object read so far."""
        return self._columns

    def require_column(self, column: str) -> None:
        """Only checked on whole chunks (see `tag_file`): a first row may lack a key that later rows have."""

    def _first_object_keys(self) -> list[str]:
        with open(self.path, "rb") as file:
            for line in _decoded_lines(file, self.encoding, self.path):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    return list(record)
        return []

    def chunks(self) -> Iterator[Chunk]:
        records: list[dict[str, Any]] = []
        problems: dict[int, str] = {}
        row_number = 0
        with open(self.path, "rb") as file:
            for line_number, line, skipped_bytes in _numbered_lines(file, self.encoding, self.path):
                if not line.strip() and not skipped_bytes:
                    continue
                row_number += 1
                record, problem = _json_record(line_number, line, skipped_bytes)
                if problem is not None:
                    problems[len(records)] = problem
                records.append(record)
                if len(records) == self.chunk_rows:
                    yield self._chunk(records, row_number - len(records) + 1, problems)
                    records, problems = [], {}
        if records or row_number == 0:
            yield self._chunk(records, row_number - len(records) + 1, problems)

    def _chunk(self, records: list[dict[str, Any]], first_row: int, problems: dict[int, str]) -> Chunk:
        for record in records:
            for key in record:
                if key not in self._columns:
                    self._columns.append(key)
        table = pd.DataFrame({key: [r.get(key, MISSING) for r in records] for key in self._columns}, dtype=object)
        table.index = pd.RangeIndex(len(records))
        return Chunk(table, first_row, problems)


def _json_record(line_number: int, line: str, skipped_bytes: int) -> tuple[dict[str, Any], str | None]:
    """The object on a JSONL line, or {} and what is wrong with the line."""
    if skipped_bytes:
        return {}, (
            f"line {line_number} is {skipped_bytes:,} bytes long, over the {MAX_LINE_BYTES:,}-byte limit for a line; "
            "its text was not read"
        )
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return {}, f"line {line_number} is not valid JSON ({error.msg}): {line.rstrip()!r}"
    if not isinstance(record, dict):
        return {}, f"line {line_number} is a JSON {type(record).__name__}, not an object: {line.rstrip()!r}"
    return record, None


class ParquetReader(SurveyReader):
    """Arrow record batches, kept in Arrow-backed pandas types so nothing is coerced on the way through."""

    def __init__(self, path: str | Path, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        super().__init__(path, chunk_rows)
        import pyarrow.parquet as pq

        try:
            self._file = pq.ParquetFile(self.path)
        except Exception as error:
            raise InputError(f"{self.path}: not a readable Parquet file: {error}") from None
        self.total_rows = self._file.metadata.num_rows

    @property
    def columns(self) -> list[str]:
        return list(self._file.schema_arrow.names)

    def chunks(self) -> Iterator[Chunk]:
        first_row = 1
        for batch in self._file.iter_batches(batch_size=self.chunk_rows):
            yield Chunk(batch.to_pandas(types_mapper=pd.ArrowDtype), first_row)
            first_row += batch.num_rows
        if first_row == 1:
            yield Chunk(self._file.schema_arrow.empty_table().to_pandas(types_mapper=pd.ArrowDtype), 1)


EXCEL_CELL_CHARS = 32_767
"""The most characters an Excel cell holds; longer text is not read from an .xlsx, and is cut when writing one (either
way its row is flagged)."""
MAX_XLSX_PART_BYTES = 1024 * 1024 * 1024
"""The largest uncompressed part (sheet, shared strings) of an .xlsx read; openpyxl holds the shared strings whole."""
MAX_XLSX_SHARED_STRINGS_BYTES = 256 * 1024 * 1024
MAX_XLSX_RATIO = 100
"""A part over 32 MiB unpacked that compresses more than this is a zip bomb, not a survey (text packs 3-10x)."""
_RATIO_CHECKED_FROM = 32 * 1024 * 1024


class ExcelReader(SurveyReader):
    """The first (or a named) sheet of an .xlsx workbook, streamed; the first row is the header.

    Cells keep their computed values; a formula cell the workbook holds no computed value for (saved by
    a program that does not calculate) keeps its formula text rather than reading as empty. A cell over
    Excel's 32,767 characters is not read and flags its row. The unpacked sizes are checked before
    anything is unpacked, so a small file cannot make the reader take gigabytes of memory."""

    def __init__(self, path: str | Path, chunk_rows: int = DEFAULT_CHUNK_ROWS, sheet: str | None = None) -> None:
        super().__init__(path, chunk_rows)
        import openpyxl

        _check_unpacked_sizes(self.path)
        try:
            self._book = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
            self._formulas = openpyxl.load_workbook(self.path, read_only=True, data_only=False)
        except Exception as error:
            raise InputError(f"{self.path}: not a readable .xlsx workbook: {error}") from None
        if sheet is not None and sheet not in self._book.sheetnames:
            self.close()
            raise InputError(f"{self.path}: no sheet {sheet!r}; the sheets are: {', '.join(self._book.sheetnames)}")
        self._sheet = self._book[sheet] if sheet else self._book.worksheets[0]
        self.sheet_title: str = self._sheet.title
        self._rows = zip(
            self._sheet.iter_rows(values_only=True),
            self._formulas[self.sheet_title].iter_rows(values_only=True),
            strict=False,
        )
        first = next(self._rows, None)
        if first is None:
            self.close()
            raise InputError(f"{self.path}: the sheet {self.sheet_title!r} is empty (no header row)")
        header, _ = _cell_values(first)
        self._header = [str(name) if name is not None else f"column_{i + 1}" for i, name in enumerate(header)]
        if self._sheet.max_row:
            self.total_rows = max(self._sheet.max_row - 1, 0)

    @property
    def columns(self) -> list[str]:
        return self._header

    def close(self) -> None:
        self._book.close()
        self._formulas.close()

    def chunks(self) -> Iterator[Chunk]:
        width, row_number = len(self._header), 0
        rows: list[list[Any]] = []
        problems: dict[int, str] = {}
        try:
            for pair in self._rows:
                row_number += 1
                values, oversized = _cell_values(pair)
                if oversized:
                    problems[len(rows)] = f"row {row_number} (sheet row {row_number + 1}): " + "; ".join(
                        f"column {self._column_name(i)!r} holds {size:,} characters, over the {EXCEL_CELL_CHARS:,} "
                        "an Excel cell can hold; it was not read"
                        for i, size in oversized
                    )
                rows.append((values + [None] * width)[:width])
                if len(rows) == self.chunk_rows:
                    yield Chunk(
                        pd.DataFrame(rows, columns=self._header, dtype=object), row_number - len(rows) + 1, problems
                    )
                    rows, problems = [], {}
            if rows or row_number == 0:
                yield Chunk(
                    pd.DataFrame(rows, columns=self._header, dtype=object), row_number - len(rows) + 1, problems
                )
        finally:
            self.close()

    def _column_name(self, index: int) -> str:
        return self._header[index] if index < len(self._header) else f"column_{index + 1}"


def _cell_values(pair: tuple[tuple[Any, ...], tuple[Any, ...]]) -> tuple[list[Any], list[tuple[int, int]]]:
    """A row's values, with formula text where no computed value was stored; and the (column, size) of cells too
    large to read, which are left empty."""
    values, formulas = pair
    row, oversized = [], []
    for i, value in enumerate(values):
        if value is None and i < len(formulas) and isinstance(formulas[i], str):
            value = formulas[i]
        if isinstance(value, str) and len(value) > EXCEL_CELL_CHARS:
            oversized.append((i, len(value)))
            value = None
        row.append(value)
    return row, oversized


def _check_unpacked_sizes(path: Path) -> None:
    """Refuse a workbook whose parts would unpack to more than the reader should hold, before unpacking any."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(f"{path}: not a readable .xlsx workbook: {error}") from None
    for part in parts:
        shared = part.filename.lower().endswith("sharedstrings.xml")
        limit = MAX_XLSX_SHARED_STRINGS_BYTES if shared else MAX_XLSX_PART_BYTES
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > limit or (part.file_size > _RATIO_CHECKED_FROM and ratio > MAX_XLSX_RATIO):
            raise InputError(
                f"{path}: the workbook's part {part.filename} unpacks to {part.file_size:,} bytes "
                f"({ratio:,.0f} times its packed size); the limit is {limit:,} bytes and {MAX_XLSX_RATIO}x. "
                "Save the sheet as CSV to tag it"
            )


def open_reader(
    path: str | Path,
    fmt: SurveyFormat,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    encoding: str = "utf-8-sig",
    sheet: str | None = None,
) -> SurveyReader:
    if fmt in (SurveyFormat.CSV, SurveyFormat.TSV):
        return DelimitedReader(path, chunk_rows, encoding, "\t" if fmt is SurveyFormat.TSV else None)
    if fmt is SurveyFormat.JSONL:
        return JsonLinesReader(path, chunk_rows, encoding)
    if fmt is SurveyFormat.PARQUET:
        return ParquetReader(path, chunk_rows)
    return ExcelReader(path, chunk_rows, sheet)


class SurveyWriter(ABC):
    """Writes chunks to a temporary file beside `path`; `commit` renames it into place, `abort` removes it.

    Leftover temporary files of killed runs beside `path` are removed first (see `atomic`). A file
    system error (folder not writable, disk full) becomes an `OutputError` naming the path, after the
    temporary file is removed.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.temporary: Path | None = None
        try:
            remove_stale_temporaries(self.path)
            self.temporary = temporary_beside(self.path)
            self._open()
        except OSError as error:
            self._discard()
            raise _output_error(self.path, error) from None

    def _open(self) -> None:  # noqa: B027 - writers that open their file up front override it
        """Open the temporary file for writing."""

    def prepare(self, table: pd.DataFrame) -> dict[int, str]:
        """Make every cell of `table` storable in this format, in place; what had to change, by row position.

        Text that UTF-8 cannot encode (a lone surrogate from a JSON escape) is stored with U+FFFD in its place."""
        return _fix_cells(table, _unencodable)

    def write(self, table: pd.DataFrame) -> None:
        try:
            self._write(table)
        except OSError as error:
            self.abort()
            raise _output_error(self.path, error) from None

    @abstractmethod
    def _write(self, table: pd.DataFrame) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    def commit(self) -> Path:
        try:
            self._close()
            assert self.temporary is not None
            os.replace(self.temporary, self.path)
        except OSError as error:
            self.abort()
            raise _output_error(self.path, error) from None
        return self.path

    def abort(self) -> None:
        try:
            self._close()
        except OSError:
            pass  # the file is being thrown away; what matters is that it goes
        finally:
            self._discard()

    def _discard(self) -> None:
        if self.temporary is not None:
            self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> SurveyWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def _output_error(path: Path, error: OSError) -> OutputError:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = "the disk is full (or the quota is used up)"
    elif error.errno == errno.EFBIG:
        reason = "the file would be larger than this system allows"
    elif isinstance(error, PermissionError):
        reason = f"no permission to write in {path.parent}"
    else:
        reason = error.strerror or str(error)
    return OutputError(f"{path}: cannot write the output: {reason}; nothing was written under this name")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A CSV cell starting with one of these is read as a formula by spreadsheets (OWASP, "CSV injection")."""
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def escape_formula(text: str) -> str:
    """OWASP's defence for CSV opened in a spreadsheet: a leading `'` makes a would-be formula plain text.
    Plain numbers such as -5 are left as they are: a spreadsheet reads them as numbers, not formulas."""
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


class DelimitedWriter(SurveyWriter):
    """CSV/TSV in UTF-8, with a byte-order mark when `bom` (what Excel needs to read UTF-8 on double-click)."""

    def __init__(
        self, path: str | Path, delimiter: str = ",", *, bom: bool = False, escape_formulas: bool = False
    ) -> None:
        self.delimiter, self.bom, self.escape_formulas = delimiter, bom, escape_formulas
        self._header_written = False
        super().__init__(path)

    def _open(self) -> None:
        assert self.temporary is not None
        self._file = open(self.temporary, "w", encoding="utf-8-sig" if self.bom else "utf-8", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._file, delimiter=self.delimiter)

    def _write(self, table: pd.DataFrame) -> None:
        if not self._header_written:
            self._writer.writerow(table.columns)
            self._header_written = True
        cell = (lambda v: escape_formula(_as_cell_text(v))) if self.escape_formulas else _as_cell_text
        self._writer.writerows([[cell(v) for v in row] for row in table.itertuples(index=False, name=None)])

    def _close(self) -> None:
        if hasattr(self, "_file") and not self._file.closed:
            self._file.close()


class JsonLinesWriter(SurveyWriter):
    def _open(self) -> None:
        assert self.temporary is not None
        self._file = open(self.temporary, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - the writer owns it

    def _write(self, table: pd.DataFrame) -> None:
        columns = list(table.columns)
        for row in table.itertuples(index=False, name=None):
            record = {k: _as_json_value(v) for k, v in zip(columns, row, strict=True) if v is not MISSING}
            self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")

    def _close(self) -> None:
        if hasattr(self, "_file") and not self._file.closed:
            self._file.close()


class ParquetWriter(SurveyWriter):
    """One typed column per field. A column whose values mix kinds (numbers and text, from JSONL) is written as text,
    flagging the rows that held the odd kind; a column that changes type between chunks stops the run."""

    def __init__(self, path: str | Path) -> None:
        self._writer: Any = None  # a pyarrow.parquet.ParquetWriter once the first chunk gives the schema
        super().__init__(path)

    def prepare(self, table: pd.DataFrame) -> dict[int, str]:
        problems = super().prepare(table)
        for position, problem in _mixed_columns_as_text(table).items():
            problems[position] = f"{problems[position]}; {problem}" if position in problems else problem
        return problems

    def _write(self, table: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            arrow = pa.Table.from_pandas(
                table.map(_as_json_value) if _has_object_columns(table) else table, preserve_index=False
            )
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.temporary, arrow.schema)
            arrow = arrow.cast(self._writer.schema)
        except pa.ArrowException as error:
            raise InputError(
                f"{self.path}: the rows cannot be written as Parquet ({error}); a column probably holds numbers in "
                "earlier rows and text in later ones. Write CSV or JSONL instead"
            ) from None
        self._writer.write_table(arrow)

    def _close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()


_EXCEL_ILLEGAL = re.compile(r"[\000-\010\013\014\016-\037]")
_EXCEL_TYPED = (bool, int, float, decimal.Decimal, datetime.date, datetime.time, datetime.timedelta)
"""Values a spreadsheet cell holds as they are; anything else (a nested JSON value) is written as its text."""


class ExcelWriter(SurveyWriter):
    """One sheet (named like the input's, else "tagged"). Text is always stored as text: an answer such as
    `=HYPERLINK(...)` or `#N/A` is shown as typed, never run as a formula or read as an error value."""

    def __init__(self, path: str | Path, sheet_title: str | None = None) -> None:
        import openpyxl

        self._book = openpyxl.Workbook(write_only=True)
        self._sheet = self._book.create_sheet(_sheet_title(sheet_title))
        self._header_written = False
        self._saved = False
        super().__init__(path)

    def prepare(self, table: pd.DataFrame) -> dict[int, str]:
        problems = super().prepare(table)
        for position, problem in _fix_cells(table, _not_storable_in_excel).items():
            problems[position] = f"{problems[position]}; {problem}" if position in problems else problem
        return problems

    def _write(self, table: pd.DataFrame) -> None:
        if not self._header_written:
            self._sheet.append([self._text_cell(str(name)) for name in table.columns])
            self._header_written = True
        for row in table.itertuples(index=False, name=None):
            self._sheet.append([self._excel_value(v) for v in row])

    def _excel_value(self, value: Any) -> Any:
        value = _as_json_value(value)
        if value is None or isinstance(value, _EXCEL_TYPED):
            return value
        return self._text_cell(value if isinstance(value, str) else _as_cell_text(value))

    def _text_cell(self, text: str) -> Any:
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(self._sheet, value=text)
        cell.data_type = "s"  # openpyxl would make "=..." a formula and "#N/A" an error value
        return cell

    def _close(self) -> None:
        if not self._saved:
            self._saved = True
            self._book.save(self.temporary)


def _sheet_title(title: str | None) -> str:
    """`title` made a valid sheet name (at most 31 characters, none of []:*?/\\), or "tagged"."""
    cleaned = re.sub(r"[\[\]:*?/\\]", "_", title or "").strip("'")[:31]
    return cleaned or "tagged"


def _fix_cells(table: pd.DataFrame, fix: Callable[[str], tuple[str, str] | None]) -> dict[int, str]:
    """Apply `fix` to every text cell; where it returns (new text, what was done), store the new text and report
    it by row position and column name."""
    problems: dict[int, list[str]] = {}
    for column_number, column in enumerate(table.columns):
        values = table.iloc[:, column_number]
        if values.dtype != object and not isinstance(values.dtype, pd.StringDtype):
            continue
        for position, value in enumerate(values.tolist()):
            if not isinstance(value, str):
                continue
            fixed = fix(value)
            if fixed is not None:
                table.iat[position, column_number] = fixed[0]
                problems.setdefault(position, []).append(f"column {column!r}: {fixed[1]}")
    return {position: "; ".join(found) for position, found in problems.items()}


_SURROGATE = re.compile("[\ud800-\udfff]")


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (bool, np.bool_)):
        return "true/false"
    if isinstance(value, (int, float, np.number)):
        return "number"
    if isinstance(value, (dict, list)):
        return "JSON object or list"
    return type(value).__name__


def _mixed_columns_as_text(table: pd.DataFrame) -> dict[int, str]:
    """Object columns whose values are of several kinds, written as text; the rows of the rarer kinds flagged."""
    problems: dict[int, list[str]] = {}
    for column_number, column in enumerate(table.columns):
        values = table.iloc[:, column_number]
        if values.dtype != object:
            continue
        kinds = [None if _is_missing(v) else _kind(v) for v in values.tolist()]
        counts = Counter(kind for kind in kinds if kind is not None)
        if len(counts) < 2:
            continue
        usual = counts.most_common(1)[0][0]
        for position, (value, kind) in enumerate(zip(values.tolist(), kinds, strict=True)):
            if kind is None:
                continue
            table.iat[position, column_number] = _as_cell_text(value)
            if kind != usual:
                problems.setdefault(position, []).append(
                    f"column {column!r} holds {kind} here and {usual} in most rows, which one Parquet column cannot "
                    "hold; the column is written as text"
                )
    return {position: "; ".join(found) for position, found in problems.items()}


def _unencodable(text: str) -> tuple[str, str] | None:
    if not _SURROGATE.search(text):
        return None
    return _SURROGATE.sub("\ufffd", text), "text that is not valid Unicode (a lone surrogate) was written as U+FFFD"


def _not_storable_in_excel(text: str) -> tuple[str, str] | None:
    done = []
    if _EXCEL_ILLEGAL.search(text):
        text = _EXCEL_ILLEGAL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
        done.append("control characters .xlsx cannot hold were written as \\xNN escapes")
    if len(text) > EXCEL_CELL_CHARS:
        done.append(f"{len(text):,} characters cut to Excel's limit of {EXCEL_CELL_CHARS:,}")
        text = text[:EXCEL_CELL_CHARS]
    return (text, "; ".join(done)) if done else None


def open_writer(
    path: str | Path,
    fmt: SurveyFormat,
    delimiter: str | None = None,
    *,
    bom: bool = False,
    escape_formulas: bool = False,
    sheet_title: str | None = None,
) -> SurveyWriter:
    """A writer for `fmt`. `bom` and `escape_formulas` apply to CSV/TSV, `sheet_title` to Excel."""
    if fmt in (SurveyFormat.CSV, SurveyFormat.TSV):
        return DelimitedWriter(
            path,
            delimiter or ("\t" if fmt is SurveyFormat.TSV else ","),
            bom=bom,
            escape_formulas=escape_formulas,
        )
    if fmt is SurveyFormat.JSONL:
        return JsonLinesWriter(path)
    if fmt is SurveyFormat.PARQUET:
        return ParquetWriter(path)
    return ExcelWriter(path, sheet_title)


def _is_missing(value: Any) -> bool:
    return value is None or value is MISSING or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _as_cell_text(value: Any) -> str:
    """A value as the text of a CSV or spreadsheet cell; nested JSON values as JSON."""
    if _is_missing(value):
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _as_json_value(value: Any) -> Any:
    """Plain Python values for JSON, Excel and Arrow: numpy scalars unwrapped, every kind of missing as None."""
    if _is_missing(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def _has_object_columns(table: pd.DataFrame) -> bool:
    return any(dtype == object for dtype in table.dtypes)  # noqa: E721 - numpy's dtype == object, not a type test
