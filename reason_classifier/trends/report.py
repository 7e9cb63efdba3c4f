"""The trends report as files: `trends.csv`, `trends.json` and one self-contained `report.html` (the page
skeleton shared with the retention report, `report_files`); every text from the data is escaped.
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
from .aggregate import TrendReport
from .models import ALL, TrendRow, TrendsDocument

CSV_COLUMNS = list(TrendRow.model_fields)


def write_trends(report: TrendReport, output_dir: str | Path) -> dict[str, Path]:
    """Write trends.csv, trends.json and report.html into `output_dir`; each appears only when complete."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    document = report.document
    paths = {"csv": folder / "trends.csv", "json": folder / "trends.json", "html": folder / "report.html"}
    write_bytes_atomically(paths["csv"], rows_csv(document.rows, CSV_COLUMNS).encode("utf-8"))
    write_bytes_atomically(paths["json"], document.model_dump_json(indent=1).encode("utf-8"))
    retention = RETENTION_FOLDER + "/report.html" if (folder / RETENTION_FOLDER / "report.html").is_file() else None
    write_bytes_atomically(paths["html"], render_html(document, retention).encode("utf-8"))
    return paths


# ---------------------------------------------------------------- HTML


def render_html(document: TrendsDocument, retention_report: str | None = None) -> str:
    """The page; `retention_report` is a link to the retention report of the same answers, if there is one."""
    import plotly.graph_objects as go

    has_weight = document.columns.weight is not None
    overall = [r for r in document.rows if r.segment == ALL]
    categories = [r for r in overall if r.level == "category"]
    figures = []

    shares = go.Figure()
    for category in CATEGORIES:
        mine = [r for r in categories if r.category == category]
        shares.add_trace(
            go.Scatter(
                x=[r.period for r in mine],
                y=[r.share_pct for r in mine],
                name=category,
                stackgroup="shares",
                mode="lines",
                line={"width": 0.5, "color": CATEGORY_COLOURS[category]},
                customdata=[[r.answers] for r in mine],
                hovertemplate="%{x}: %{y:.1f}% (%{customdata[0]} answers)<extra>" + category + "</extra>",
            )
        )
    shares.update_layout(title="Share of answers by category (%)", yaxis={"range": [0, 100], "ticksuffix": "%"})
    figures.append(("shares", shares))

    lost = go.Figure()
    for category in CATEGORIES:
        mine = [r for r in categories if r.category == category]
        values = [r.revenue_lost if has_weight else r.answers for r in mine]
        lost.add_trace(
            go.Bar(x=[r.period for r in mine], y=values, name=category, marker_color=CATEGORY_COLOURS[category])
        )
    lost.update_layout(
        barmode="stack",
        title=(
            f"Revenue lost by reason per period (sum of {document.columns.weight})"
            if has_weight
            else "Answers by reason per period (no weight column)"
        ),
    )
    figures.append(("revenue", lost))

    if document.periods and has_weight:
        latest = document.latest_rows()
        mix = go.Figure()
        mix.add_trace(
            go.Bar(
                x=[r.category for r in latest],
                y=[r.share_pct for r in latest],
                name="share of customers",
                marker_color="#4C78A8",
            )
        )
        mix.add_trace(
            go.Bar(
                x=[r.category for r in latest],
                y=[r.revenue_share_pct for r in latest],
                name="share of revenue lost",
                marker_color="#E45756",
            )
        )
        mix.update_layout(
            barmode="group",
            title=f"Customers against revenue, {document.periods[-1].period} (%)",
            yaxis={"ticksuffix": "%"},
        )
        figures.append(("mix", mix))

    movers = document.top_movers
    if movers:
        movement = go.Figure(
            go.Bar(
                y=[f"{m.category} / {m.sub_reason}" for m in movers][::-1],
                x=[m.share_change_pts for m in movers][::-1],
                orientation="h",
                marker_color=["#54A24B" if (m.share_change_pts or 0) < 0 else "#E45756" for m in movers][::-1],
                hovertemplate="%{y}: %{x:+.1f} points<extra></extra>",
            )
        )
        movement.update_layout(
            title=f"Top movers of {document.periods[-1].period} (change of share, points)", xaxis={"ticksuffix": " pts"}
        )
        figures.append(("movers", movement))

    charts = charts_html(figures, numeric_x=("movers",), responsive=True)

    body = [_header(document, retention_report)]
    body.append(section("Category shares over time", charts["shares"]))
    body.append(
        section(
            "Revenue lost by reason" if has_weight else "Answers by reason", charts["revenue"] + _period_table(document)
        )
    )
    if "mix" in charts:
        body.append(
            section(
                "Customers against revenue",
                charts["mix"] + "<p class=hint>Customer-count and revenue shares can "
                "tell different stories: a few large accounts leaving for one reason weigh more in revenue.</p>",
            )
        )
    body.append(
        section(
            "Top movers of the last period",
            (
                (charts.get("movers", "") + _movers_table(document, movers))
                if movers
                else "<p>No change to show: a previous period is needed.</p>"
            )
            + _other_movers(document),
        )
    )
    for segment in document.columns.segments:
        body.append(section(f"By {segment}", _segment_table(document, segment), class_="segment"))
    body.append(section("Rising reasons: example answers", _examples(document)))
    body.append(section("Emerging reasons", _emerging(document)))
    return page(f"Churn reason trends · {document.source}", body)


