"""Where the tagged answers come from: a tagged export file, or the classify service's store.

A source knows its columns and puts its rows in front of DuckDB as one relation. Exports are
read by DuckDB's own readers where it has one (CSV/TSV, JSONL, Parquet: parallel and streaming,
so a million rows never sit in pandas); Excel workbooks go through the project's streaming
reader, and the store is read through SQLAlchemy in chunks, because DuckDB's Excel, SQLite and
PostgreSQL extensions would be downloaded at run time, which fails offline.

A store in PostgreSQL can also hand over its rows already grouped (`grouped_relation`): the
server counts them per local day and per value of every other column the report reads, sums the
weights, and cuts numeric bands, so ten million stored answers cross the wire as a few hundred
thousand groups and no answer text is read. DuckDB then parses and checks the groups exactly as
it would the rows, so both ways give the same report.
"""

from __future__ import annotations

import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from ..database import database_url
from ..errors import InputError, SourceNotFound, SourceUnreadable
from ..survey_files import SurveyFormat, _sniff_delimiter, detect_format, open_reader

if TYPE_CHECKING:
    from sqlalchemy import Table

log = logging.getLogger(__name__)

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
LOAD_CHUNK_ROWS = 50_000
ROW = "_row"
"""Column of 1-based row numbers (the export's data rows, or the store's ids) where a source has them."""
ANSWERS = "_answers"
"""In a grouped relation: how many rows a group holds."""
WEIGHT_SUM, WEIGHTED, BAD_WEIGHT = "_weight_sum", "_weighted", "_bad_weight"
"""In a grouped relation with a summed weight: the sum of the usable weights (non-negative, finite), how many
rows had one, and an unusable weight (negative, NaN, infinite), a group of its own with its value."""


@dataclass(frozen=True)
class Grouping:
    """What a report needs of the rows, for a source that groups them itself (see `grouped_relation`)."""

    columns: list[str]
    """The columns read by value: grouped by."""
    date: str
    """One of `columns`: grouped by its local day in `timezone` when it is a time column."""
    timezone: str
    weight: str | None
    """Summed when it is a numeric column, else grouped by value; None: no weight, or one of `columns`."""
    bands: dict[str, tuple[str, tuple[float, ...]]] = field(default_factory=dict)
    """Segment name -> (column, band edges): on a numeric column the band's label is grouped by, under the
    segment's name; any other column is grouped by value (and cut into bands by DuckDB)."""


@dataclass(frozen=True)
class Grouped:
    """A relation of groups: the grouped columns, `_row` (the group's first id), `_answers`, and what `Grouping`
    says was done to the date, the weight and the bands."""

    relation: str
    local_days: bool
    summed_weight: bool
    banded: frozenset[str]


def connect(timezone: str = "UTC", threads: int = 2, memory_limit: str = "1GB") -> Any:
    """An in-memory DuckDB connection that never fetches an extension and reads times in `timezone`."""
    import duckdb

    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "threads": threads,
            "memory_limit": memory_limit,
            "preserve_insertion_order": False,
        }
    )
    con.execute(f"SET TimeZone = {quote_literal(timezone)}")
    return con


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class TrendSource(ABC):
    """Tagged answers to report on. `columns` are the names a user can pass as options."""

    store = False
    """True for the service's store, whose naive times are UTC and whose answers are in `text`."""

    def __init__(self, description: str) -> None:
        self.description = description

    @property
    @abstractmethod
    def columns(self) -> list[str]: ...

    @abstractmethod
    def relation(self, con: Any, columns: list[str]) -> str:
        """Make `columns` (and `_row` if the source numbers its rows) queryable in `con`; return the relation's name."""

    def grouped_relation(self, con: Any, grouping: Grouping) -> Grouped | None:
        """The rows grouped by the source's own engine, or None when it has none that can (then `relation`)."""
        return None

    def period_relation(self, con: Any, columns: list[str], first: date, last: date, timezone: str) -> str:
        """Like `relation`, for a report that was grouped: at least the rows whose day in `timezone` is from
        `first` to `last` (the examples and the sample of the last period are looked for in them)."""
        return self.relation(con, columns)

    def row_of(self, column: str, value: str) -> int | None:
        """The row number of the first row whose `column` reads as `value`, for an error message."""
        return None

    def close(self) -> None:
        """Release what the source holds (the store's database engine); a file source holds nothing."""
        return None

    def require(self, column: str, purpose: str) -> None:
        if column not in self.columns:
            raise InputError(
                f"{self.description}: no column {column!r} for {purpose}; the columns are: "
                f"{', '.join(map(repr, self.columns)) or '(none)'}"
            )

    def __str__(self) -> str:
        return self.description


