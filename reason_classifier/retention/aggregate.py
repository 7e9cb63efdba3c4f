"""Saved revenue and offer performance: answers joined with their outcomes, counted per period and group.

One pass of DuckDB reads the answers (the store's `classified_answers`, or a tagged export with the
offer columns) and the outcomes (the store's `offer_outcomes`, or an export), matches each outcome
to its answer (by request id and item, or else to the customer's latest answer at or before the
outcome), and counts per period, segment and group (everything, category, sub-reason, offer,
experiment variant) in grouped queries; pandas only sees the small result. What it promises:

- an answer without a reported outcome counts as shown but not accepted (the accept rate is of
  offers shown, never of reported outcomes only, which would flatter it);
- a save (accepted, paused, downgraded) is a deflection unless the same customer cancelled or
  declined in a later cancel flow (`lost_later`);
- saved MRR is the MRR kept (`mrr_kept` of the outcome) or else the answer's MRR; a deflection
  with neither is counted (`deflections_without_mrr`), never guessed;
- an outcome matching no answer is counted (`outcomes_unmatched`), and in the funnel it is a
  cancel flow that started without an answer;
- a date, MRR or outcome that cannot be read stops the report, naming the row and the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from ..answer_store_schema import offer_outcomes
from ..errors import InputError
from ..trends.aggregate import DATE_COLUMNS, _banded, _number, _text, _timestamp
from ..trends.sources import ROW, StoreSource, TrendSource, connect, open_source, quote_identifier, quote_literal
from .models import (
    ComparisonOut,
    ExperimentResult,
    FunnelStep,
    RetentionDocument,
    RetentionRow,
    RetentionSummary,
    VariantResult,
)
from .options import RetentionOptions
from .outcomes import LOST, SAVED, OutcomeKind
from .stats import compare, wilson_interval

OUTCOMES_TABLE = offer_outcomes.name
"""The service's table of reported outcomes, beside `classified_answers` (answer_store_schema.py)."""
ALL = "all"
NO_VALUE = "(none)"
NO_OFFER = "(no offer)"
LEVELS = ("all", "category", "sub_reason", "offer", "variant")
OUTCOME_DATE_COLUMNS = ("reported_at", "occurred_at", *DATE_COLUMNS)
_FAR_FUTURE = "TIMESTAMPTZ '9999-12-31 00:00:00+00'"


class SpanTooLong(InputError):
    """since/until (or the data) span more periods than a report lists: about the options, not the data."""


def _in(values: tuple[OutcomeKind, ...]) -> str:
    return ", ".join(quote_literal(v.value) for v in values)


@dataclass
class RetentionSources:
    """Where the answers and the outcomes come from; `outcomes` None when there are none yet."""

    answers: TrendSource
    outcomes: TrendSource | None

    def close(self) -> None:
        self.answers.close()
        if self.outcomes is not None:
            self.outcomes.close()

    def __enter__(self) -> RetentionSources:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_sources(
    source: str | Path, outcomes: str | Path | None = None, fmt: str | None = None, sheet: str | None = None
) -> RetentionSources:
    """The store (its answers and its outcomes table), or an answers export and, if given, an outcomes export."""
    answers = open_source(source, fmt, sheet)
    if outcomes is not None:
        return RetentionSources(answers, open_source(outcomes))
    if isinstance(answers, StoreSource):
        from sqlalchemy import inspect

        if inspect(answers.engine).has_table(OUTCOMES_TABLE):
            return RetentionSources(answers, StoreSource(str(source), offer_outcomes))
    return RetentionSources(answers, None)