def _header(document: TrendsDocument, retention_report: str | None = None) -> str:
    s = document.summary
    periods = document.periods
    span = f"{periods[0].period} to {periods[-1].period}" if periods else "no periods"
    facts = [
        ("source", document.source),
        ("periods", f"{len(periods)} × {document.options['period']} ({span})"),
        ("answers", f"{s.rows_reported:,} of {s.rows_read:,} rows"),
        ("time zone", document.options["timezone"]),
    ]
    if periods:
        last = periods[-1]
        facts.append((f"answers in {last.period}", f"{last.answers:,}"))
        if last.revenue_lost is not None:
            facts.append((f"revenue lost in {last.period}", f"{last.revenue_lost:,.2f}"))
    return (
        f"<header><h1>Churn reason trends</h1><p class=hint>generated {generated_now()}"
        + (
            f" · <a class=retention-link href='{html.escape(retention_report)}'>retention: what the save offers "
            "kept</a>"
            if retention_report
            else ""
        )
        + "</p>"
        + facts_and_notes(facts, document.notes)
        + "</header>"
    )


def _pts(value: float | None) -> str:
    if value is None:
        return "–"
    css = "up" if value > 0.05 else "down" if value < -0.05 else "flat"
    return f"<span class={css}>{value:+.1f}</span>"


def _period_table(document: TrendsDocument) -> str:
    has_weight = document.columns.weight is not None
    rows = [r for r in document.rows if r.segment == ALL and r.level == "category"]
    head = (
        "<tr><th>period</th><th>answers</th>"
        + ("<th>revenue lost</th>" if has_weight else "")
        + "".join(f"<th>{c}</th>" for c in CATEGORIES)
        + "</tr>"
    )
    lines = []
    for period in document.periods[::-1]:
        mine = {r.category: r for r in rows if r.period_start == period.start}
        cells = "".join(
            f"<td>{percent(mine[c].share_pct)}"
            + (f"<br><small>{money(mine[c].revenue_lost)}</small>" if has_weight else "")
            + "</td>"
            for c in CATEGORIES
        )
        lines.append(
            f"<tr><td>{period.period}</td><td>{period.answers:,}</td>"
            + (f"<td>{money(period.revenue_lost)}</td>" if has_weight else "")
            + cells
            + "</tr>"
        )
    caption = "share of answers" + (", and revenue lost below it" if has_weight else "") + "; latest period first"
    return (
        f"<details><summary>Every period as a table</summary><table><caption>{caption}</caption>"
        f"{head}{''.join(lines)}</table></details>"
    )


def _movers_table(document: TrendsDocument, movers: list[TrendRow]) -> str:
    has_weight = document.columns.weight is not None
    head = (
        "<tr><th>reason</th><th>answers</th><th>share</th><th>change (pts)</th>"
        + ("<th>revenue lost</th><th>revenue share</th><th>change (pts)</th>" if has_weight else "")
        + "</tr>"
    )
    lines = [
        f"<tr><td>{html.escape(m.category)} / {html.escape(m.sub_reason or '')}</td><td>{m.answers:,}</td>"
        f"<td>{percent(m.share_pct)}</td><td>{_pts(m.share_change_pts)}</td>"
        + (
            f"<td>{money(m.revenue_lost)}</td><td>{percent(m.revenue_share_pct)}</td><td>{_pts(m.revenue_share_change_pts)}</td>"
            if has_weight
            else ""
        )
        + "</tr>"
        for m in movers
    ]
    return f"<table class=movers>{head}{''.join(lines)}</table>"


