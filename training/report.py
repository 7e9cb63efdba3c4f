"""An evaluation a person can read: confusion matrix and reliability diagram as PNG, one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from reason_classifier.atomic import write_bytes_atomically


def confusion_png(result: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = result["confusion_matrix"]["labels"]
    matrix = np.array(result["confusion_matrix"]["rows_true_columns_predicted"])
    figure, axes = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels, rotation=30)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(
            column, row, str(count), ha="center", va="center", color="white" if shares[row, column] > 0.5 else "black"
        )
    axes.set_title(f"{result['data']}: confusion matrix")
    figure.tight_layout()
    return _png(figure)


def reliability_png(result: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = result["calibration"]["reliability"]
    figure, axes = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    axes.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", label="model")
    axes.set_xlabel("confidence")
    axes.set_ylabel("accuracy")
    axes.set_title(f"reliability (ECE {result['calibration']['ece']:.3f})")
    axes.legend(loc="upper left")
    figure.tight_layout()
    return _png(figure)


def _png(figure) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(result: dict, directory: str | Path, model_name: str) -> dict[str, Path]:
    """metrics.json, confusion.png, reliability.png and report.html (images inlined) in `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    images = {"confusion.png": confusion_png(result), "reliability.png": reliability_png(result)}
    paths = {"metrics.json": directory / "metrics.json", "report.html": directory / "report.html"}
    write_bytes_atomically(paths["metrics.json"], (json.dumps(result, indent=2, ensure_ascii=False) + "\n").encode())
    for name, data in images.items():
        paths[name] = directory / name
        write_bytes_atomically(paths[name], data)
    inline = {name: base64.b64encode(data).decode() for name, data in images.items()}
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation of {html.escape(model_name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}}table{{border-collapse:collapse;margin:1rem 0}}
td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}}td:first-child,th:first-child{{text-align:left}}</style></head>
<body><h1>{html.escape(model_name)} on {html.escape(result["data"])}</h1>
<p>{result["rows"]} answers · accuracy <b>{result["accuracy"]:.3f}</b> · macro-F1 <b>{result["macro_f1"]:.3f}</b> ·
coverage {result["coverage"]:.3f} · expected calibration error {result["calibration"]["ece"]:.3f}</p>
<h2>Per category</h2>
{_table(["category", "precision", "recall", "F1", "support"], [[c, m["precision"], m["recall"], m["f1"], m["support"]] for c, m in result["per_category"].items()])}
<h2>Per language</h2>
{_table(["language", "rows", "accuracy", "macro-F1"], [[lang, m["rows"], m["accuracy"], m["macro_f1"]] for lang, m in result["per_language"].items()])}
<h2>Confusion matrix</h2><img alt="confusion matrix" src="data:image/png;base64,{inline["confusion.png"]}">
<h2>Calibration</h2><img alt="reliability diagram" src="data:image/png;base64,{inline["reliability.png"]}">
<h2>Coverage against accuracy</h2><p>Accuracy on the answers kept when those below a confidence are set aside.</p>
{_table(["threshold", "coverage", "accuracy"], [[p["threshold"], p["coverage"], p["accuracy"]] for p in result["calibration"]["coverage_curve"]])}
</body></html>
"""  # noqa: E501 - the page as written: its long lines are HTML and CSS
    write_bytes_atomically(paths["report.html"], page.encode())
    return paths