def compute_retention(sources: RetentionSources, options: RetentionOptions | None = None) -> RetentionDocument:
    """The retention report of `sources`. Raises `InputError` naming a missing column, or the row and value
    of a date, MRR or outcome that cannot be read."""
    options = options or RetentionOptions()
    con = connect(options.timezone)
    notes: list[str] = []
    try:
        answers_read = _load_answers(con, sources.answers, options, notes)
        outcomes_read = _load_outcomes(con, sources.outcomes, notes)
        matched, superseded = _match(con)
        _facts(con)
        summary_row = _summary(con, options)
        periods = _periods(options, summary_row)
        rows = _rows(con, options, periods)
        experiments = _experiments(con, options, notes)
        funnel = _funnel(con, options)
    finally:
        con.close()
    summary = RetentionSummary(
        answers_read=answers_read,
        answers_reported=summary_row["answers"],
        answers_without_date=summary_row["without_date"],
        outcomes_read=outcomes_read,
        outcomes_matched=matched,
        outcomes_unmatched=outcomes_read - matched - superseded,
        outcomes_superseded=superseded,
        first_day=summary_row["first_day"],
        last_day=summary_row["last_day"],
        offers_shown=summary_row["offers_shown"],
        accepted=summary_row["accepted"],
        deflections=summary_row["deflections"],
        saved_mrr=summary_row["saved_mrr"],
        saved_revenue=summary_row["saved_mrr"] * options.horizon_months,
        horizon_months=options.horizon_months,
    )
    if summary.outcomes_unmatched:
        notes.append(f"{summary.outcomes_unmatched:,} outcome(s) match no answer (unknown request id or customer)")
    if summary.deflections and summary_row["deflections_without_mrr"]:
        notes.append(
            f"{summary_row['deflections_without_mrr']:,} deflection(s) have no MRR (neither kept nor of the answer): "
            "they are counted, and left out of saved MRR"
        )
    return RetentionDocument(
        source=str(sources.answers),
        outcomes_source=str(sources.outcomes) if sources.outcomes is not None else None,
        options=options.to_dict(),
        summary=summary,
        periods=[options.period.label(p) for p in periods],
        funnel=funnel,
        experiments=experiments,
        rows=rows,
        notes=notes,
    )


# ------------------------------------------------------------------------------------------------ loading


def _types(con: Any, relation: str) -> dict[str, str]:
    return {name: kind for name, kind, *_ in con.execute(f"DESCRIBE {relation}").fetchall()}


def _optional_text(column: str | None, kinds: dict[str, str]) -> str:
    if column is None or column not in kinds:
        return "CAST(NULL AS VARCHAR)"
    return f"nullif(trim({_text(quote_identifier(column), kinds[column])}), '')"


