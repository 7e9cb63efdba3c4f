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
import json
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from .answers import MISSING
from .atomic import temporary_beside
from .config import DEFAULT_CHUNK_ROWS
from .errors import InputError


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


class DelimitedReader(SurveyReader):
    """CSV and TSV; quoted fields may hold commas, quotes and line breaks. Every cell is kept as a string."""

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
        self._lines = _decoded_lines(self._file, encoding, self.path)
        first = next(self._lines, None)
        if first is None:
            self._file.close()
            raise InputError(f"{self.path}: the file is empty (no header row)")
        self.delimiter = delimiter or _sniff_delimiter(first)
        self._reader = csv.reader(_chain_first(first, self._lines), delimiter=self.delimiter)
        self._header = next(self._reader)

    @property
    def columns(self) -> list[str]:
        return self._header

    def close(self) -> None:
        self._file.close()

    def chunks(self) -> Iterator[Chunk]:
        width, row_number = len(self._header), 0
        rows: list[list[str]] = []
        problems: dict[int, str] = {}
        try:
            for fields in self._reader:
                row_number += 1
                if len(fields) != width:
                    problems[len(rows)] = _ragged(fields, width, row_number, self._reader.line_num)
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
        except csv.Error as error:
            raise InputError(f"{self.path}, line {self._reader.line_num}: cannot parse CSV: {error}") from None
        finally:
            self._file.close()


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