class DuckDBFileSource(TrendSource):
    """A CSV/TSV, JSONL or Parquet export, read by DuckDB straight from the file."""

    def __init__(self, path: Path, fmt: SurveyFormat) -> None:
        super().__init__(str(path))
        self.path, self.format = path, fmt
        if not path.is_file():
            raise SourceNotFound(f"{path}: no such file")
        self._columns: list[str] | None = None
        self._types: dict[str, str] = {}

    def _reader_sql(self) -> str:
        path = quote_literal(str(self.path))
        if self.format in (SurveyFormat.CSV, SurveyFormat.TSV):
            delimiter = "\t" if self.format is SurveyFormat.TSV else self._csv_delimiter()
            return (
                f"read_csv({path}, header = true, all_varchar = true, delim = {quote_literal(delimiter)}, "
                "quote = '\"', escape = '\"')"
            )
        if self.format is SurveyFormat.JSONL:
            return f"read_json({path}, format = 'newline_delimited', maximum_sample_files = 1, sample_size = 20480)"
        return f"read_parquet({path}, file_row_number = true)"

    def _csv_delimiter(self) -> str:
        with open(self.path, encoding="utf-8-sig", errors="replace", newline="") as file:
            return _sniff_delimiter(file.readline())

    def _describe(self, con: Any) -> None:
        if self._columns is None:
            try:
                described = con.execute(f"DESCRIBE SELECT * FROM {self._reader_sql()}").fetchall()
            except Exception as error:
                raise SourceUnreadable(
                    f"{self.path}: cannot read it as {self.format.value}: {_first_line(error)}"
                ) from None
            self._types = {name: kind for name, kind, *_ in described if name != "file_row_number"}
            self._columns = list(self._types)

    @property
    def columns(self) -> list[str]:
        if self._columns is None:
            con = connect()
            try:
                self._describe(con)
            finally:
                con.close()
        assert self._columns is not None
        return self._columns

    def relation(self, con: Any, columns: list[str]) -> str:
        self._describe(con)
        selected = [_as_text(quote_identifier(c), self._types[c]) + f" AS {quote_identifier(c)}" for c in columns]
        if self.format is SurveyFormat.PARQUET:
            selected.append(f"file_row_number + 1 AS {ROW}")
        else:
            selected.append(f"CAST(NULL AS BIGINT) AS {ROW}")
        con.execute(f"CREATE OR REPLACE TEMP VIEW source AS SELECT {', '.join(selected)} FROM {self._reader_sql()}")
        return "source"

    def row_of(self, column: str, value: str) -> int | None:
        if self.format is SurveyFormat.PARQUET:
            return None  # Parquet rows carry their number; see relation()
        with open_reader(self.path, self.format, chunk_rows=8192) as reader:
            for chunk in reader.chunks():
                if column not in chunk.table.columns:
                    continue
                cells = chunk.table[column].map(lambda v: _cell_text(v))
                hits = (cells == value).to_numpy().nonzero()[0]
                if len(hits):
                    return chunk.first_row + int(hits[0])
        return None


class ChunkedSource(TrendSource):
    """A source loaded into DuckDB chunk by chunk from Python (Excel, the store), with its row numbers."""

    def relation(self, con: Any, columns: list[str]) -> str:
        return _load(con, self._chunks(columns), columns, "source")

    @abstractmethod
    def _chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]: ...


class ExcelSource(ChunkedSource):
    def __init__(self, path: Path, sheet: str | None = None) -> None:
        super().__init__(str(path))
        self.path, self.sheet = path, sheet
        with open_reader(path, SurveyFormat.EXCEL, 1, sheet=sheet) as reader:
            self._columns = list(reader.columns)

    @property
    def columns(self) -> list[str]:
        return self._columns

    def _chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        with open_reader(self.path, SurveyFormat.EXCEL, LOAD_CHUNK_ROWS, sheet=self.sheet) as reader:
            for chunk in reader.chunks():
                frame = pd.DataFrame(
                    {c: pd.array([_cell_text(v) for v in chunk.table[c]], dtype="string") for c in columns}
                )
                frame[ROW] = range(chunk.first_row, chunk.first_row + len(chunk.table))
                yield frame


