"""docs/benchmarks.md from bench/results/*.json: every benchmark's recorded numbers on one page, never edited by hand.

    python bench/report.py            # rewrite docs/benchmarks.md
    python bench/report.py --check    # exit 1 (and say so) if docs/benchmarks.md is not what the results give

Numbers copied into prose by hand drift from the runs they came from, so the page is generated and
tests/test_docs.py fails when the committed page differs from what the JSON files give. The output
depends only on the files: they are read in name order, keys in the order the JSON has them, every
number formatted the same way, and no clock is read. Each benchmark writes its own JSON shape; a few
get a table chosen for them (the question that benchmark answers), the rest a table laid out from the
shape itself, so a new benchmark appears without touching this script.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
RESULT_KEYS = ("results", "models", "macro_f1")
"""Where a benchmark keeps its measurements, in the order looked for; every other top-level key is how it was run."""
MAX_DETAIL_CHARS = 600
"""A line of run details longer than this is cut: the JSON file, linked beside it, has the rest."""

Table = tuple[list[str], list[list[str]]]


def cell(value: Any) -> str:
    """One number or word as a table cell: thousands separated, four significant digits, Markdown-safe."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Scalar leaves of nested dicts under dotted keys (`http.8.p99_ms`); a list is one leaf."""
    if not isinstance(value, dict):
        return {prefix: value}
    leaves: dict[str, Any] = {}
    for key, inner in value.items():
        leaves.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
    return leaves


def union(keys: Iterable[Iterable[str]]) -> list[str]:
    """Every key once, in the order first seen."""
    return list(dict.fromkeys(key for group in keys for key in group))


def markdown(table: Table) -> str:
    header, rows = table
    right = ["---:" if all(_is_number(row[i]) for row in rows if row[i] != "—") else "---" for i in range(len(header))]
    right[0] = "---"
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(right) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").replace("**", ""))
    except ValueError:
        return False
    return True


def shape_table(results: Any) -> Table:
    """A table from the shape alone: a list of records is one row each; a mapping of records is one row per key,
    turned on its side when there are fewer records than measurements (a few models, many numbers each)."""
    if isinstance(results, list):
        records = [flatten(item) for item in results]
        columns = union(records)
        return columns, [[cell(record.get(column)) for column in columns] for record in records]
    if isinstance(results, dict) and all(isinstance(v, dict) for v in results.values()):
        records = {str(name): flatten(record) for name, record in results.items()}
        columns = union(records.values())
        if len(records) < len(columns):
            return [""] + list(records), [
                [column] + [cell(record.get(column)) for record in records.values()] for column in columns
            ]
        return [""] + columns, [[name] + [cell(record.get(c)) for c in columns] for name, record in records.items()]
    leaves = flatten(results)
    return ["", "value"], [[key, cell(value)] for key, value in leaves.items()]


def bold_best(row: list[str], higher: bool = True) -> list[str]:
    """The row's best number in bold (all of them on a tie), its label cell untouched."""
    numbers = {i: float(text.replace(",", "")) for i, text in enumerate(row) if i and _is_number(text)}
    if not numbers:
        return row
    best = max(numbers.values()) if higher else min(numbers.values())
    return [f"**{text}**" if numbers.get(i) == best else text for i, text in enumerate(row)]


def accuracy_table(report: dict) -> Table:
    """Category macro-F1 of every model on every data set, the real sets' mean, then speed."""
    models = report.get("models_run") or union(report["results"].values())
    rows = []
    for data, by_model in report["results"].items():
        rows.append(bold_best([data] + [cell(by_model.get(m, {}).get("macro_f1")) for m in models]))
    real_mean = report.get("real_mean", {}).get("macro_f1")
    if real_mean:
        rows.append(bold_best(["real mean"] + [cell(real_mean.get(m)) for m in models]))
    for measure in ("answers_per_second", "fit_seconds"):
        rows.append(
            [measure.replace("_", " ")] + [cell(report.get("models", {}).get(m, {}).get(measure)) for m in models]
        )
    return ["data (category macro-F1)"] + models, rows


