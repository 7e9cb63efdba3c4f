"""`reason-classifier trends`: reason trends of a tagged export or the service's store, as files and a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from reason_classifier.errors import ReasonClassifierError
from reason_classifier.trends.options import EMERGING_SAMPLE

from .common import console, day, fail, output


def trends(
    source: Annotated[
        str,
        typer.Argument(
            help=(
                "A tagged export (.csv .tsv .jsonl .parquet .xlsx, the output of `tag`), the service's SQLite "
                "store, or a postgresql:// URL."
            )
        ),
    ],
    output_dir: Annotated[
        Path, typer.Option("-o", "--output", help="Folder for trends.csv, trends.json and report.html.")
    ],
    period: Annotated[str, typer.Option(help="week (ISO, from Monday), month or quarter.")] = "month",
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by", help="Segment column, repeatable (plan, contract); COLUMN:3,12,24 cuts a number into bands."
        ),
    ] = None,
    weight: Annotated[
        str | None, typer.Option(help="Revenue column summed as revenue lost (default: a column named mrr, if any).")
    ] = None,
    no_weight: Annotated[
        bool, typer.Option("--no-weight", help="Report counts only, even if there is an mrr column.")
    ] = False,
    since: Annotated[str | None, typer.Option(help="First day reported, YYYY-MM-DD (inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="Last day reported, YYYY-MM-DD (inclusive).")] = None,
    date_column: Annotated[
        str | None,
        typer.Option(help="Cancellation date column (default: cancelled_at, churned_at, date, created_at, ...)."),
    ] = None,
    date_format: Annotated[
        str | None, typer.Option(help="strptime format for dates that are not ISO 8601, e.g. '%d-%m-%Y %H:%M'.")
    ] = None,
    text_column: Annotated[
        str | None,
        typer.Option(
            "--text-column",
            "-c",
            help="Answer column, for examples and emerging reasons (default: answer, response, text, ...).",
        ),
    ] = None,
    timezone: Annotated[
        str, typer.Option(help="Time zone periods are cut in; times without an offset are read as local times of it.")
    ] = "UTC",
    format: Annotated[
        str | None,
        typer.Option(
            "--format", help="Export format when the extension does not say: csv, tsv, jsonl, parquet, excel."
        ),
    ] = None,
    sheet: Annotated[str | None, typer.Option(help="Excel sheet (default: the first).")] = None,
    emerging: Annotated[
        bool,
        typer.Option(
            "--emerging/--no-emerging", help="Look for emerging reasons in the last period (loads the model)."
        ),
    ] = True,
    emerging_sample: Annotated[
        int,
        typer.Option(min=10, help="Most answers of the last period embedded for emerging reasons (a seeded sample)."),
    ] = EMERGING_SAMPLE,
    model: Annotated[
        Path | None, typer.Option(help="Model folder for emerging reasons (default: the shipped model).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary and the last period as JSON.")] = False,
) -> None:
    """Reason trends for product teams: shares and revenue lost per period, reason and segment, top movers, emerging
    reasons."""
    from reason_classifier.trends import TrendOptions, add_emerging_reasons, compute_trends, write_trends

    try:
        options = TrendOptions(
            period=period,
            by=tuple(by or ()),
            weight=None if no_weight else (weight or "auto"),
            since=day(since, "--since"),
            until=day(until, "--until"),
            date_column=date_column,
            date_format=date_format,
            text_column=text_column,
            timezone=timezone,
        )
        with console.status("computing trends"):
            report = compute_trends(
                source, options, latest_sample=emerging_sample if emerging else 0, input_format=format, sheet=sheet
            )
        if emerging:
            with console.status("looking for emerging reasons"):
                add_emerging_reasons(report, model=model)
        paths = write_trends(report, output_dir)
    except (ReasonClassifierError, ValueError, OSError) as error:
        raise fail(str(error)) from None

    document = report.document
    columns = document.columns
    for note in document.notes:
        console.print(f"note: {note}", highlight=False)
    if json_output:
        output.print_json(
            json.dumps(
                {
                    "columns": columns.model_dump(),
                    "summary": document.summary.model_dump(mode="json"),
                    "periods": [p.model_dump(mode="json") for p in document.periods],
                    "last_period": [r.model_dump(mode="json") for r in document.latest_rows()],
                    "files": {k: str(v) for k, v in paths.items()},
                }
            )
        )
        return
    output.print(
        f"date column {columns.date!r}, weight {columns.weight!r}, answers {columns.text!r}; "
        f"{document.summary.rows_reported:,} answers in {len(document.periods)} period(s)",
        highlight=False,
    )
    if document.periods:
        last = document.periods[-1]
        table = Table(
            title=f"{last.period}: {last.answers:,} answers"
            + (f", {last.revenue_lost:,.2f} {columns.weight} lost" if last.revenue_lost is not None else "")
        )
        for name in (
            "category",
            "answers",
            "share",
            "change (pts)",
            *(("revenue share", "change (pts)") if columns.weight else ()),
        ):
            table.add_column(name, justify="left" if name == "category" else "right")
        for r in document.latest_rows():
            table.add_row(
                r.category,
                f"{r.answers:,}",
                f"{r.share_pct:.1f}%",
                _points(r.share_change_pts),
                *((f"{r.revenue_share_pct:.1f}%", _points(r.revenue_share_change_pts)) if columns.weight else ()),
            )
        output.print(table)
    if document.emerging is not None:
        output.print(
            f"emerging reasons: {len(document.emerging.reasons)} group(s) among {document.emerging.far} far answer(s)",
            highlight=False,
        )
    for name, path in paths.items():
        output.print(f"{name}: {path}", highlight=False)


def _points(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}"