class StoreSource(ChunkedSource):
    """The classify service's `classified_answers` table (or another of its tables: `table`), both defined in
    answer_store_schema.py, in SQLite (a file path) or PostgreSQL (a URL). Its columns are those of the table
    that the database has (an older store may lack one).

    Segments may also be keys of the stored `metadata`, named `metadata.KEY`. The database extracts
    them; when it cannot (a lone surrogate such as `\\ud800` stored by an older version: SQLite's
    text is then not UTF-8, PostgreSQL's `->>` refuses the escape), the metadata is read as JSON
    text and the keys are extracted here, with such characters replaced by U+FFFD.
    """

    store = True
    _tolerant = False

    def __init__(self, store: str, table: Table | None = None) -> None:
        from sqlalchemy import create_engine, inspect

        from ..answer_store_schema import classified_answers

        url = database_url(store)
        self.schema = table if table is not None else classified_answers
        """The table read, as answer_store_schema.py defines it."""
        self.table = self.schema.name
        super().__init__(_hide_password(store))
        if url.startswith("sqlite:"):
            from sqlalchemy.engine import make_url

            database = make_url(url).database or ""
            if not Path(database).is_file():
                raise SourceNotFound(f"{database}: no such file")
        try:
            self.engine = create_engine(url)
            inspector = inspect(self.engine)
            if not inspector.has_table(self.table):
                raise InputError(f"{self.description}: no table {self.table!r}; is this the classify service's store?")
            present = {c["name"] for c in inspector.get_columns(self.table)}
        except InputError:
            raise
        except Exception as error:
            raise SourceUnreadable(f"{self.description}: cannot open the store: {_first_line(error)}") from None
        self._columns = [c.name for c in self.schema.columns if c.name in present]

    @property
    def columns(self) -> list[str]:
        return self._columns

    def require(self, column: str, purpose: str) -> None:
        if column.startswith("metadata.") and "metadata" in self._columns and len(column) > len("metadata."):
            return
        super().require(column, purpose)

    def relation(self, con: Any, columns: list[str]) -> str:
        return self._tolerating(columns, lambda: _load(con, self._chunks(columns), columns, "source"))

    def period_relation(self, con: Any, columns: list[str], first: date, last: date, timezone: str) -> str:
        zone = ZoneInfo(timezone)  # a day more on each side: a local midnight that a DST change moves stays inside
        window = (
            datetime.combine(first - timedelta(days=1), time(), zone),
            datetime.combine(last + timedelta(days=2), time(), zone),
        )
        return self._tolerating(columns, lambda: _load(con, self._chunks(columns, window), columns, "period_rows"))

    def _tolerating(self, columns: list[str], load: Callable[[], str]) -> str:
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        try:
            try:
                return load()
            except DBAPIError as error:
                if self._tolerant or not any(c.startswith("metadata.") for c in columns):
                    raise
                log.warning(
                    "%s: the database cannot extract a metadata key (%s); reading the metadata as text instead",
                    self.description,
                    type(error.orig).__name__,
                )
                self._tolerant = True
                return load()
        except SQLAlchemyError as error:  # the database went away or refuses: its first line, no stored value
            raise SourceUnreadable(f"{self.description}: cannot read the rows: {_first_line(error)}") from None

    def grouped_relation(self, con: Any, grouping: Grouping) -> Grouped | None:
        """PostgreSQL groups the rows (see the module's docstring); SQLite, without time zones, does not. None too
        when the database cannot extract a metadata key (a lone surrogate): the rows are then read one by one."""
        from sqlalchemy import Date, and_, case, cast, func, literal, literal_column, not_, select
        from sqlalchemy.exc import DBAPIError

        from .options import Segment

        if self.engine.dialect.name != "postgresql" or self._tolerant:
            return None
        stored = self.schema
        summed_weight = grouping.weight is not None and _is_number(stored, grouping.weight)
        by_value = list(grouping.columns)
        if grouping.weight is not None and not summed_weight:
            by_value.append(grouping.weight)
        by_value += [c for c, _ in grouping.bands.values() if not _is_number(stored, c)]
        keys, kinds = [], {}
        local_days = False
        for name in dict.fromkeys(by_value):
            column, kind = _stored_column(stored, name, self.engine.dialect.name)
            if name == grouping.date and kind == "time":
                utc = column if column.type.timezone else func.timezone("UTC", column)
                column, kind, local_days = cast(func.timezone(grouping.timezone, utc), Date()), "day", True
            keys.append(column.label(name))
            kinds[name] = kind
        banded = set()
        for name, (source_column, edges) in grouping.bands.items():
            if not _is_number(stored, source_column):
                continue  # grouped by value above, cut into bands (and checked) by DuckDB

            value = stored.c[source_column]
            labels = Segment(source_column, edges).band_labels()
            band = case(
                (value.is_(None), literal(_NO_VALUE)),
                *[(value < edge, literal(label)) for edge, label in zip(edges, labels[:-1], strict=True)],
                else_=literal(labels[-1]),
            )
            keys.append(band.label(name))
            kinds[name] = "text"
            banded.add(name)
        measures = [func.min(stored.c["id"]).label(ROW), func.count().label(ANSWERS)]
        if summed_weight:
            assert grouping.weight is not None
            weight = stored.c[grouping.weight]
            usable = and_(weight >= 0, weight < literal(float("inf")))  # NaN sorts above infinity in PostgreSQL
            bad = case((and_(weight.is_not(None), not_(usable)), cast(weight, weight.type)))
            keys.append(bad.label(BAD_WEIGHT))
            kinds[BAD_WEIGHT] = "number"
            measures += [
                func.sum(weight).filter(usable).label(WEIGHT_SUM),
                func.count().filter(usable).label(WEIGHTED),
            ]
        query = select(*keys, *measures).group_by(*(literal_column(str(i + 1)) for i in range(len(keys))))
        names = [k.name for k in keys]
        try:
            with self.engine.connect() as connection:
                result = connection.execution_options(stream_results=True, yield_per=LOAD_CHUNK_ROWS).execute(query)
                frames = (self._grouped_frame(rows, names, kinds, summed_weight) for rows in result.partitions())
                relation = _load(con, frames, names, "grouped")
        except DBAPIError as error:
            if not any(c.startswith("metadata.") for c in grouping.columns):
                raise
            log.warning(
                "%s: the database cannot extract a metadata key (%s); reading the rows one by one instead",
                self.description,
                type(error.orig).__name__,
            )
            return None
        return Grouped(relation, local_days, summed_weight, frozenset(banded))

    @staticmethod
    def _grouped_frame(rows: Sequence[Any], names: list[str], kinds: dict[str, str], summed: bool) -> pd.DataFrame:
        measures = [ROW, ANSWERS, *([WEIGHT_SUM, WEIGHTED] if summed else [])]
        raw = _frame(rows, [*names, *measures])
        frame = _typed(raw, names, kinds)
        frame[ROW] = raw[ROW].astype("int64")
        frame[ANSWERS] = raw[ANSWERS].astype("int64")
        if summed:
            frame[WEIGHT_SUM] = pd.to_numeric(raw[WEIGHT_SUM]).astype("float64")
            frame[WEIGHTED] = raw[WEIGHTED].astype("int64")
        return frame

    def _chunks(self, columns: list[str], window: tuple[datetime, datetime] | None = None) -> Iterator[pd.DataFrame]:
        from sqlalchemy import Text, cast, select

        stored = self.schema
        selected, kinds = [stored.c["id"].label(ROW)], {}
        if self._tolerant:
            selected.append(cast(stored.c["metadata"], Text()).label(_METADATA_TEXT))
        for name in columns:
            if name.startswith("metadata.") and self._tolerant:
                kinds[name] = "metadata"
                continue
            column, kinds[name] = _stored_column(stored, name, self.engine.dialect.name)
            selected.append(column.label(name))
        query = select(*selected).order_by(stored.c["id"])
        if window is not None:
            query = query.where(stored.c["created_at"] >= window[0], stored.c["created_at"] < window[1])
        names = [ROW, *([_METADATA_TEXT] if self._tolerant else []), *(c for c in columns if kinds[c] != "metadata")]
        with self.engine.connect() as connection:
            if self._tolerant and self.engine.dialect.name == "sqlite":
                dbapi = connection.connection.dbapi_connection
                assert dbapi is not None  # an open connection has its driver connection
                dbapi.text_factory = _tolerant_text
            result = connection.execution_options(stream_results=True, yield_per=LOAD_CHUNK_ROWS).execute(query)
            for rows in result.partitions():
                raw = _frame(rows, names)
                frame = _typed(raw, columns, kinds)
                frame[ROW] = raw[ROW].astype("int64")
                yield frame[[*columns, ROW]]

    def close(self) -> None:
        self.engine.dispose()


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """Database rows as a frame, built column by column: pandas inspects every row object it is given one by one
    (most of the client's time in a grouped report on PostgreSQL went there)."""
    if not rows:
        return pd.DataFrame(rows, columns=columns)
    return pd.DataFrame({name: list(column) for name, column in zip(columns, zip(*rows, strict=True), strict=True)})


