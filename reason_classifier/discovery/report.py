"""`report.html` of a discovery run: one self-contained page people read instead of the YAML.

A 2-D map of the answers coloured by cluster (plotly, with its JavaScript inlined, so the page
opens with no network), then each cluster's size, share, proposal, keywords, languages and
typical answers. The map places a seeded sample of at most `max_points` answers with UMAP on
their cosine neighbours (the same method that clustered them, in two dimensions). Every answer
text is HTML-escaped: answers are customer input.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from ..atomic import write_bytes_atomically
from .clustering import UNASSIGNED
from .reduction import exact_neighbours, umap_layout
from .review_file import ReviewFile

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
    "#ad494a",
    "#637939",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
    "#6baed6",
)


def map_coordinates(embeddings: np.ndarray, max_points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the answers drawn, their 2-D coordinates)."""
    n = len(embeddings)
    if n > max_points:
        chosen = np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))
    else:
        chosen = np.arange(n)
    if len(chosen) < 4:
        return chosen, np.zeros((len(chosen), 2), dtype=np.float32)
    points = embeddings[chosen]
    indices, distances = exact_neighbours(points, min(15, len(chosen) - 1))
    return chosen, umap_layout(points, indices, distances, 2, seed)


def write_discovery_report(
    path: Path,
    review: ReviewFile,
    embeddings: np.ndarray,
    labels: np.ndarray,
    texts: list[str],
    languages: list[str],
    max_points: int = 5_000,
    seed: int = 0,
) -> Path:
    chosen, xy = map_coordinates(embeddings, max_points, seed)
    page = render_page(review, chosen, xy, labels, texts, languages)
    write_bytes_atomically(Path(path), page.encode("utf-8"))
    return Path(path)


