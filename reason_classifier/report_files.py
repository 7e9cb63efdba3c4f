"""What the trends and retention reports share in the files they write: their rows as CSV, and one
self-contained HTML page (style, plotly's JavaScript inline, a header of facts, sections).

The page carries plotly inline (about 4.5 MB), so it opens from a mail attachment or a shared
drive with no network; every text from the data is escaped by the callers' builders and by the
helpers here.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

CATEGORY_COLOURS = {
    "product": "#4C78A8",
    "pricing": "#F58518",
    "support": "#54A24B",
    "market": "#B279A2",
    "other": "#9D9D9D",
}
RETENTION_FOLDER = "retention"
"""Where the trends report looks for the retention report of the same answers (`retention SOURCE -o
TRENDS_DIR/retention`), to link to it; the retention report links back to the folder above."""


def rows_csv(rows: Iterable[BaseModel], columns: Sequence[str]) -> str:
    """A report's rows as CSV, missing values as empty cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        values = row.model_dump(mode="json")
        writer.writerow(["" if values[c] is None else values[c] for c in columns])
    return buffer.getvalue()


def charts_html(
    figures: list[tuple[str, Any]], numeric_x: Sequence[str] = (), responsive: bool = False
) -> dict[str, str]:
    """Each plotly figure, named, as a `<div id=chart-NAME>` in the reports' one look; the x axes are categories
    (periods, reasons), never numbers, except for the figures named in `numeric_x`."""
    for name, figure in figures:
        figure.update_layout(
            template="plotly_white",
            height=380,
            margin={"l": 60, "r": 20, "t": 60, "b": 40},
            legend={"orientation": "h", "y": -0.15},
            font={"family": "system-ui, sans-serif"},
        )
        if name not in numeric_x:
            figure.update_xaxes(type="category")
    config = {"displaylogo": False, "responsive": True} if responsive else {"displaylogo": False}
    return {
        name: figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{name}", config=config)
        for name, figure in figures
    }


def page(title: str, body: Sequence[str], extra_style: str = "") -> str:
    """The whole page around the `body` blocks; `title` is escaped here."""
    from plotly.offline import get_plotlyjs

    return _PAGE.format(
        title=html.escape(title), plotly=get_plotlyjs(), style=_STYLE + extra_style, body="\n".join(body)
    )


def facts_and_notes(facts: Sequence[tuple[str, str]], notes: Sequence[str]) -> str:
    """The header's facts as a definition list and the document's notes below it, all escaped."""
    items = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd></div>" for k, v in facts)
    listed = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"<dl class=facts>{items}</dl>" + (f"<ul class=notes>{listed}</ul>" if listed else "")


def generated_now() -> str:
    """When the page was made, as its header says it."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def section(title: str, content: str, class_: str = "") -> str:
    return f"<section class='{class_}'><h2>{html.escape(title)}</h2>{content}</section>"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


def money(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


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