def _load(con: Any, chunks: Iterator[pd.DataFrame], columns: list[str], table: str) -> str:
    """Chunks of rows into the DuckDB table `table`; returns its name."""
    created = False
    for chunk in chunks:
        con.register("incoming", chunk)
        if not created:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM incoming")
            created = True
        else:
            con.execute(f"INSERT INTO {table} SELECT * FROM incoming")
        con.unregister("incoming")
    if not created:
        empty = pd.DataFrame({c: pd.Series(dtype="string") for c in columns} | {ROW: pd.Series(dtype="int64")})
        con.register("incoming", empty)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM incoming")
        con.unregister("incoming")
    return table


_NO_VALUE = "(none)"
"""A band's label for a missing number (the report's NO_VALUE)."""


def _is_number(stored: Any, name: str) -> bool:
    from sqlalchemy import Float, Integer, Numeric

    return name in stored.c and isinstance(stored.c[name].type, (Float, Integer, Numeric))


def _stored_column(stored: Any, name: str, dialect: str) -> tuple[Any, str]:
    """The SQL for a column of the store (a `metadata.KEY` extracted by the database) and how to read it:
    `time`, `number` or `text`."""
    from sqlalchemy import JSON, DateTime, String, type_coerce

    if name.startswith("metadata."):
        return type_coerce(stored.c["metadata"], JSON())[name.removeprefix("metadata.")].as_string(), "text"
    column = stored.c[name]
    if isinstance(column.type, DateTime):
        if dialect == "sqlite":
            return type_coerce(column, String()), "time"  # parsed by _typed, all at once, as the UTC it is
        return column, "time"
    return column, "number" if _is_number(stored, name) else "text"


