"""Reason trends: answers per period, category and sub-reason, by count and by revenue, per segment.

One pass of DuckDB parses and checks the rows into a compact table (dates, weight, reason,
segments; no answer texts), one grouped query counts them for every segment at once (GROUPING
SETS), and pandas fills in the small result: every period from the first to the last, every
reason seen, zeros where there were none, shares and changes against the previous period.
Memory is bounded by DuckDB's limit, not by the number of rows. A store in PostgreSQL hands over
its rows already grouped (see sources.py): each line of the compact table then stands for
`answers` rows, and every count is a sum of them, so the same queries serve both.

What users get for the awkward rows:
- a row the tagger could not classify (its `error` is set: empty answer, unreadable row) is a
  customer lost all the same: it counts in its period as `other` / `unclassified`, and its
  revenue is revenue lost;
- a row without a weight counts in every count and share and is left out of the revenue sums
  (and counted in `weight_missing`), since an unknown MRR is not a zero MRR;
- a row whose date cell is empty is left out and counted (`rows_without_date`); a date or weight
  that cannot be read stops the report with the row number and the value.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..columns import LIKELY_TEXT_COLUMNS, guess_column
from ..errors import InputError, SourceUnreadable
from ..taxonomy import ABSTAIN_CATEGORY, CATEGORIES
from .models import ALL, Columns, ExampleAnswers, PeriodTotals, Summary, TrendRow, TrendsDocument
from .options import AUTO, Segment, TrendOptions
from .periods import Period
from .sources import (
    ANSWERS,
    BAD_WEIGHT,
    ROW,
    WEIGHT_SUM,
    WEIGHTED,
    Grouped,
    Grouping,
    TrendSource,
    connect,
    open_source,
    quote_identifier,
    quote_literal,
)

MAX_PERIODS = 520  # ten years of weeks

UNCLASSIFIED = "unclassified"
NO_SUB_REASON = "(none)"
NO_VALUE = "(none)"

DATE_COLUMNS = (
    "cancelled_at",
    "canceled_at",
    "cancellation_date",
    "cancelled_on",
    "churned_at",
    "churn_date",
    "date",
    "created_at",
    "submitted_at",
    "answered_at",
    "timestamp",
)
STORE_DEFAULTS = {"date": "created_at", "text": "text", "weight": "mrr"}
_TIMESTAMP_TYPES = ("DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE")
_NUMBER_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
)


class BadValueError(InputError):
    """A stored value cannot be read as the report needs it. The message quotes the value (the CLI's
    user owns the file); `column`, `problem` and `rows` say the same without it, for the service."""

    def __init__(self, message: str, column: str, problem: str, rows: int) -> None:
        super().__init__(message)
        self.column, self.problem, self.rows = column, problem, rows


@dataclass
class TrendReport:
    """A computed report: the document (numbers, examples) and the sample of the last period's
    answers that emerging reasons are looked for in (not part of the document)."""

    document: TrendsDocument
    latest_answers: list[str]
    latest_answers_total: int = 0
    """How many answers with text the last period has (the sample holds at most `latest_sample` of them)."""

    @property
    def rows(self) -> pd.DataFrame:
        return pd.DataFrame([r.model_dump() for r in self.document.rows])


def compute_trends(
    source: str | Path | TrendSource,
    options: TrendOptions | None = None,
    *,
    latest_sample: int = 0,
    seed: int = 0,
    input_format: str | None = None,
    sheet: str | None = None,
) -> TrendReport:
    """The trends of a tagged export or the service's store (see `open_source`, which takes `input_format` when the
    extension does not say and the Excel `sheet`).

    `latest_sample`: also return up to this many answers of the last period (a seeded sample), for
    emerging reasons (`add_emerging_reasons`). Raises `InputError` naming the columns there are when a column is
    missing, and the row and value when a date, weight or category cannot be read. A source opened here is closed
    here, whatever happens; one passed in is left open for its owner.
    """
    options = options or TrendOptions()
    src = open_source(source, input_format, sheet)
    with ExitStack() as cleanup:
        if not isinstance(source, TrendSource):
            cleanup.callback(src.close)
        columns = resolve_columns(src, options)
        con = connect(options.timezone)
        cleanup.callback(con.close)
        needed = [
            c
            for c in (
                columns.date,
                columns.category,
                columns.sub_reason,
                columns.error,
                columns.weight,
                *[s.column for s in options.by],
            )
            if c
        ]
        needed = list(dict.fromkeys(needed))
        extra = (
            [c for c in (columns.text, _confidence_column(src)) if c and c not in needed]
            if (options.examples or latest_sample)
            else []
        )
        grouped = src.grouped_relation(con, _grouping(columns, options))
        relation = grouped.relation if grouped else src.relation(con, needed + extra)
        kinds = _column_types(con, relation)
        expressions = _Expressions(columns, options, kinds, src.store, grouped)
        try:
            _parse(con, relation, expressions, options)
        except InputError:
            raise
        except Exception as error:  # DuckDB's reader: a malformed file
            raise SourceUnreadable(f"{src}: cannot read the rows: {_first_lines(error)}") from None
        _check(con, src, columns, options)
        summary = _summary(con, options)
        first, last = _period_bounds(options, summary)
        aggregated = _aggregate(con, options)
        frame = _complete(aggregated, options, first, last, has_weight=columns.weight is not None)
        document = _document(src, options, columns, summary, frame)
        latest = document.periods[-1] if document.periods else None
        wants_texts = latest is not None and columns.text and (options.examples or latest_sample)
        if wants_texts and grouped and latest is not None:  # the texts of the last period only
            relation = src.period_relation(con, needed + extra, latest.start, latest.end, options.timezone)
            expressions = _Expressions(columns, options, _column_types(con, relation), src.store, None)
        if latest is not None and columns.text and options.examples:
            document.examples = _examples(con, relation, expressions, document, latest.start, options, src)
        sample, total = (
            _latest_sample(con, relation, expressions, latest.start, latest_sample, seed)
            if latest is not None and columns.text and latest_sample
            else ([], 0)
        )
    return TrendReport(document, sample, total)


def resolve_columns(src: TrendSource, options: TrendOptions) -> Columns:
    """The columns to use, named by the options or guessed; a missing one is an error listing the columns."""
    available = src.columns
    listing = ", ".join(map(repr, available)) or "(none)"
    if "category" not in available:
        raise InputError(
            f"{src}: no column 'category': is this a tagged export? Run `reason-classifier tag` first; "
            f"the columns are: {listing}"
        )
    date_column = options.date_column or (
        STORE_DEFAULTS["date"] if src.store else guess_column(available, DATE_COLUMNS)
    )
    if date_column is None:
        raise InputError(
            f"{src}: which column holds the cancellation date? Name it (--date-column); the columns are: {listing}"
        )
    src.require(date_column, "the date")
    if options.weight == AUTO:
        weight = STORE_DEFAULTS["weight"] if src.store else guess_column(available, ("mrr",))
    else:
        weight = options.weight
        if weight:
            src.require(weight, "the weight")
    text = options.text_column or (
        STORE_DEFAULTS["text"] if src.store else guess_column(available, LIKELY_TEXT_COLUMNS)
    )
    if options.text_column:
        src.require(options.text_column, "the answer text")
    for segment in options.by:
        src.require(segment.column, "a segment")
    return Columns(
        date=date_column,
        category="category",
        sub_reason="sub_reason" if "sub_reason" in available else None,
        error="error" if "error" in available else None,
        weight=weight or None,
        text=text,
        segments=[s.name for s in options.by],
    )


def _grouping(columns: Columns, options: TrendOptions) -> Grouping:
    """What the report reads of each row, for a source that groups them: the weight and the banded numbers
    only through their sum and their bands, unless the report also reads them by value."""
    by_value = [columns.date, columns.category, columns.sub_reason, columns.error]
    by_value += [s.column for s in options.by if not s.bands]
    kept = [c for c in dict.fromkeys(by_value) if c]
    weight = columns.weight if columns.weight not in kept else None  # read by value: grouped by it, not summed
    bands = {s.name: (s.column, s.bands) for s in options.by if s.bands}
    return Grouping(kept, columns.date, options.timezone, weight, bands)


def _confidence_column(src: TrendSource) -> str | None:
    return "confidence" if "confidence" in src.columns else None


def _column_types(con: Any, relation: str) -> dict[str, str]:
    return {name: kind for name, kind, *_ in con.execute(f"DESCRIBE {relation}").fetchall()}


class _Expressions:
    """SQL for the parsed values of one source's columns, shared by the aggregation and the example queries."""

    def __init__(
        self, columns: Columns, options: TrendOptions, kinds: dict[str, str], store: bool, grouped: Grouped | None
    ) -> None:
        self.columns, self.options, self.kinds = columns, options, kinds
        self.answers = ANSWERS if grouped else "1"
        self.summed_weight = bool(grouped and grouped.summed_weight)
        q = quote_identifier
        self.raw_date = _text(q(columns.date), kinds[columns.date])
        self.ts = _timestamp(q(columns.date), kinds[columns.date], options.date_format, store)
        self.period = f"CAST(date_trunc('{options.period.value}', {self.ts}) AS DATE)"
        self.category = f"lower(trim({_text(q(columns.category), kinds[columns.category])}))"
        self.is_error = (
            f"(nullif(trim({_text(q(columns.error), kinds[columns.error])}), '') IS NOT NULL)"
            if columns.error
            else "false"
        )
        sub = (
            f"coalesce(nullif(trim({_text(q(columns.sub_reason), kinds[columns.sub_reason])}), ''), '{NO_SUB_REASON}')"
            if columns.sub_reason
            else f"'{NO_SUB_REASON}'"
        )
        self.sub_reason = f"CASE WHEN {self.is_error} THEN '{UNCLASSIFIED}' ELSE {sub} END"
        if columns.weight and self.summed_weight:
            self.raw_weight = _text(BAD_WEIGHT, kinds[BAD_WEIGHT])
        elif columns.weight:
            self.raw_weight = _text(q(columns.weight), kinds[columns.weight])
            self.weight = _number(q(columns.weight), kinds[columns.weight])
        self.segments: list[tuple[str, str, str | None]] = []  # (value SQL, raw text SQL, number SQL for bands)
        for segment in options.by:
            if grouped and segment.name in grouped.banded:  # the band's label, cut by the database
                self.segments.append((q(segment.name), q(segment.name), None))
                continue
            raw = _text(q(segment.column), kinds[segment.column])
            if segment.bands:
                number = _number(q(segment.column), kinds[segment.column])
                self.segments.append((_banded(number, segment), raw, number))
            else:
                self.segments.append((f"coalesce(nullif(trim({raw}), ''), '{NO_VALUE}')", raw, None))
        self.text = f"trim({_text(q(columns.text), kinds[columns.text])})" if columns.text in kinds else None
        self.confidence = f"TRY_CAST({q('confidence')} AS DOUBLE)" if "confidence" in kinds else "NULL"

    def in_range(self) -> str:
        day = f"CAST({self.ts} AS DATE)"
        conditions = [f"{self.ts} IS NOT NULL"]
        if self.options.since:
            conditions.append(f"{day} >= DATE '{self.options.since.isoformat()}'")
        if self.options.until:
            conditions.append(f"{day} <= DATE '{self.options.until.isoformat()}'")
        return " AND ".join(conditions)