def _load_answers(con: Any, src: TrendSource, options: RetentionOptions, notes: list[str]) -> int:
    available = src.columns
    by_lower = {c.strip().lower(): c for c in available}
    if "category" not in available:
        raise InputError(
            f"{src}: no column 'category': answers must be tagged (the store, or an export of `tag`); "
            f"the columns are: {', '.join(map(repr, available))}"
        )
    date_column = options.date_column or (
        "created_at" if src.store else next((by_lower[c] for c in DATE_COLUMNS if c in by_lower), None)
    )
    if date_column is None:
        raise InputError(f"{src}: which column holds the answer's time? Name it; the columns are: {available}")
    src.require(date_column, "the answer's time")
    for segment in options.by:
        src.require(segment.column, "a segment")
    wanted = [
        "category",
        date_column,
        *(
            c
            for c in (
                "sub_reason",
                "request_id",
                "item",
                "customer_id",
                "mrr",
                "offer_id",
                "offer_kind",
                "experiment",
                "variant",
            )
            if c in available
        ),
        *(s.column for s in options.by),
    ]
    wanted = list(dict.fromkeys(wanted))
    if "offer_id" not in available:
        notes.append(f"{src}: no offer_id column, so no offer was shown as far as this report can tell")
    if "request_id" not in available and "customer_id" not in available:
        notes.append(f"{src}: neither request_id nor customer_id: no outcome can be matched to an answer")
    relation = src.relation(con, wanted)
    kinds = _types(con, relation)
    q = quote_identifier
    ts = _timestamp(q(date_column), kinds[date_column], None, src.store)
    raw_date = _text(q(date_column), kinds[date_column])
    mrr = _number(q("mrr"), kinds["mrr"]) if "mrr" in kinds else "CAST(NULL AS DOUBLE)"
    offer_id = _optional_text("offer_id", kinds)
    offer_kind = _optional_text("offer_kind", kinds)
    item = f"coalesce(TRY_CAST({_optional_text('item', kinds)} AS INTEGER), 0)"
    segments = []
    for i, segment in enumerate(options.by):
        raw = _text(q(segment.column), kinds[segment.column])
        if segment.bands:
            segments.append(f"{_banded(_number(q(segment.column), kinds[segment.column]), segment)} AS seg_{i}")
        else:
            segments.append(f"coalesce(nullif(trim({raw}), ''), '{NO_VALUE}') AS seg_{i}")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE answers AS
        SELECT row_number() OVER () AS aid,
               {ROW} AS row_number,
               {ts} AS ts,
               CASE WHEN {ts} IS NULL AND nullif(trim({raw_date}), '') IS NOT NULL THEN trim({raw_date}) END AS bad_date,
               CASE WHEN {mrr} >= 0 AND isfinite({mrr}) THEN {mrr} END AS mrr,
               CASE WHEN {mrr} IS NULL AND nullif(trim({_optional_text("mrr", kinds)}), '') IS NOT NULL
                    OR NOT isfinite({mrr}) OR {mrr} < 0 THEN {_optional_text("mrr", kinds)} END AS bad_mrr,
               {_optional_text("request_id", kinds)} AS request_id,
               {item} AS item,
               {_optional_text("customer_id", kinds)} AS customer_id,
               lower(trim({_text(q("category"), kinds["category"])})) AS category,
               coalesce({_optional_text("sub_reason", kinds)}, '{NO_VALUE}') AS sub_reason,
               {offer_id} AS offer_id,
               ({offer_id} IS NOT NULL AND {offer_id} <> 'none' AND coalesce(lower({offer_kind}), '') <> 'none') AS shown,
               {_optional_text("experiment", kinds)} AS experiment,
               {_optional_text("variant", kinds)} AS variant
               {"".join(", " + s for s in segments)}
        FROM {relation}
    """)  # noqa: E501 - SQL as written
    _refuse_bad(con, src, "answers", "bad_date", date_column, "is not a date or time", "use ISO 8601, e.g. 2026-06-30")
    _refuse_bad(con, src, "answers", "bad_mrr", "mrr", "is not an MRR", "MRR must be a non-negative number")
    return con.execute("SELECT count(*) FROM answers").fetchall()[0][0]


def _load_outcomes(con: Any, src: TrendSource | None, notes: list[str]) -> int:
    if src is None:
        notes.append("no outcomes yet: accept rates and saved revenue are zero until the cancel flow reports them")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE outcomes (orow BIGINT, row_number BIGINT, outcome VARCHAR, "
            "request_id VARCHAR, item INTEGER, customer_id VARCHAR, mrr_kept DOUBLE, ts TIMESTAMPTZ)"
        )
        return 0
    available = src.columns
    by_lower = {c.strip().lower(): c for c in available}
    if "outcome" not in by_lower:
        raise InputError(f"{src}: no column 'outcome'; the columns are: {', '.join(map(repr, available))}")
    if "request_id" not in by_lower and "customer_id" not in by_lower:
        raise InputError(f"{src}: an outcome needs a request_id or a customer_id column to find its answer")
    date_column = (
        "created_at" if src.store else next((by_lower[c] for c in OUTCOME_DATE_COLUMNS if c in by_lower), None)
    )
    wanted = [by_lower[c] for c in ("outcome", "request_id", "item", "customer_id", "mrr_kept") if c in by_lower] + (
        [date_column] if date_column else []
    )
    relation = src.relation(con, list(dict.fromkeys(wanted)))
    kinds = _types(con, relation)
    names = {c: by_lower[c] for c in ("outcome", "request_id", "item", "customer_id", "mrr_kept") if c in by_lower}
    q = quote_identifier
    ts = _timestamp(q(date_column), kinds[date_column], None, src.store) if date_column else "CAST(NULL AS TIMESTAMPTZ)"
    raw_date = _text(q(date_column), kinds[date_column]) if date_column else "NULL"
    kept_raw = _optional_text(names.get("mrr_kept"), kinds)
    kept = _number(q(names["mrr_kept"]), kinds[names["mrr_kept"]]) if "mrr_kept" in names else "CAST(NULL AS DOUBLE)"
    known = ", ".join(quote_literal(k.value) for k in OutcomeKind)
    outcome = f"lower(trim({_text(q(names['outcome']), kinds[names['outcome']])}))"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE outcomes AS
        SELECT row_number() OVER () AS orow,
               {ROW} AS row_number,
               {outcome} AS outcome,
               CASE WHEN {outcome} IS NULL OR {outcome} NOT IN ({known}) THEN coalesce({outcome}, '') END AS bad_outcome,
               {_optional_text(names.get("request_id"), kinds)} AS request_id,
               coalesce(TRY_CAST({_optional_text(names.get("item"), kinds)} AS INTEGER), 0) AS item,
               {_optional_text(names.get("customer_id"), kinds)} AS customer_id,
               CASE WHEN {kept} >= 0 AND isfinite({kept}) THEN {kept} END AS mrr_kept,
               CASE WHEN ({kept} IS NULL AND {kept_raw} IS NOT NULL) OR NOT isfinite({kept}) OR {kept} < 0
                    THEN {kept_raw} END AS bad_kept,
               {ts} AS ts,
               CASE WHEN {ts} IS NULL AND nullif(trim({raw_date}), '') IS NOT NULL THEN trim({raw_date}) END AS bad_date
        FROM {relation}
    """)  # noqa: E501 - SQL as written
    _refuse_bad(
        con,
        src,
        "outcomes",
        "bad_outcome",
        names["outcome"],
        "is not an outcome",
        f"outcomes are {', '.join(k.value for k in OutcomeKind)}",
    )
    _refuse_bad(con, src, "outcomes", "bad_kept", "mrr_kept", "is not an MRR", "MRR must be a non-negative number")
    if date_column:
        _refuse_bad(con, src, "outcomes", "bad_date", date_column, "is not a date or time", "use ISO 8601")
    return con.execute("SELECT count(*) FROM outcomes").fetchall()[0][0]