def _chain_first(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _decoded_lines(binary: BinaryIO, encoding: str, path: Path) -> Iterator[str]:
    """Text lines split on "\\n" only (as csv wants), decoding incrementally so a bad byte is reported with its line."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    pending = ""
    for number, raw in enumerate(binary, 1):
        try:
            pending += decoder.decode(raw)
        except UnicodeDecodeError as error:
            raise InputError(
                f"{path}, line {number}: bytes {raw[error.start : error.end]!r} are not valid {encoding}; "
                "pass the file's encoding with --encoding (for example cp1252, latin-1 or utf-16)"
            ) from None
        *complete, pending = pending.split("\n")
        for line in complete:
            yield line + "\n"
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise InputError(f"{path}: the file ends in the middle of a {encoding} character") from None
    if pending:
        yield pending


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
            for line_number, line in enumerate(_decoded_lines(file, self.encoding, self.path), 1):
                if not line.strip():
                    continue
                row_number += 1
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    record, problems[len(records)] = (
                        {},
                        f"line {line_number} is not valid JSON ({error.msg}): {line.rstrip()!r}",
                    )
                if not isinstance(record, dict):
                    problems[len(records)] = (
                        f"line {line_number} is a JSON {type(record).__name__}, not an object: {line.rstrip()!r}"
                    )
                    record = {}
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


class ExcelReader(SurveyReader):
    """The first (or a named) sheet of an .xlsx workbook, streamed; the first row is the header."""

    def __init__(self, path: str | Path, chunk_rows: int = DEFAULT_CHUNK_ROWS, sheet: str | None = None) -> None:
        super().__init__(path, chunk_rows)
        import openpyxl

        try:
            self._book = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        except Exception as error:
            raise InputError(f"{self.path}: not a readable .xlsx workbook: {error}") from None
        if sheet is not None and sheet not in self._book.sheetnames:
            raise InputError(f"{self.path}: no sheet {sheet!r}; the sheets are: {', '.join(self._book.sheetnames)}")
        self._sheet = self._book[sheet] if sheet else self._book.worksheets[0]
        self._rows = self._sheet.iter_rows(values_only=True)
        header = next(self._rows, None)
        if header is None:
            raise InputError(f"{self.path}: the sheet {self._sheet.title!r} is empty (no header row)")
        self._header = [str(name) if name is not None else f"column_{i + 1}" for i, name in enumerate(header)]
        if self._sheet.max_row:
            self.total_rows = max(self._sheet.max_row - 1, 0)

    @property
    def columns(self) -> list[str]:
        return self._header

    def close(self) -> None:
        self._book.close()

    def chunks(self) -> Iterator[Chunk]:
        width, rows, row_number = len(self._header), [], 0
        try:
            for values in self._rows:
                row_number += 1
                rows.append((list(values) + [None] * width)[:width])
                if len(rows) == self.chunk_rows:
                    yield Chunk(pd.DataFrame(rows, columns=self._header, dtype=object), row_number - len(rows) + 1)
                    rows = []
            if rows or row_number == 0:
                yield Chunk(pd.DataFrame(rows, columns=self._header, dtype=object), row_number - len(rows) + 1)
        finally:
            self._book.close()


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
    """Writes chunks to a temporary file beside `path`; `commit` renames it into place, `abort` removes it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.temporary = temporary_beside(self.path)

    @abstractmethod
    def write(self, table: pd.DataFrame) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    def commit(self) -> Path:
        self._close()
        os.replace(self.temporary, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._close()
        finally:
            self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> SurveyWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


class DelimitedWriter(SurveyWriter):
    def __init__(self, path: str | Path, delimiter: str = ",") -> None:
        super().__init__(path)
        self._file = open(self.temporary, "w", encoding="utf-8", newline="")  # noqa: SIM115 - the writer owns it
        self._writer = csv.writer(self._file, delimiter=delimiter)
        self._header_written = False

    def write(self, table: pd.DataFrame) -> None:
        if not self._header_written:
            self._writer.writerow(table.columns)
            self._header_written = True
        self._writer.writerows([[_as_cell_text(v) for v in row] for row in table.itertuples(index=False, name=None)])

    def _close(self) -> None:
        if not self._file.closed:
            self._file.close()


class JsonLinesWriter(SurveyWriter):
    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._file = open(self.temporary, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - the writer owns it

    def write(self, table: pd.DataFrame) -> None:
        columns = list(table.columns)
        for row in table.itertuples(index=False, name=None):
            record = {k: _as_json_value(v) for k, v in zip(columns, row, strict=True) if v is not MISSING}
            self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")

    def _close(self) -> None:
        if not self._file.closed:
            self._file.close()


class ParquetWriter(SurveyWriter):
    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._writer: Any = None  # a pyarrow.parquet.ParquetWriter once the first chunk gives the schema

    def write(self, table: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(
            table.map(_as_json_value) if _has_object_columns(table) else table, preserve_index=False
        )
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.temporary, arrow.schema)
        self._writer.write_table(arrow.cast(self._writer.schema))

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ExcelWriter(SurveyWriter):
    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        import openpyxl

        self._book = openpyxl.Workbook(write_only=True)
        self._sheet = self._book.create_sheet("tagged")
        self._header_written = False
        self._saved = False

    def write(self, table: pd.DataFrame) -> None:
        if not self._header_written:
            self._sheet.append(list(table.columns))
            self._header_written = True
        for row in table.itertuples(index=False, name=None):
            self._sheet.append([_as_json_value(v) for v in row])

    def _close(self) -> None:
        if not self._saved:
            self._book.save(self.temporary)
            self._saved = True


def open_writer(path: str | Path, fmt: SurveyFormat, delimiter: str | None = None) -> SurveyWriter:
    if fmt in (SurveyFormat.CSV, SurveyFormat.TSV):
        return DelimitedWriter(path, delimiter or ("\t" if fmt is SurveyFormat.TSV else ","))
    if fmt is SurveyFormat.JSONL:
        return JsonLinesWriter(path)
    if fmt is SurveyFormat.PARQUET:
        return ParquetWriter(path)
    return ExcelWriter(path)


def _is_missing(value: Any) -> bool:
    return value is None or value is MISSING or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _as_cell_text(value: Any) -> str:
    return "" if _is_missing(value) else str(value)


def _as_json_value(value: Any) -> Any:
    """Plain Python values for JSON, Excel and Arrow: numpy scalars unwrapped, every kind of missing as None."""
    if _is_missing(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def _has_object_columns(table: pd.DataFrame) -> bool:
    return any(dtype == object for dtype in table.dtypes)  # noqa: E721 - numpy's dtype == object, not a type test
