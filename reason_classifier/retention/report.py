"""The retention report as files: `retention.csv`, `retention.json` and one self-contained `report.html`.

The page is the trends report's (`report_files`: same style, plotly inline, every text from the data
escaped), so it opens from a mail attachment or a shared drive with no network.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..atomic import write_bytes_atomically
from ..report_files import (
    CATEGORY_COLOURS,
    RETENTION_FOLDER,
    charts_html,
    facts_and_notes,
    generated_now,
    money,
    page,
    percent,
    rows_csv,
    section,
)
from ..taxonomy import CATEGORIES
from .aggregate import ALL
from .models import ComparisonOut, ExperimentResult, RetentionDocument, RetentionRow

CSV_COLUMNS = list(RetentionRow.model_fields)


def write_retention(document: RetentionDocument, output_dir: str | Path) -> dict[str, Path]:
    """Write retention.csv, retention.json and report.html into `output_dir`; each appears only when complete."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / "retention.csv", "json": folder / "retention.json", "html": folder / "report.html"}
    write_bytes_atomically(paths["csv"], rows_csv(document.rows, CSV_COLUMNS).encode("utf-8"))
    write_bytes_atomically(paths["json"], document.model_dump_json(indent=1).encode("utf-8"))
    trends = "../report.html" if folder.name == RETENTION_FOLDER and (folder.parent / "report.html").is_file() else None
    write_bytes_atomically(paths["html"], render_html(document, trends).encode("utf-8"))
    return paths


def render_html(document: RetentionDocument, trends_report: str | None = None) -> str:
    """The page; `trends_report` links to the trends report of the same answers, if there is one."""
    import plotly.graph_objects as go

    periods = [r for r in document.rows if r.segment == ALL and r.level == "all" and r.period_start is not None]
    by_category = [r for r in document.rows if r.segment == ALL and r.level == "category" and r.period != ALL]
    figures = []

    funnel = go.Figure(
        go.Funnel(
            y=[s.step for s in document.funnel],
            x=[s.count for s in document.funnel],
            textinfo="value+percent initial",
            marker={"color": ["#9D9D9D", "#4C78A8", "#F58518", "#54A24B", "#2E7D32"]},
        )
    )
    funnel.update_layout(title="The save funnel")
    figures.append(("funnel", funnel))

    saved = go.Figure()
    for category in CATEGORIES:
        mine = {r.period: r.saved_mrr for r in by_category if r.category == category}
        saved.add_trace(
            go.Bar(
                x=[p.period for p in periods],
                y=[mine.get(p.period, 0.0) for p in periods],
                name=category,
                marker_color=CATEGORY_COLOURS[category],
            )
        )
    saved.update_layout(barmode="stack", title="Saved MRR per period, by the reason customers gave")
    figures.append(("saved", saved))

    rates = go.Figure(
        go.Scatter(
            x=[p.period for p in periods],
            y=[p.accept_rate_pct for p in periods],
            mode="lines+markers",
            name="accept rate",
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [(p.accept_high_pct or 0) - (p.accept_rate_pct or 0) for p in periods],
                "arrayminus": [(p.accept_rate_pct or 0) - (p.accept_low_pct or 0) for p in periods],
            },
        )
    )
    rates.add_trace(
        go.Scatter(
            x=[p.period for p in periods], y=[p.save_rate_pct for p in periods], mode="lines+markers", name="save rate"
        )
    )
    rates.update_layout(title="Accept rate (of offers shown) and save rate (of answers), %", yaxis={"ticksuffix": "%"})
    figures.append(("rates", rates))

    charts = charts_html(figures, numeric_x=("funnel",))
    body = [
        _header(document, trends_report),
        section("The save funnel", charts["funnel"] + _funnel_table(document)),
        section("Saved revenue", charts["saved"] + _period_table(periods, document)),
        section("Accept and save rates", charts["rates"]),
        section("Offers", _group_table(document, "offer")),
        section("Reasons", _group_table(document, "sub_reason")),
        section("Experiments", _experiments(document.experiments)),
    ]
    for segment in dict.fromkeys(r.segment for r in document.rows if r.segment != ALL):
        body.append(section(f"By {segment}", _group_table(document, "all", segment=segment), class_="segment"))
    return page(f"Retention · {document.source}", body, extra_style=_EXTRA_STYLE)


def _header(document: RetentionDocument, trends_report: str | None = None) -> str:
    s = document.summary
    span = f"{document.periods[0]} to {document.periods[-1]}" if document.periods else "no periods"
    facts = [
        ("answers", document.source),
        ("outcomes", document.outcomes_source or "none yet"),
        ("periods", f"{len(document.periods)} × {document.options['period']} ({span})"),
        ("answers reported", f"{s.answers_reported:,}"),
        ("offers shown", f"{s.offers_shown:,}"),
        ("accepted", f"{s.accepted:,}"),
        ("deflections", f"{s.deflections:,}"),
        ("saved MRR", f"{s.saved_mrr:,.2f}"),
        (f"saved revenue over {s.horizon_months:g} months", f"{s.saved_revenue:,.2f}"),
    ]
    return (
        f"<header><h1>Retention: saved revenue and offer performance</h1><p class=hint>generated {generated_now()}"
        + (
            f" · <a class=trends-link href='{html.escape(trends_report)}'>trends: why customers leave</a>"
            if trends_report
            else ""
        )
        + ". "
        "A deflection is a customer who accepted an offer, paused or downgraded, and did not cancel in a later "
        "cancel flow; saved MRR is the MRR they kept.</p>" + facts_and_notes(facts, document.notes) + "</header>"
    )