def _refuse_bad(con: Any, src: TrendSource, table: str, column: str, name: str, what: str, hint: str) -> None:
    found = con.execute(
        f"SELECT {column}, row_number, count(*) OVER () FROM {table} WHERE {column} IS NOT NULL "
        "ORDER BY row_number NULLS LAST LIMIT 1"
    ).fetchall()  # all: a result left unfetched keeps the connection busy
    if not found:
        return
    value, row, total = found[0]
    if row is None:
        row = src.row_of(name, value)
    where = f"row {row}" if row is not None else "a row"
    others = f" ({total - 1} more row(s) like it)" if total > 1 else ""
    raise InputError(f"{src}, {where}: {name} {value!r} {what}{others}; {hint}")


# ------------------------------------------------------------------------------------------------ matching


def _match(con: Any) -> tuple[int, int]:
    """One outcome per answer (the latest reported); returns (outcomes matched, earlier ones superseded)."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE matched AS
        WITH by_request AS (
            SELECT o.orow, a.aid, o.outcome, o.mrr_kept, o.ts
            FROM outcomes o JOIN answers a ON o.request_id = a.request_id AND o.item = a.item
            WHERE o.request_id IS NOT NULL
        ), by_customer AS (
            SELECT o.orow, a.aid, o.outcome, o.mrr_kept, o.ts
            FROM (SELECT *, coalesce(ts, {_FAR_FUTURE}) AS at FROM outcomes
                  WHERE request_id IS NULL AND customer_id IS NOT NULL) o
            ASOF JOIN (SELECT aid, customer_id, ts FROM answers WHERE customer_id IS NOT NULL AND ts IS NOT NULL) a
            ON o.customer_id = a.customer_id AND o.at >= a.ts
        ), both_ AS (SELECT * FROM by_request UNION ALL SELECT * FROM by_customer)
        SELECT *, row_number() OVER (PARTITION BY aid ORDER BY ts DESC NULLS LAST, orow DESC) AS rank FROM both_
    """)
    total, kept = con.execute("SELECT count(*), count(*) FILTER (rank = 1) FROM matched").fetchall()[0]
    return kept, total - kept