def _text(sql: str, kind: str) -> str:
    return sql if kind == "VARCHAR" else f"CAST({sql} AS VARCHAR)"


def _timestamp(sql: str, kind: str, date_format: str | None, store: bool) -> str:
    if kind == "TIMESTAMP WITH TIME ZONE":
        return sql
    if kind in _TIMESTAMP_TYPES:
        if store and kind != "DATE":
            return f"timezone('UTC', CAST({sql} AS TIMESTAMP))"
        return f"CAST({sql} AS TIMESTAMPTZ)"
    text = f"nullif(trim({_text(sql, kind)}), '')"
    if date_format:
        return f"TRY_CAST(try_strptime({text}, {quote_literal(date_format)}) AS TIMESTAMPTZ)"
    return f"TRY_CAST({text} AS TIMESTAMPTZ)"


def _number(sql: str, kind: str) -> str:
    if kind in _NUMBER_TYPES or kind.startswith("DECIMAL"):
        return f"CAST({sql} AS DOUBLE)"
    return f"TRY_CAST(nullif(trim({_text(sql, kind)}), '') AS DOUBLE)"


def _banded(number: str, segment: Segment) -> str:
    labels = segment.band_labels()
    cases = " ".join(
        f"WHEN {number} < {edge!r} THEN {quote_literal(label)}"
        for edge, label in zip(segment.bands, labels[:-1], strict=True)  # the last label is the ELSE
    )
    return f"CASE WHEN {number} IS NULL THEN '{NO_VALUE}' {cases} ELSE {quote_literal(labels[-1])} END"


