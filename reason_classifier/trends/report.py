"""The trends report as files: `trends.csv`, `trends.json` and one self-contained `report.html`.

The page carries plotly's JavaScript inline (about 4.5 MB), so it opens from a mail attachment or
a shared drive with no network; every text from the data is escaped.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from ..atomic import write_bytes_atomically
from ..taxonomy import CATEGORIES
from .aggregate import ALL, TrendReport
from .models import TrendRow, TrendsDocument

CATEGORY_COLOURS = {
    "product": "#4C78A8",
    "pricing": "#F58518",
    "support": "#54A24B",
    "market": "#B279A2",
    "other": "#9D9D9D",
}
CSV_COLUMNS = list(TrendRow.model_fields)
RETENTION_FOLDER = "retention"
"""Where the trends report looks for the retention report of the same answers (`retention SOURCE -o
TRENDS_DIR/retention`), to link to it."""


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


def rows_csv(rows: Iterable[BaseModel], columns: Sequence[str]) -> str:
    """A report's rows as CSV, missing values as empty cells; shared by the trends and retention reports."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        values = row.model_dump(mode="json")
        writer.writerow(["" if values[c] is None else values[c] for c in columns])
    return buffer.getvalue()


# ---------------------------------------------------------------- HTML


def render_html(document: TrendsDocument, retention_report: str | None = None) -> str:
    """The page; `retention_report` is a link to the retention report of the same answers, if there is one."""
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

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
        last = document.periods[-1].start
        latest = [r for r in categories if r.period_start == last]
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

    for _, figure in figures:
        figure.update_layout(
            template="plotly_white",
            height=380,
            margin={"l": 60, "r": 20, "t": 60, "b": 40},
            legend={"orientation": "h", "y": -0.15},
            font={"family": "system-ui, sans-serif"},
        )
    for name, figure in figures:
        if name != "movers":
            figure.update_xaxes(type="category")  # periods and categories, never a numeric axis
    charts = {
        name: figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"chart-{name}",
            config={"displaylogo": False, "responsive": True},
        )
        for name, figure in figures
    }

    body = [_header(document, retention_report)]
    body.append(_section("Category shares over time", charts["shares"]))
    body.append(
        _section(
            "Revenue lost by reason" if has_weight else "Answers by reason", charts["revenue"] + _period_table(document)
        )
    )
    if "mix" in charts:
        body.append(
            _section(
                "Customers against revenue",
                charts["mix"] + "<p class=hint>Customer-count and revenue shares can "
                "tell different stories: a few large accounts leaving for one reason weigh more in revenue.</p>",
            )
        )
    body.append(
        _section(
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
        body.append(_section(f"By {segment}", _segment_table(document, segment), class_="segment"))
    body.append(_section("Rising reasons: example answers", _examples(document)))
    body.append(_section("Emerging reasons", _emerging(document)))
    return _PAGE.format(
        title=html.escape(f"Churn reason trends · {document.source}"),
        plotly=get_plotlyjs(),
        style=_STYLE,
        body="\n".join(body),
    )


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
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    items = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd></div>" for k, v in facts)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in document.notes)
    return (
        f"<header><h1>Churn reason trends</h1><p class=hint>generated {generated}"
        + (
            f" · <a class=retention-link href='{html.escape(retention_report)}'>retention: what the save offers "
            "kept</a>"
            if retention_report
            else ""
        )
        + f"</p><dl class=facts>{items}</dl>"
        + (f"<ul class=notes>{notes}</ul>" if notes else "")
        + "</header>"
    )


def _section(title: str, content: str, class_: str = "") -> str:
    return f"<section class='{class_}'><h2>{html.escape(title)}</h2>{content}</section>"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


def _pts(value: float | None) -> str:
    if value is None:
        return "–"
    css = "up" if value > 0.05 else "down" if value < -0.05 else "flat"
    return f"<span class={css}>{value:+.1f}</span>"


def _money(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


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
            f"<td>{_pct(mine[c].share_pct)}"
            + (f"<br><small>{_money(mine[c].revenue_lost)}</small>" if has_weight else "")
            + "</td>"
            for c in CATEGORIES
        )
        lines.append(
            f"<tr><td>{period.period}</td><td>{period.answers:,}</td>"
            + (f"<td>{_money(period.revenue_lost)}</td>" if has_weight else "")
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
        f"<td>{_pct(m.share_pct)}</td><td>{_pts(m.share_change_pts)}</td>"
        + (
            f"<td>{_money(m.revenue_lost)}</td><td>{_pct(m.revenue_share_pct)}</td><td>{_pts(m.revenue_share_change_pts)}</td>"
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
    rows = [r for r in document.rows if r.segment == segment and r.level == "category" and r.period_start == last.start]
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
            f"<td>{_pct(mine[c].share_pct)}</td><td>{_pts(mine[c].share_change_pts)}</td>"
            + (f"<td>{_pct(mine[c].revenue_share_pct)}</td>" if has_weight else "")
            for c in CATEGORIES
        )
        lines.append(
            f"<tr><td>{html.escape(value)}</td><td>{answers:,}</td>"
            + (f"<td>{_money(revenue)}</td>" if has_weight else "")
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


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header,section{background:#fff;margin:16px auto;max-width:1200px;padding:16px 24px;border-radius:8px;box-shadow:0 1px 3px #0001}
h1{margin:0 0 4px}h2{margin-top:0;font-size:1.25em}h3{font-size:1em;margin:0 0 6px}
.hint{color:#667;font-size:.9em}.facts{display:flex;flex-wrap:wrap;gap:8px 28px;margin:12px 0}.facts dt{color:#667;font-size:.8em}
.facts dd{margin:0;font-weight:600}.notes{color:#8a5a00;margin:8px 0 0}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}th,td{border-bottom:1px solid #e3e6ea;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}caption{text-align:left;color:#667;padding:4px 0}
.up{color:#c0392b}.down{color:#1e8449}.flat{color:#667}
.examples{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
.example{border:1px solid #e3e6ea;border-radius:6px;padding:10px}
blockquote{margin:6px 0;padding:4px 10px;border-left:3px solid #c8ced6;color:#333}
.wide{overflow-x:auto}.segment-table{font-size:.82em}
details summary{cursor:pointer;color:#445;margin:8px 0}
"""  # noqa: E501 - CSS as written

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{style}</style>
<script type="text/javascript">{plotly}</script>
</head><body>
{body}
</body></html>
"""