def _facts(con: Any) -> None:
    """Every answer with its outcome, whether it is a deflection, and what it saved."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE facts AS
        SELECT *,
               saved AND NOT coalesce(last_loss > ts, false) AS deflection,
               saved AND coalesce(last_loss > ts, false) AS lost_later
        FROM (
            SELECT a.*, m.outcome, m.mrr_kept,
                   coalesce(m.outcome IN ({_in(SAVED)}), false) AS saved,
                   CASE WHEN a.customer_id IS NOT NULL THEN
                        max(CASE WHEN m.outcome IN ({_in(LOST)}) THEN a.ts END) OVER (PARTITION BY a.customer_id)
                   END AS last_loss
            FROM answers a LEFT JOIN (SELECT * FROM matched WHERE rank = 1) m USING (aid)
        )
    """)


# ------------------------------------------------------------------------------------------------ counting

_METRICS = """
    count(*) AS answers,
    count(*) FILTER (shown) AS offers_shown,
    count(outcome) AS outcomes,
    count(*) FILTER (shown AND outcome = 'accepted') AS accepted,
    count(*) FILTER (outcome = 'declined') AS declined,
    count(*) FILTER (outcome = 'cancelled') AS cancelled,
    count(*) FILTER (outcome = 'paused') AS paused,
    count(*) FILTER (outcome = 'downgraded') AS downgraded,
    count(*) FILTER (deflection) AS deflections,
    count(*) FILTER (lost_later) AS lost_later,
    coalesce(sum(coalesce(mrr_kept, mrr)) FILTER (deflection), 0) AS saved_mrr,
    count(*) FILTER (deflection AND coalesce(mrr_kept, mrr) IS NULL) AS deflections_without_mrr
"""
_COUNTS = (
    "answers",
    "offers_shown",
    "outcomes",
    "accepted",
    "declined",
    "cancelled",
    "paused",
    "downgraded",
    "deflections",
    "lost_later",
    "deflections_without_mrr",
)


def _in_range(options: RetentionOptions, ts: str = "ts") -> str:
    conditions = [f"{ts} IS NOT NULL"]
    if options.since:
        conditions.append(f"CAST({ts} AS DATE) >= DATE '{options.since.isoformat()}'")
    if options.until:
        conditions.append(f"CAST({ts} AS DATE) <= DATE '{options.until.isoformat()}'")
    return " AND ".join(conditions)


def _summary(con: Any, options: RetentionOptions) -> dict[str, Any]:
    row = con.execute(f"""
        SELECT count(*) FILTER ({_in_range(options)}), count(*) FILTER (ts IS NULL),
               min(CAST(ts AS DATE)) FILTER ({_in_range(options)}), max(CAST(ts AS DATE)) FILTER ({_in_range(options)}),
               count(*) FILTER ({_in_range(options)} AND shown),
               count(*) FILTER ({_in_range(options)} AND shown AND outcome = 'accepted'),
               count(*) FILTER ({_in_range(options)} AND deflection),
               coalesce(sum(coalesce(mrr_kept, mrr)) FILTER ({_in_range(options)} AND deflection), 0),
               count(*) FILTER ({_in_range(options)} AND deflection AND coalesce(mrr_kept, mrr) IS NULL)
        FROM facts
    """).fetchall()[0]  # noqa: E501 - SQL as written
    keys = ("answers", "without_date", "first_day", "last_day", "offers_shown", "accepted", "deflections")
    return dict(zip(keys, row[:7], strict=True)) | {"saved_mrr": float(row[7]), "deflections_without_mrr": row[8]}


def _periods(options: RetentionOptions, summary: dict[str, Any]) -> list[date]:
    first, last = options.since or summary["first_day"], options.until or summary["last_day"]
    if first is None or last is None:
        return []
    if (count := options.period.count_between(first, last)) > 520:
        raise SpanTooLong(f"{first} to {last} is {count:,} {options.period.value}s; narrow since/until")
    return options.period.starts_between(first, last)


_LEVEL_KEYS: dict[str, list[tuple[str, str]]] = {
    "all": [],
    "category": [("category", "category")],
    "sub_reason": [("category", "category"), ("sub_reason", "sub_reason")],
    "offer": [("offer", f"coalesce(offer_id, '{NO_OFFER}')")],
    "variant": [("experiment", "experiment"), ("variant", "variant")],
}