def _other_movers(document: TrendsDocument) -> str:
    """`other` apart from the movers: not a reason to act on, but its rise says what the model cannot place."""
    if not document.other_movers:
        return ""
    return (
        "<div id=other-movers><h3>Answers the model could not place</h3><p class=hint>Not a reason anyone can act "
        "on, so not among the movers; a rise says the taxonomy or the model misses something (see emerging "
        "reasons).</p>" + _movers_table(document, document.other_movers) + "</div>"
    )


def _segment_table(document: TrendsDocument, segment: str) -> str:
    if not document.periods:
        return "<p>No answers.</p>"
    has_weight = document.columns.weight is not None
    last = document.periods[-1]
    rows = document.latest_rows(segment=segment)
    values = list(dict.fromkeys(r.segment_value for r in rows))
    head = (
        f"<tr><th rowspan=2>{html.escape(segment)}</th><th rowspan=2>answers</th>"
        + ("<th rowspan=2>revenue lost</th>" if has_weight else "")
        + "".join(f"<th colspan={3 if has_weight else 2}>{c}</th>" for c in CATEGORIES)
        + "</tr><tr>"
        + "".join("<th>share</th><th>pts</th>" + ("<th>of revenue</th>" if has_weight else "") for _ in CATEGORIES)
        + "</tr>"
    )
    lines = []
    for value in values:
        mine = {r.category: r for r in rows if r.segment_value == value}
        answers = sum(r.answers for r in mine.values())
        revenue = sum(r.revenue_lost or 0 for r in mine.values())
        cells = "".join(
            f"<td>{percent(mine[c].share_pct)}</td><td>{_pts(mine[c].share_change_pts)}</td>"
            + (f"<td>{percent(mine[c].revenue_share_pct)}</td>" if has_weight else "")
            for c in CATEGORIES
        )
        lines.append(
            f"<tr><td>{html.escape(value)}</td><td>{answers:,}</td>"
            + (f"<td>{money(revenue)}</td>" if has_weight else "")
            + cells
            + "</tr>"
        )
    caption = f"{last.period}: share of each value's answers, change against the period before" + (
        ", and share of its revenue lost" if has_weight else ""
    )
    return (
        f"<div class=wide><table class=segment-table><caption>{html.escape(caption)}</caption>"
        f"{head}{''.join(lines)}</table></div>"
    )


def _examples(document: TrendsDocument) -> str:
    if not document.examples:
        if document.columns.text is None:
            return "<p>No answer column, so no examples (pass --text-column).</p>"
        return "<p>No reason rose in the last period.</p>"
    blocks = []
    for group in document.examples:
        quotes = (
            "".join(f"<blockquote>{html.escape(a)}</blockquote>" for a in group.answers) or "<p>(no answer text)</p>"
        )
        blocks.append(
            f"<div class=example><h3>{html.escape(group.category)} / {html.escape(group.sub_reason)} "
            f"{_pts(group.share_change_pts)} pts</h3>{quotes}</div>"
        )
    return "<div class=examples>" + "".join(blocks) + "</div>"


def _emerging(document: TrendsDocument) -> str:
    emerging = document.emerging
    if emerging is None:
        return "<p>Not computed for this report (run with --emerging and an answer column).</p>"
    intro = (
        f"<p>{emerging.far:,} of {emerging.sampled:,} sampled answers of {html.escape(emerging.period)} "
        f"({emerging.answers_in_period:,} in all) sit far from every taxonomy sub-reason "
        f"(similarity below {emerging.threshold:.2f}).</p>"
    )
    if emerging.note:
        intro += f"<p class=hint>{html.escape(emerging.note)}</p>"
    if not emerging.reasons:
        return intro + "<p>No group of them is large enough to be a new reason.</p>"
    blocks = []
    for i, reason in enumerate(emerging.reasons, 1):
        quotes = "".join(f"<blockquote>{html.escape(a)}</blockquote>" for a in reason.examples)
        nearest = (
            f"nearest sub-reason: {html.escape(reason.nearest_sub_reason)} ({reason.similarity:.2f})"
            if reason.nearest_sub_reason and reason.similarity is not None
            else ""
        )
        blocks.append(
            f"<div class=example><h3>#{i} · {reason.size} answers ({reason.share_of_sample_pct:.1f}% of the "
            "sample)</h3>"
            f"<p><b>{html.escape(', '.join(reason.keywords))}</b></p><p class=hint>{nearest}</p>{quotes}</div>"
        )
    return intro + "<div class=examples>" + "".join(blocks) + "</div>"