def _parse(con: Any, relation: str, e: _Expressions, options: TrendOptions) -> None:
    """The compact table of parsed rows; offending raw values are kept only where a value is bad."""
    bad_weight, weight, weighted = "NULL", "CAST(NULL AS DOUBLE)", "0"
    if e.columns.weight and e.summed_weight:
        bad_weight = f"trim({e.raw_weight})"
        weight, weighted = WEIGHT_SUM, WEIGHTED
    elif e.columns.weight:
        usable = f"CASE WHEN {e.weight} >= 0 AND isfinite({e.weight}) THEN {e.weight} END"
        bad_weight = (
            f"CASE WHEN nullif(trim({e.raw_weight}), '') IS NOT NULL AND "
            f"({e.weight} IS NULL OR NOT isfinite({e.weight}) OR {e.weight} < 0) THEN trim({e.raw_weight}) END"
        )
        weight = f"{usable} * {e.answers}"
        weighted = f"CASE WHEN {usable} IS NOT NULL THEN {e.answers} ELSE 0 END"
    segments = []
    for i, (value, raw, number) in enumerate(e.segments):
        segments.append(f"{value} AS seg_{i}")
        bad = (
            f"CASE WHEN nullif(trim({raw}), '') IS NOT NULL AND {number} IS NULL THEN trim({raw}) END"
            if number
            else "NULL"
        )
        segments.append(f"{bad} AS bad_seg_{i}")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE parsed AS
        SELECT {ROW} AS row_number,
               CAST({e.answers} AS BIGINT) AS answers,
               {e.ts} AS ts,
               CASE WHEN {e.ts} IS NULL AND nullif(trim({e.raw_date}), '') IS NOT NULL THEN trim({e.raw_date}) END AS bad_date,
               {weight} AS weight,
               CAST({weighted} AS BIGINT) AS weighted,
               {bad_weight} AS bad_weight,
               {e.category} AS category,
               {e.sub_reason} AS sub_reason,
               {e.is_error} AS unclassified
               {"".join(", " + s for s in segments)}
        FROM {relation}
    """)  # noqa: E501 - SQL as written


def _check(con: Any, src: TrendSource, columns: Columns, options: TrendOptions) -> None:
    known = ", ".join(quote_literal(c) for c in CATEGORIES)
    problems = [
        (
            "bad_date",
            columns.date,
            "is not a date or time",
            "dates are read as ISO 8601 (2026-06-30, 2026-06-30 14:05, 2026-06-30T14:05:00+02:00); "
            "for other forms pass --date-format, e.g. '%d/%m/%Y'"
            if not options.date_format
            else f"it does not match --date-format {options.date_format!r}",
        ),
        (
            "bad_weight",
            columns.weight,
            "is not a revenue amount",
            "weights must be plain non-negative numbers such as 49.5",
        ),
        (
            f"CASE WHEN category IS NULL OR category NOT IN ({known}) THEN coalesce(category, '') END",
            columns.category,
            "is not a category",
            f"a tagged export's categories are {', '.join(CATEGORIES)}",
        ),
    ]
    for i, segment in enumerate(options.by):
        if segment.bands:
            problems.append((f"bad_seg_{i}", segment.column, "is not a number", "banded segments need numbers"))
    for expression, column, what, hint in problems:
        if column is None:
            continue
        found = con.execute(
            f"SELECT value, row_number, total FROM (SELECT {expression} AS value, row_number, "
            "CAST(sum(answers) OVER () AS BIGINT) AS total "
            f"FROM parsed WHERE {expression} IS NOT NULL) ORDER BY row_number NULLS LAST LIMIT 1"
        ).fetchone()
        if found is None:
            continue
        value, row, total = found
        if row is None:
            row = src.row_of(column, value)
        where = f"row {row}" if row is not None else "a row"
        others = f" ({total - 1} more row(s) like it)" if total > 1 else ""
        raise BadValueError(f"{src}, {where}: {column} {value!r} {what}{others}; {hint}", column, what, total)


def _summary(con: Any, options: TrendOptions) -> dict[str, Any]:
    since = f"DATE '{options.since.isoformat()}'" if options.since else "NULL"
    until = f"DATE '{options.until.isoformat()}'" if options.until else "NULL"
    in_range = (
        f"ts IS NOT NULL AND ({since} IS NULL OR CAST(ts AS DATE) >= {since}) "
        f"AND ({until} IS NULL OR CAST(ts AS DATE) <= {until})"
    )
    row = con.execute(f"""
        SELECT {_count("TRUE")}, {_count("ts IS NULL")}, {_count(in_range)},
               {_count(f"{in_range} AND unclassified")}, {_count(in_range, "answers - weighted")},
               min(CAST(ts AS DATE)) FILTER ({in_range}), max(CAST(ts AS DATE)) FILTER ({in_range})
        FROM parsed
    """).fetchone()
    read, without_date, reported, unclassified, weight_missing, first_day, last_day = row
    return {
        "rows_read": read,
        "rows_reported": reported,
        "rows_without_date": without_date,
        "rows_outside_range": read - without_date - reported,
        "unclassified": unclassified,
        "weight_missing": weight_missing,
        "first_day": first_day,
        "last_day": last_day,
    }


def _count(condition: str, what: str = "answers") -> str:
    """How many rows of `parsed` meet `condition` (each line stands for `answers` rows)."""
    return f"CAST(coalesce(sum({what}) FILTER ({condition}), 0) AS BIGINT)"


def _period_bounds(options: TrendOptions, summary: dict[str, Any]) -> tuple[date | None, date | None]:
    """The first and last day reported; a span of more than MAX_PERIODS periods (say since=1686-01-01,
    every empty period listed) is refused rather than computed for minutes."""
    first = options.since or summary["first_day"]
    last = options.until or summary["last_day"]
    if first is None or last is None:
        return None, None
    if (count := options.period.count_between(first, last)) > MAX_PERIODS:
        raise InputError(
            f"{first} to {last} is {count:,} {options.period.value}s; at most {MAX_PERIODS} periods are "
            f"reported: narrow since/until or choose a longer period"
        )
    return first, last


def _aggregate(con: Any, options: TrendOptions) -> pd.DataFrame:
    n = len(options.by)
    in_range = ["ts IS NOT NULL"]
    if options.since:
        in_range.append(f"CAST(ts AS DATE) >= DATE '{options.since.isoformat()}'")
    if options.until:
        in_range.append(f"CAST(ts AS DATE) <= DATE '{options.until.isoformat()}'")
    keys = ["period_start", "category", "sub_reason"]
    segments = [f"seg_{i}" for i in range(n)]
    if n:
        sets = ", ".join(["(" + ", ".join(keys) + ")"] + ["(" + ", ".join([*keys, s]) + ")" for s in segments])
        group = f"GROUPING SETS ({sets})"
        flags = ", " + ", ".join(f"GROUPING({s}) AS g_{i}" for i, s in enumerate(segments))
        selected_segments = ", " + ", ".join(segments)
    else:
        group, flags, selected_segments = ", ".join(keys), "", ""
    frame = con.execute(f"""
        SELECT CAST(date_trunc('{options.period.value}', ts) AS DATE) AS period_start, category, sub_reason
               {selected_segments}{flags},
               CAST(sum(answers) AS BIGINT) AS answers, sum(weight) AS revenue,
               CAST(sum(answers - weighted) AS BIGINT) AS weight_missing
        FROM parsed WHERE {" AND ".join(in_range)}
        GROUP BY {group}
    """).df()
    frame["segment"] = ALL
    frame["segment_value"] = ALL
    for i, segment in enumerate(options.by):
        mine = frame[f"g_{i}"] == 0
        frame.loc[mine, "segment"] = segment.name
        frame.loc[mine, "segment_value"] = frame.loc[mine, f"seg_{i}"]
    frame["period_start"] = pd.to_datetime(frame["period_start"]).dt.date
    return frame[
        ["segment", "segment_value", "period_start", "category", "sub_reason", "answers", "revenue", "weight_missing"]
    ]


def _complete(
    aggregated: pd.DataFrame, options: TrendOptions, first: date | None, last: date | None, has_weight: bool
) -> pd.DataFrame:
    """Every period × segment value × reason, zeros where there were no answers; shares and changes."""
    period: Period = options.period
    starts = period.starts_between(first, last) if first and last else []
    known = _taxonomy_order()
    pairs = sorted(
        set(map(tuple, aggregated[["category", "sub_reason"]].drop_duplicates().itertuples(index=False, name=None))),
        key=lambda p: (
            CATEGORIES.index(p[0]) if p[0] in CATEGORIES else 99,
            p[1] == UNCLASSIFIED,
            known.get(p[1], len(known)),
            p[1],
        ),
    )
    segment_values = [(ALL, ALL)]
    for segment in options.by:
        values = aggregated.loc[aggregated["segment"] == segment.name, "segment_value"].unique().tolist()
        if segment.bands:
            bands = [*segment.band_labels(), NO_VALUE]
            values.sort(key=lambda v, bands=bands: bands.index(v) if v in bands else len(bands))
        else:
            values.sort(key=lambda v: (v == NO_VALUE, v))
        segment_values.extend((segment.name, v) for v in values)

    columns = ["segment", "segment_value", "period_start", "category", "sub_reason"]
    sums = aggregated.groupby(columns, dropna=False)[["answers", "revenue", "weight_missing"]].sum(min_count=1)
    parts = []
    for level, keys in (("category", [(c, None) for c in CATEGORIES]), ("sub_reason", pairs)):
        grid = pd.DataFrame(
            [(s, v, p, c, r) for s, v in segment_values for p in starts for c, r in keys],
            columns=columns,
        )
        if level == "category":
            by_category = (
                sums.groupby(level=["segment", "segment_value", "period_start", "category"])
                .sum(min_count=1)
                .reset_index()
            )
            merged = grid.drop(columns="sub_reason").merge(by_category, how="left", on=columns[:-1])
            merged.insert(4, "sub_reason", None)
        else:
            merged = grid.merge(sums.reset_index(), how="left", on=columns)
        merged["level"] = level
        parts.append(merged)
    frame = pd.concat(parts, ignore_index=True)
    frame["answers"] = frame["answers"].fillna(0).astype("int64")
    frame["weight_missing"] = frame["weight_missing"].fillna(0).astype("int64")
    frame["revenue"] = frame["revenue"].astype("float64").fillna(0.0)

    period_keys = ["segment", "segment_value", "period_start"]
    totals = frame[frame["level"] == "category"].groupby(period_keys)[["answers", "revenue"]].sum()
    totals.columns = ["period_answers", "period_revenue"]
    frame = frame.join(totals, on=period_keys)
    frame["share_pct"] = np.where(
        frame["period_answers"] > 0,
        100.0 * frame["answers"] / frame["period_answers"].where(frame["period_answers"] > 0, 1),
        0.0,
    )
    frame["revenue_share_pct"] = np.where(
        frame["period_revenue"] > 0,
        100.0 * frame["revenue"] / frame["period_revenue"].where(frame["period_revenue"] > 0, 1),
        0.0,
    )
    reason_keys = ["segment", "segment_value", "level", "category", "sub_reason"]
    frame = frame.sort_values([*reason_keys, "period_start"], key=None, kind="stable")
    grouped = frame.groupby(reason_keys, dropna=False, sort=False)
    frame["share_change_pts"] = grouped["share_pct"].diff()
    frame["revenue_share_change_pts"] = grouped["revenue_share_pct"].diff()
    if not has_weight:
        for column in ("revenue", "revenue_share_pct", "revenue_share_change_pts"):
            frame[column] = np.nan
    frame["period"] = [period.label(p) for p in frame["period_start"]]
    order = {key: i for i, key in enumerate(segment_values)}
    frame["_segment_order"] = [order[(s, v)] for s, v in zip(frame["segment"], frame["segment_value"], strict=True)]
    frame["_level_order"] = (frame["level"] == "sub_reason").astype(int)
    reason_order = {("category", c, None): i for i, c in enumerate(CATEGORIES)}
    reason_order.update({("sub_reason", c, r): i for i, (c, r) in enumerate(pairs)})
    frame["_reason_order"] = [
        reason_order[(lv, c, r if lv == "sub_reason" else None)]
        for lv, c, r in zip(frame["level"], frame["category"], frame["sub_reason"], strict=True)
    ]
    frame = frame.sort_values(["_segment_order", "period_start", "_level_order", "_reason_order"], kind="stable")
    return frame.drop(columns=["_segment_order", "_level_order", "_reason_order"]).reset_index(drop=True)


def _first_lines(error: BaseException, lines: int = 2) -> str:
    return " ".join(str(error).strip().splitlines()[:lines]) or type(error).__name__


def _taxonomy_order() -> dict[str, int]:
    """Sub-reasons in the order of the project's taxonomy, so reports list them as the taxonomy does;
    sub-reasons it does not know (an edited taxonomy) follow in alphabetical order."""
    try:
        from ..taxonomy import Taxonomy

        return {name: i for i, name in enumerate(Taxonomy.load().sub_reason_names)}
    except Exception:  # no taxonomy file where the package is installed: alphabetical order only
        return {}


def _round(value: Any, digits: int) -> float | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return round(float(value), digits)


def _document(
    src: TrendSource, options: TrendOptions, columns: Columns, summary: dict[str, Any], frame: pd.DataFrame
) -> TrendsDocument:
    rows = [
        TrendRow(
            segment=r.segment,
            segment_value=str(r.segment_value),
            period=r.period,
            period_start=r.period_start,
            level=r.level,
            category=r.category,
            sub_reason=r.sub_reason,
            answers=int(r.answers),
            share_pct=_round(r.share_pct, 4),
            share_change_pts=_round(r.share_change_pts, 4),
            revenue_lost=_round(r.revenue, 2),
            revenue_share_pct=_round(r.revenue_share_pct, 4),
            revenue_share_change_pts=_round(r.revenue_share_change_pts, 4),
            weight_missing=int(r.weight_missing),
        )
        for r in frame.itertuples(index=False)
    ]
    overall = [r for r in rows if r.segment == ALL and r.level == "category"]
    periods: dict[date, PeriodTotals] = {}
    for r in overall:
        totals = periods.setdefault(
            r.period_start,
            PeriodTotals(
                period=r.period,
                start=r.period_start,
                end=options.period.end_of(r.period_start),
                answers=0,
                revenue_lost=0.0 if columns.weight else None,
                weight_missing=0,
            ),
        )
        totals.answers += r.answers
        totals.weight_missing += r.weight_missing
        if columns.weight:
            totals.revenue_lost = round((totals.revenue_lost or 0.0) + (r.revenue_lost or 0.0), 2)
    notes = []
    if summary["rows_without_date"]:
        notes.append(f"{summary['rows_without_date']} row(s) without a date were left out.")
    if summary["unclassified"]:
        notes.append(
            f"{summary['unclassified']} answer(s) the tagger could not classify are counted as other / {UNCLASSIFIED}."
        )
    if columns.weight and summary["weight_missing"]:
        notes.append(
            f"{summary['weight_missing']} answer(s) without {columns.weight} are counted but left out of the "
            "revenue sums."
        )
    if not columns.weight:
        notes.append("No weight column: revenue lost is not reported (pass --weight mrr).")
    last_start = max(periods) if periods else None
    if (
        last_start
        and summary["last_day"]
        and not options.until
        and summary["last_day"] < options.period.end_of(last_start)
    ):
        notes.append(
            f"The last period, {options.period.label(last_start)}, is partial: the data ends on {summary['last_day']}; "
            f"its changes and movers compare part of a period with a whole one (--until "
            f"{(last_start - timedelta(days=1)).isoformat()} reports up to the last complete period)."
        )
    movers = [
        r
        for r in rows
        if r.segment == ALL
        and r.level == "sub_reason"
        and r.period_start == last_start
        and r.share_change_pts is not None
    ]
    movers.sort(key=lambda r: (-abs(r.share_change_pts or 0.0), -r.answers))
    actionable = [m for m in movers if m.category != ABSTAIN_CATEGORY]
    if last_start and len(periods) < 2:
        notes.append("Only one period: there is no previous period to measure changes against.")
    return TrendsDocument(
        source=src.description,
        options=options.to_dict(),
        columns=columns,
        summary=Summary(**summary),
        periods=[periods[k] for k in sorted(periods)],
        top_movers=[m for m in actionable[: options.top_movers] if m.share_change_pts],
        other_movers=[m for m in movers if m.category == ABSTAIN_CATEGORY and m.share_change_pts],
        notes=notes,
        rows=rows,
    )


def rising_reasons(document: TrendsDocument, limit: int) -> list[TrendRow]:
    """Sub-reasons whose share grew in the last period, largest rise first; `other` (unclear, unclassified) is
    not a reason anyone can act on and is left out (the document lists it apart, in `other_movers`)."""
    rising = [
        r
        for r in document.latest_rows("sub_reason")
        if (r.share_change_pts or 0) > 0 and r.category != ABSTAIN_CATEGORY
    ]
    rising.sort(key=lambda r: -(r.share_change_pts or 0))
    return rising[:limit]


def _examples(
    con: Any,
    relation: str,
    e: _Expressions,
    document: TrendsDocument,
    last: date,
    options: TrendOptions,
    src: TrendSource,
) -> list[ExampleAnswers]:
    rising = rising_reasons(document, options.top_movers)
    if not rising or e.text is None:
        return []
    wanted = ", ".join(quote_literal(r.sub_reason or "") for r in rising)
    found = con.execute(f"""
        SELECT sub_reason, text FROM (
            SELECT sub_reason, text, row_number() OVER (PARTITION BY sub_reason ORDER BY confidence DESC NULLS LAST, hash(text), text) AS rank
            FROM (SELECT {e.sub_reason} AS sub_reason, {e.text} AS text, max({e.confidence}) AS confidence
                  FROM {relation}
                  WHERE {e.in_range()} AND {e.period} = DATE '{last.isoformat()}' AND NOT {e.is_error}
                        AND nullif({e.text}, '') IS NOT NULL AND {e.sub_reason} IN ({wanted})
                  GROUP BY ALL))
        WHERE rank <= {int(options.examples)} ORDER BY sub_reason, rank
    """).fetchall()  # noqa: E501 - SQL as written
    by_reason: dict[str, list[str]] = {}
    for sub_reason, text in found:
        by_reason.setdefault(sub_reason, []).append(text)
    return [
        ExampleAnswers(
            category=r.category,
            sub_reason=r.sub_reason or "",
            share_change_pts=r.share_change_pts,
            answers=by_reason.get(r.sub_reason or "", []),
        )
        for r in rising
    ]


def _latest_sample(
    con: Any, relation: str, e: _Expressions, last: date, limit: int, seed: int
) -> tuple[list[str], int]:
    """Up to `limit` answers of the last period (the same ones for the same data and seed), and how many there are."""
    rows = con.execute(f"""
        SELECT text, count(*) OVER () FROM (SELECT {e.text} AS text FROM {relation}
                          WHERE {e.in_range()} AND {e.period} = DATE '{last.isoformat()}' AND NOT {e.is_error}
                                AND nullif({e.text}, '') IS NOT NULL)
        ORDER BY hash(text, {int(seed)}), text LIMIT {int(limit)}
    """).fetchall()
    return [r[0] for r in rows], (rows[0][1] if rows else 0)