def _rows(con: Any, options: RetentionOptions, periods: list[date]) -> list[RetentionRow]:
    period = f"CAST(date_trunc('{options.period.value}', ts) AS DATE)"
    segments = [(ALL, f"'{ALL}'")] + [(s.name, f"seg_{i}") for i, s in enumerate(options.by)]
    frames = []
    for level, keys in _LEVEL_KEYS.items():
        where = _in_range(options) + (" AND experiment IS NOT NULL" if level == "variant" else "")
        key_sql = [f"{sql} AS {name}" for name, sql in keys]
        key_names = [name for name, _ in keys]
        for segment_name, segment_sql in segments:
            group = ["segment_value", *key_names]
            frame = con.execute(f"""
                SELECT {period} AS period_start, {segment_sql} AS segment_value
                       {"".join(", " + k for k in key_sql)}, {_METRICS}, GROUPING(period_start) AS total
                FROM facts WHERE {where}
                GROUP BY GROUPING SETS ((period_start, {", ".join(group)}), ({", ".join(group)}))
            """).df()
            frame["level"], frame["segment"] = level, segment_name
            frames.append(frame)
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    rows = [_row(record, options) for record in data.to_dict("records")]
    seen = {r.period_start for r in rows if r.level == ALL and r.segment == ALL}
    for start in periods:  # every period on the time axis, an empty one as zeros
        if start not in seen:
            rows.append(_row({"period_start": start, "segment_value": ALL, "level": ALL, "segment": ALL}, options))
    order = {level: i for i, level in enumerate(LEVELS)}
    rows.sort(
        key=lambda r: (
            r.period_start is not None,
            r.period_start or date.min,
            r.segment != ALL,
            r.segment,
            order[r.level],
            -r.answers,
            r.segment_value,
            str(r.offer or r.variant or r.sub_reason or r.category or ""),
        )
    )
    return rows


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 4)


def _value(record: dict[str, Any], key: str) -> Any:
    value = record.get(key)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _row(record: dict[str, Any], options: RetentionOptions) -> RetentionRow:
    counts = {k: int(_value(record, k) or 0) for k in _COUNTS}
    saved_mrr = float(_value(record, "saved_mrr") or 0.0)
    accept = wilson_interval(counts["accepted"], counts["offers_shown"], options.confidence)
    save = wilson_interval(counts["deflections"], counts["answers"], options.confidence)
    start = _value(record, "period_start")
    total = bool(_value(record, "total"))
    if isinstance(start, pd.Timestamp):
        start = start.date()
    return RetentionRow(
        period=ALL if total or start is None else options.period.label(start),
        period_start=None if total else start,
        segment=record["segment"],
        segment_value=str(record["segment_value"]),
        level=record["level"],
        category=_value(record, "category"),
        sub_reason=_value(record, "sub_reason"),
        offer=_value(record, "offer"),
        experiment=_value(record, "experiment"),
        variant=_value(record, "variant"),
        **counts,
        accept_rate_pct=_pct(counts["accepted"] / counts["offers_shown"]) if counts["offers_shown"] else None,
        accept_low_pct=_pct(accept[0]) if accept else None,
        accept_high_pct=_pct(accept[1]) if accept else None,
        save_rate_pct=_pct(counts["deflections"] / counts["answers"]) if counts["answers"] else None,
        save_low_pct=_pct(save[0]) if save else None,
        save_high_pct=_pct(save[1]) if save else None,
        saved_mrr=round(saved_mrr, 6),
        saved_revenue=round(saved_mrr * options.horizon_months, 6),
    )


# ------------------------------------------------------------------------------------------------ experiments


