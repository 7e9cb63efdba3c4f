"""`reason-classifier retention`: saved revenue and offer performance of the store (or exports), as files and a
table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from reason_classifier.errors import ReasonClassifierError

from .common import console, day, fail, output


def retention(
    source: Annotated[
        str,
        typer.Argument(
            help=(
                "The service's SQLite store or a postgresql:// URL (answers and their outcomes), or an export of "
                "classified answers (.csv .tsv .jsonl .parquet .xlsx) with --outcomes."
            )
        ),
    ],
    output_dir: Annotated[
        Path, typer.Option("-o", "--output", help="Folder for retention.csv, retention.json and report.html.")
    ],
    outcomes: Annotated[
        str | None,
        typer.Option(
            help="Export of outcomes: outcome, request_id or customer_id, and optionally item, mrr_kept, reported_at."
        ),
    ] = None,
    offers: Annotated[
        Path | None, typer.Option(help="The offers file, to name each experiment's control (default: guessed).")
    ] = None,
    period: Annotated[str, typer.Option(help="week (ISO, from Monday), month or quarter.")] = "month",
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by", help="Segment column, repeatable (plan, language); COLUMN:50,200 cuts a number into bands."
        ),
    ] = None,
    since: Annotated[str | None, typer.Option(help="First day of answers reported, YYYY-MM-DD (inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="Last day of answers reported, YYYY-MM-DD (inclusive).")] = None,
    horizon_months: Annotated[float, typer.Option(help="Saved revenue = saved MRR × this many months.")] = 12.0,
    confidence: Annotated[float, typer.Option(help="Confidence level of the rates' intervals.")] = 0.95,
    date_column: Annotated[
        str | None, typer.Option(help="The answer's time in an export (default: created_at, date, ...).")
    ] = None,
    timezone: Annotated[str, typer.Option(help="Time zone periods are cut in.")] = "UTC",
    format: Annotated[
        str | None,
        typer.Option("--format", help="Answers export format when the extension does not say: csv, tsv, jsonl, ..."),
    ] = None,
    sheet: Annotated[str | None, typer.Option(help="Excel sheet of the answers (default: the first).")] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary, funnel and experiments as JSON.")
    ] = False,
) -> None:
    """Saved revenue and offer performance: accept rates, deflections, saved MRR, the save funnel, A/B results."""
    from reason_classifier.offers import OffersConfig
    from reason_classifier.retention.aggregate import compute_retention, open_sources
    from reason_classifier.retention.options import RetentionOptions
    from reason_classifier.retention.report import write_retention
    from reason_classifier.trends.options import Segment
    from reason_classifier.trends.periods import Period

    try:
        controls = OffersConfig.load(offers).experiment_controls if offers is not None else {}
        options = RetentionOptions(
            period=Period.parse(period),
            by=tuple(Segment.parse(b) for b in by or ()),
            since=day(since, "--since"),
            until=day(until, "--until"),
            horizon_months=horizon_months,
            confidence=confidence,
            controls=controls,
            date_column=date_column,
            timezone=timezone,
        )
        with open_sources(source, outcomes, format, sheet) as sources, console.status("computing retention"):
            document = compute_retention(sources, options)
        paths = write_retention(document, output_dir)
    except (ReasonClassifierError, ValueError, OSError) as error:
        raise fail(str(error)) from None
    for note in document.notes:
        console.print(f"note: {note}", highlight=False)
    s = document.summary
    if json_output:
        output.print_json(
            json.dumps(
                {
                    "summary": s.model_dump(mode="json"),
                    "funnel": [step.model_dump() for step in document.funnel],
                    "experiments": [e.model_dump() for e in document.experiments],
                    "files": {k: str(v) for k, v in paths.items()},
                }
            )
        )
        return
    table = Table(title=f"{s.answers_reported:,} answers, {s.outcomes_matched:,} outcomes")
    table.add_column("step")
    table.add_column("customers", justify="right")
    table.add_column("of the first", justify="right")
    for step in document.funnel:
        table.add_row(step.step, f"{step.count:,}", "–" if step.pct_of_first is None else f"{step.pct_of_first:.1f}%")
    output.print(table)
    output.print(
        f"deflections {s.deflections:,}; saved MRR {s.saved_mrr:,.2f}; saved revenue over {s.horizon_months:g} "
        f"months {s.saved_revenue:,.2f}",
        highlight=False,
    )
    for experiment in document.experiments:
        table = Table(title=f"experiment {experiment.experiment} (control {experiment.control})")
        for name in ("variant", "answers", "save rate", "vs control", "p", "still needed"):
            table.add_column(name, justify="left" if name == "variant" else "right")
        for v in experiment.variants:
            c = v.save_vs_control
            table.add_row(
                v.variant,
                f"{v.answers:,}",
                "–" if v.save_rate_pct is None else f"{v.save_rate_pct:.1f}%",
                "control"
                if v.control
                else ("–" if c is None or c.difference_pts is None else f"{c.difference_pts:+.1f}"),
                "" if c is None or c.p_value is None else f"{c.p_value:.3f}",
                "" if c is None or c.still_needed_per_variant is None else f"{c.still_needed_per_variant:,}",
            )
        output.print(table)
    for name, path in paths.items():
        output.print(f"{name}: {path}", highlight=False)