def render_page(
    review: ReviewFile, chosen: np.ndarray, xy: np.ndarray, labels: np.ndarray, texts: list[str], languages: list[str]
) -> str:
    import plotly.graph_objects as go
    import plotly.io as pio

    names = {c.id: c.name for c in review.clusters}
    figure = go.Figure()
    drawn_labels = labels[chosen] if len(chosen) else np.zeros(0, dtype=np.int64)
    for cluster in [*sorted(names), UNASSIGNED]:
        mask = drawn_labels == cluster
        if not mask.any():
            continue
        rows = chosen[mask]
        title = f"{cluster}: {names[cluster]}" if cluster != UNASSIGNED else "unassigned"
        hover = [
            f"<b>{html.escape(_short(title, 60))}</b><br>{html.escape(_short(texts[i], 140))}"
            f"{' (' + html.escape(languages[i]) + ')' if languages[i] else ''}"
            for i in rows
        ]
        figure.add_trace(
            go.Scatter(
                x=xy[mask, 0].round(3),
                y=xy[mask, 1].round(3),
                mode="markers",
                name=html.escape(_short(title, 40)),
                text=hover,
                hoverinfo="text",
                marker={
                    "size": 5 if cluster != UNASSIGNED else 4,
                    "opacity": 0.75 if cluster != UNASSIGNED else 0.4,
                    "color": PALETTE[cluster % len(PALETTE)] if cluster != UNASSIGNED else "#b0b0b0",
                },
            )
        )
    figure.update_layout(
        height=640,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        template="plotly_white",
        xaxis={"visible": False},
        yaxis={"visible": False},
        legend={"itemsizing": "constant", "font": {"size": 11}},
        title={"text": f"{len(chosen):,} of {review.answers:,} answers, coloured by cluster", "font": {"size": 14}},
    )
    map_html = pio.to_html(
        figure,
        include_plotlyjs=True,
        full_html=False,
        div_id="answer-map",
        config={"displaylogo": False, "responsive": True},
    )
    summary = review.summary
    largest = max([c.size for c in review.clusters] + [review.unassigned.size, 1])
    bars = "".join(
        f'<div class="bar"><span class="label">{c.id}: {html.escape(_short(c.name, 40))}</span>'
        f'<span class="fill" style="width:{100 * c.size / largest:.1f}%;'
        f'background:{PALETTE[c.id % len(PALETTE)]}"></span>'
        f'<span class="count">{c.size:,} ({c.share:.1%})</span></div>'
        for c in review.clusters
    ) + (
        f'<div class="bar"><span class="label">unassigned</span><span class="fill" style="width:'
        f'{100 * review.unassigned.size / largest:.1f}%;background:#b0b0b0"></span>'
        f'<span class="count">{review.unassigned.size:,} ({review.unassigned.share:.1%})</span></div>'
    )
    cards = "".join(_card(c) for c in review.clusters)
    unassigned_examples = "".join(f"<li>{html.escape(t)}</li>" for t in review.unassigned.examples)
    facts = [
        ("input", review.input),
        ("answers", f"{review.answers:,} of {review.rows:,} rows"),
        ("rows not clustered (empty, not text, too long, malformed)", f"{review.invalid_rows:,}"),
        ("clusters", f"{len(review.clusters)}"),
        ("clustered sample", f"{summary.get('sample_size', 0):,} answers"),
        (
            "noise assigned to the nearest cluster",
            f"{summary.get('noise_assigned', 0) + summary.get('out_of_sample_assigned', 0):,}",
        ),
        ("unassigned", f"{review.unassigned.size:,} ({review.unassigned.share:.1%})"),
        ("encoder", review.encoder),
        ("min_cluster_size", str(summary.get("min_cluster_size", ""))),
        ("seed", str(review.seed)),
    ]
    facts_html = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Discovered reasons: {html.escape(Path(review.input).name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1200px; color: #222; padding: 0 16px; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 18px; margin-top: 32px; }}
table.facts th {{ text-align: left; font-weight: normal; color: #555; padding-right: 16px; }}
.bar {{ display: grid; grid-template-columns: 320px 1fr 120px; align-items: center; gap: 8px; margin: 2px 0; font-size: 13px; }}
.bar .fill {{ height: 12px; border-radius: 2px; display: block; }} .bar .count {{ color: #555; }}
.cluster {{ border: 1px solid #ddd; border-left: 6px solid #999; border-radius: 4px; padding: 10px 14px; margin: 12px 0; }}
.cluster h3 {{ margin: 0 0 6px; font-size: 16px; }} .meta {{ color: #555; font-size: 13px; }}
.keywords span {{ display: inline-block; background: #f0f0f0; border-radius: 3px; padding: 1px 6px; margin: 2px; font-size: 13px; }}
.proposal.new {{ color: #b15c00; font-weight: 600; }} ul.examples {{ margin: 6px 0 0; font-size: 14px; }}
</style></head><body>
<h1>Discovered reasons in {html.escape(Path(review.input).name)}</h1>
<table class="facts">{facts_html}</table>
<p class="meta">Edit <code>clusters.yaml</code> beside this page (name, category, sub_reason, merge_into, or category: drop),
then run <code>reason-classifier label FOLDER -o labelled.csv</code>.</p>
<h2>Map</h2>
<p class="meta">Each dot is an answer; nearby dots say similar things. Hover to read; click a cluster in the legend to hide it.</p>
{map_html}
<h2>Cluster sizes</h2>
<div id="sizes">{bars}</div>
<h2>Clusters</h2>
{cards}
<h2>Unassigned answers ({review.unassigned.size:,})</h2>
<p class="meta">Far from every cluster; left out of the labelled data. Some of them:</p>
<ul class="examples">{unassigned_examples}</ul>
</body></html>
"""  # noqa: E501 - the page as written: its long lines are HTML and CSS


def _card(cluster) -> str:
    proposed = cluster.proposed
    if proposed is None:
        proposal = ""
    elif proposed.sub_reason == "new":
        proposal = (
            f'<span class="proposal new">new (nearest: {html.escape(proposed.category)}/'
            f"{html.escape(proposed.nearest_sub_reason)}, similarity {proposed.similarity:.2f})</span>"
        )
    else:
        proposal = (
            f'<span class="proposal">{html.escape(proposed.category)}/{html.escape(proposed.sub_reason)} '
            f"(similarity {proposed.similarity:.2f})</span>"
        )
    keywords = "".join(f"<span>{html.escape(k)}</span>" for k in cluster.keywords)
    languages = ", ".join(f"{html.escape(k)} {v}" for k, v in cluster.languages.items())
    examples = "".join(f"<li>{html.escape(t)}</li>" for t in cluster.examples)
    color = PALETTE[cluster.id % len(PALETTE)]
    return (
        f'<div class="cluster" id="cluster-{cluster.id}" style="border-left-color:{color}">'
        f"<h3>{cluster.id}: {html.escape(cluster.name)}</h3>"
        f'<div class="meta">{cluster.size:,} answers ({cluster.share:.1%}) · languages: {languages or "unknown"} · '
        f"proposed: {proposal}</div>"
        f'<div class="keywords">{keywords}</div><ul class="examples">{examples}</ul></div>'
    )


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