def _experiments(con: Any, options: RetentionOptions, notes: list[str]) -> list[ExperimentResult]:
    data = con.execute(f"""
        SELECT experiment, variant, mode(offer_id) AS offer, {_METRICS}
        FROM facts WHERE {_in_range(options)} AND experiment IS NOT NULL AND variant IS NOT NULL
        GROUP BY experiment, variant ORDER BY experiment, variant
    """).df()
    results = []
    for experiment, group in data.groupby("experiment", sort=True):
        records = {r["variant"]: r for r in group.to_dict("records")}
        control, chosen_by = _control(str(experiment), list(records), options)
        if chosen_by != "offers file":
            notes.append(f"experiment {experiment}: control {control!r} chosen by {chosen_by}")
        c = records.get(control)
        variants = []
        for name, record in records.items():
            answers, shown = int(record["answers"]), int(record["offers_shown"])
            accepted, deflections = int(record["accepted"]), int(record["deflections"])
            accept = wilson_interval(accepted, answers, options.confidence)
            save = wilson_interval(deflections, answers, options.confidence)
            vs_accept = vs_save = None
            if c is not None and name != control:
                vs_accept = _comparison(int(c["accepted"]), int(c["answers"]), accepted, answers, options)
                vs_save = _comparison(int(c["deflections"]), int(c["answers"]), deflections, answers, options)
            variants.append(
                VariantResult(
                    variant=str(name),
                    control=name == control,
                    offer=_value(record, "offer"),
                    answers=answers,
                    offers_shown=shown,
                    accepted=accepted,
                    accept_rate_pct=_pct(accepted / answers) if answers else None,
                    accept_low_pct=_pct(accept[0]) if accept else None,
                    accept_high_pct=_pct(accept[1]) if accept else None,
                    deflections=deflections,
                    save_rate_pct=_pct(deflections / answers) if answers else None,
                    save_low_pct=_pct(save[0]) if save else None,
                    save_high_pct=_pct(save[1]) if save else None,
                    saved_mrr=round(float(record["saved_mrr"] or 0.0), 6),
                    accept_vs_control=vs_accept,
                    save_vs_control=vs_save,
                )
            )
        variants.sort(key=lambda v: (not v.control, v.variant))
        results.append(
            ExperimentResult(
                experiment=str(experiment), control=control, control_chosen_by=chosen_by, variants=variants
            )
        )
    return results


def _control(experiment: str, variants: list[str], options: RetentionOptions) -> tuple[str, str]:
    if experiment in options.controls:
        return options.controls[experiment], "offers file"
    if "control" in variants:
        return "control", "its name"
    return sorted(variants)[0], "being first by name (no offers file names it)"


def _comparison(cs: int, cn: int, vs: int, vn: int, options: RetentionOptions) -> ComparisonOut:
    result = compare(cs, cn, vs, vn, options.alpha, options.power)
    return ComparisonOut(
        control_pct=_pct(result.control_rate),
        variant_pct=_pct(result.variant_rate),
        difference_pts=_pct(result.difference),
        z=None if result.z is None else round(result.z, 6),
        p_value=None if result.p_value is None else round(result.p_value, 8),
        significant=result.significant,
        needed_per_variant=result.needed_per_group,
        still_needed_per_variant=result.still_needed_per_group,
    )


def _funnel(con: Any, options: RetentionOptions) -> list[FunnelStep]:
    in_range = _in_range(options)
    answered, shown, accepted, staying = con.execute(f"""
        SELECT count(*), count(*) FILTER (shown), count(*) FILTER (shown AND outcome = 'accepted'),
               count(*) FILTER (shown AND outcome = 'accepted' AND deflection)
        FROM facts WHERE {in_range}
    """).fetchall()[0]
    without_answer = con.execute(f"""
        SELECT count(*) FROM outcomes o
        WHERE NOT EXISTS (SELECT 1 FROM matched m WHERE m.orow = o.orow)
          AND (o.ts IS NULL OR ({_in_range(options, "o.ts")}))
    """).fetchall()[0][0]
    counts = [
        ("cancel started", answered + without_answer),
        ("answered", answered),
        ("offer shown", shown),
        ("accepted", accepted),
        ("still a customer", staying),
    ]
    first = counts[0][1]
    steps, previous = [], None
    for name, count in counts:
        steps.append(
            FunnelStep(
                step=name,
                count=count,
                pct_of_first=_pct(count / first) if first else None,
                pct_of_previous=_pct(count / previous) if previous else None,
            )
        )
        previous = count
    return steps