def _interval(rate: float | None, low: float | None, high: float | None) -> str:
    if rate is None:
        return "–"
    return f"{rate:.1f}% <small>({low or 0:.1f}–{high or 0:.1f})</small>"


def _funnel_table(document: RetentionDocument) -> str:
    lines = "".join(
        f"<tr><td>{html.escape(s.step)}</td><td>{s.count:,}</td><td>{percent(s.pct_of_first)}</td>"
        f"<td>{percent(s.pct_of_previous)}</td></tr>"
        for s in document.funnel
    )
    return (
        "<table class=funnel><tr><th>step</th><th>customers</th><th>of the first</th><th>of the step before</th></tr>"
        f"{lines}</table>"
    )


def _period_table(periods: list[RetentionRow], document: RetentionDocument) -> str:
    horizon = document.summary.horizon_months
    head = (
        "<tr><th>period</th><th>answers</th><th>offers shown</th><th>accepted</th><th>accept rate (95% CI)</th>"
        f"<th>deflections</th><th>saved MRR</th><th>saved over {horizon:g} months</th></tr>"
    )
    lines = "".join(
        f"<tr><td>{html.escape(p.period)}</td><td>{p.answers:,}</td><td>{p.offers_shown:,}</td><td>{p.accepted:,}</td>"
        f"<td>{_interval(p.accept_rate_pct, p.accept_low_pct, p.accept_high_pct)}</td><td>{p.deflections:,}</td>"
        f"<td>{money(p.saved_mrr)}</td><td>{money(p.saved_revenue)}</td></tr>"
        for p in periods[::-1]
    )
    return f"<table class=periods><caption>latest period first</caption>{head}{lines}</table>"


def _group_table(document: RetentionDocument, level: str, segment: str = ALL) -> str:
    rows = [r for r in document.rows if r.period == ALL and r.segment == segment and r.level == level]
    if not rows:
        return "<p>No answers.</p>"
    label = {"offer": "offer", "sub_reason": "reason", "all": segment}[level]
    head = (
        f"<tr><th>{html.escape(label)}</th><th>answers</th><th>offers shown</th><th>accepted</th>"
        "<th>accept rate (CI)</th><th>deflections</th><th>save rate (CI)</th><th>lost later</th><th>saved MRR</th></tr>"
    )
    lines = []
    for r in rows:
        name = (
            r.offer
            if level == "offer"
            else f"{r.category} / {r.sub_reason}"
            if level == "sub_reason"
            else r.segment_value
        )
        lines.append(
            f"<tr><td>{html.escape(str(name))}</td><td>{r.answers:,}</td><td>{r.offers_shown:,}</td>"
            f"<td>{r.accepted:,}</td><td>{_interval(r.accept_rate_pct, r.accept_low_pct, r.accept_high_pct)}</td>"
            f"<td>{r.deflections:,}</td><td>{_interval(r.save_rate_pct, r.save_low_pct, r.save_high_pct)}</td>"
            f"<td>{r.lost_later:,}</td><td>{money(r.saved_mrr)}</td></tr>"
        )
    return f"<div class=wide><table class='groups {level}'>{head}{''.join(lines)}</table></div>"


def _comparison(c: ComparisonOut | None) -> str:
    if c is None:
        return "<td colspan=3>control</td>"
    if c.difference_pts is None:
        return "<td colspan=3>–</td>"
    verdict = "significant" if c.significant else "not yet"
    p_value = "–" if c.p_value is None else f"{c.p_value:.3f}"
    still = (
        "no difference to detect"
        if c.needed_per_variant is None
        else f"{c.still_needed_per_variant:,} more per variant (of {c.needed_per_variant:,})"
        if c.still_needed_per_variant
        else f"enough ({c.needed_per_variant:,} per variant)"
    )
    css = "up" if c.difference_pts < 0 else "down"
    return (
        f"<td><span class={css}>{c.difference_pts:+.1f}</span> pts</td><td>p = {p_value} ({verdict})</td>"
        f"<td>{html.escape(still)}</td>"
    )


def _experiments(experiments: list[ExperimentResult]) -> str:
    if not experiments:
        return "<p>No experiment has answers in this range.</p>"
    blocks = []
    for experiment in experiments:
        head = (
            "<tr><th>variant</th><th>offer</th><th>answers</th><th>accept rate (CI)</th><th>save rate (CI)</th>"
            "<th>saved MRR</th><th>save rate vs control</th><th>test</th><th>sample</th></tr>"
        )
        lines = "".join(
            f"<tr><td>{html.escape(v.variant)}{' (control)' if v.control else ''}</td>"
            f"<td>{html.escape(v.offer or '–')}</td><td>{v.answers:,}</td>"
            f"<td>{_interval(v.accept_rate_pct, v.accept_low_pct, v.accept_high_pct)}</td>"
            f"<td>{_interval(v.save_rate_pct, v.save_low_pct, v.save_high_pct)}</td><td>{money(v.saved_mrr)}</td>"
            + _comparison(None if v.control else v.save_vs_control)
            + "</tr>"
            for v in experiment.variants
        )
        blocks.append(
            f"<div class=experiment><h3>{html.escape(experiment.experiment)}</h3><p class=hint>control: "
            f"{html.escape(experiment.control)} (chosen by {html.escape(experiment.control_chosen_by)}); rates are of "
            "the answers assigned to each variant; two-proportion z-test, sample for 80% power at 5%.</p>"
            f"<div class=wide><table class=experiment-table>{head}{lines}</table></div></div>"
        )
    return "".join(blocks)


_EXTRA_STYLE = ".experiment{margin-bottom:18px}small{color:#667}"