def _typed(raw: pd.DataFrame, columns: list[str], kinds: dict[str, str]) -> pd.DataFrame:
    """Rows read from the store as the types the report reads: times in UTC, numbers as floats, days as dates,
    text stripped; `metadata` keys from the metadata's text where the database could not extract them."""
    frame = pd.DataFrame(index=raw.index)
    for name in columns:
        kind = kinds[name]
        if kind == "metadata":
            key = name.removeprefix("metadata.")
            frame[name] = pd.array([_metadata_value(v, key) for v in raw[_METADATA_TEXT]], dtype="string")
            frame[name] = frame[name].str.strip()
            continue
        values = raw[name]
        if kind == "time":  # the service writes UTC; SQLite gives it back without a zone
            frame[name] = pd.to_datetime(values, utc=True, format="ISO8601")
        elif kind == "day":
            import pyarrow as pa

            frame[name] = pd.array(list(values), dtype=pd.ArrowDtype(pa.date32()))
        elif kind == "number":
            frame[name] = pd.to_numeric(values).astype("float64")
        else:
            frame[name] = values.astype("string").str.strip()
    return frame


_METADATA_TEXT = "_metadata_text"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _tolerant_text(raw: bytes) -> str:
    """SQLite text as str, with a lone surrogate's bytes (or any other non-UTF-8) as U+FFFD."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return _LONE_SURROGATE.sub("\ufffd", raw.decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


def _metadata_value(text: str | None, key: str) -> str | None:
    """What `metadata ->> key` gives (a string as it is, anything else as JSON), lone surrogates as U+FFFD."""
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get(key) is None:
        return None
    value = data[key]
    value = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return _LONE_SURROGATE.sub("\ufffd", value)


def _hide_password(store: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", store)


def open_source(source: str | Path | TrendSource, fmt: str | None = None, sheet: str | None = None) -> TrendSource:
    """A tagged export (by extension or `fmt`), an SQLite store file, or a database URL."""
    if isinstance(source, TrendSource):
        return source
    text = str(source)
    if "://" in text:
        return StoreSource(text)
    path = Path(text).expanduser()
    if fmt in (None, "sqlite") and (path.suffix.lower() in SQLITE_SUFFIXES or _is_sqlite(path)):
        return StoreSource(str(path))
    if not path.is_file():
        raise SourceNotFound(f"{path}: no such file")
    survey_format = detect_format(path, fmt)
    if survey_format is SurveyFormat.EXCEL:
        return ExcelSource(path, sheet)
    return DuckDBFileSource(path, survey_format)


def _is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _as_text(sql: str, kind: str) -> str:
    """Keep typed columns typed (dates, numbers); JSON values as their plain text."""
    if kind == "JSON":
        return f"({sql} ->> '$')"
    return sql


def _cell_text(value: Any) -> str | None:
    """A cell as the text DuckDB would read for it: missing as None, dates in ISO form."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return str(value)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