def trends_table(report: dict) -> Table:
    """One row per data size and engine: the engines are the comparison."""
    records = [
        {"rows": run["data"].get("rows"), "engine": name} | {k: v for k, v in engine.items() if k != "engine"}
        for run in report["results"]
        for name, engine in run["engines"].items()
    ]
    columns = union(records)
    return columns, [[cell(record.get(column)) for column in columns] for record in records]


def macro_f1_by_weight(report: dict) -> Table:
    """Macro-F1 per data set at each weight tried (accuracy and row counts stay in the JSON)."""
    results = {
        data: {w: m.get("macro_f1") for w, m in by_weight.items()} for data, by_weight in report["results"].items()
    }
    return shape_table(results)


SPECIAL: dict[str, Callable[[dict], Table]] = {
    "accuracy": accuracy_table,
    "trends": trends_table,
    "english_expert": macro_f1_by_weight,
}
"""Benchmarks (by the name before the first dot of their JSON file) whose question the plain shape hides."""


def details(report: dict, used: str | None) -> list[str]:
    """How the benchmark was run: every top-level entry other than its measurements, one line each."""
    lines = []
    for key, value in report.items():
        if key == used or key == "real_mean":
            continue
        if isinstance(value, dict):
            text = ", ".join(f"{k} {cell(v)}" for k, v in flatten(value).items())
        else:
            text = cell(value)
        if len(text) > MAX_DETAIL_CHARS:
            text = text[:MAX_DETAIL_CHARS].rstrip() + " …"
        lines.append(f"- {key}: {text}")
    return lines


def section(path: Path) -> str:
    report = json.loads(path.read_text(encoding="utf-8"))
    benchmark, _, variant = path.stem.partition(".")
    script = ROOT / "bench" / f"{benchmark}.py"
    source = f"`bench/{script.name}`" if script.exists() else f"`{benchmark}`"
    intro = f"From {source}, [`bench/results/{path.name}`](../bench/results/{path.name})"
    intro += f"; a kept earlier run: {variant}." if variant else "."
    used = next((key for key in RESULT_KEYS if key in report), None)
    if benchmark in SPECIAL:
        table = SPECIAL[benchmark](report)
        used = "results"
    elif used is not None:
        table = shape_table(report[used])
    else:
        table = shape_table(report)
    parts = [f"## {path.stem}", intro, markdown(table)]
    run = details(report, used if used else None) if used else []
    if run:
        parts.append("How it was run:\n\n" + "\n".join(run))
    return "\n\n".join(parts)


def result_files(results: Path) -> list[Path]:
    """By benchmark name, each benchmark's current run (`NAME.json`) before its kept earlier runs (`NAME.RUN.json`)."""
    return sorted(results.glob("*.json"), key=lambda f: (f.stem.partition(".")[0], f.stem.partition(".")[2]))


def render(results: Path = RESULTS) -> str:
    files = result_files(results)
    head = (
        "# Benchmarks\n\n"
        "Generated by `python bench/report.py` from `bench/results/*.json`; do not edit by hand (a test fails when\n"
        "this page and the results disagree). What each benchmark means and the conclusions drawn from it are in\n"
        "[model.md](model.md), [tagging.md](tagging.md), [service.md](service.md), [trends.md](trends.md) and\n"
        "[discovery.md](discovery.md); every script prints its table and writes its JSON when run.\n\n"
        + "\n".join(f"- [{f.stem}](#{anchor(f.stem)})" for f in files)
    )
    return "\n\n".join([head, *(section(f) for f in files)]) + "\n"


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than - and _ dropped, spaces to -."""
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="Only check that docs/benchmarks.md is up to date.")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != page:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python bench/report.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)} from {len(result_files(RESULTS))} result files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
