"""Time and peak memory of reason trends over a tagged export: DuckDB (what `trends` runs) against plain pandas.

    python bench/trends.py                       # 100,000 and 1,000,000 rows
    python bench/trends.py --rows 20000          # quick check

The tagged export is generated once per size, deterministically from `--seed`: a year of
cancellations (1 July 2025 to 30 June 2026, ISO timestamps with offsets), four plans with their MRR,
monthly and annual contracts, tenure in months, and categories whose shares drift over the year
(pricing grows from 18 % to 30 %, support falls, a payment-failure wave in the spring); answers are
the taxonomy's seed answers in seven languages, 1 % of rows are unclassified (empty answer).

Each engine runs in its own worker process, so its peak RSS (VmHWM) is its own:
- `duckdb`: `compute_trends` as the CLI calls it (monthly periods, by plan and contract, MRR
  weight, examples of rising reasons), then `write_trends` (trends.csv, trends.json, report.html)
  timed apart;
- `pandas`: the plain way: `read_csv` of the needed columns, `to_datetime`, a month column, and one
  groupby per segment with shares — the same counts, without empty periods, checks or report.
- `store`: `compute_trends` on the service's SQLite store holding the same rows (read through
  SQLAlchemy in chunks into DuckDB), by plan and the stored metadata's contract.
All must agree on the answers per month and category; the run fails otherwise.

Results: a table on the terminal and JSON in bench/results/trends.json. Run heavy sizes under
`flock /tmp/cpu.lock` when the machine is shared, and read `load_before` in the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPOSITORY = BENCH.parent
DEFAULT_OUTPUT = BENCH / "results" / "trends.json"
TARGET_SECONDS_1M = 30.0

PLANS = (
    ("starter", 0.45, 19, 29),
    ("pro", 0.35, 49, 99),
    ("business", 0.17, 199, 499),
    ("enterprise", 0.03, 1500, 6000),
)
SEGMENTS = ("plan", "contract")


# ---------------------------------------------------------------- data


def generate_export(path: Path, rows: int, seed: int) -> dict:
    """A tagged export of `rows` rows written to `path`; returns what the data is like."""
    import numpy as np
    import pandas as pd

    from reason_classifier.taxonomy import Taxonomy

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    taxonomy = Taxonomy.load()
    examples: dict[str, list[tuple[str, str]]] = {}
    for example in taxonomy.examples():
        examples.setdefault(example.sub_reason, []).append((example.text, example.language or "en"))
    sub_reasons = [s for s in taxonomy.sub_reason_names if s in examples]

    start = datetime(2025, 7, 1, tzinfo=UTC).timestamp()
    seconds = rng.uniform(0, 365 * 86400, rows)
    fraction = seconds / (365 * 86400)  # 0 at the start of the year, 1 at its end
    weights = np.ones((rows, len(sub_reasons)))
    index = {s: i for i, s in enumerate(sub_reasons)}
    for name in ("too_expensive", "plan_mismatch", "price_increase"):
        weights[:, index[name]] *= 1.0 + 1.2 * fraction
    for name in ("slow_response", "unresolved_issue", "poor_service"):
        weights[:, index[name]] *= 1.4 - 0.8 * fraction
    weights[:, index["payment_failed"]] *= 1.0 + 4.0 * np.exp(-(((fraction - 0.8) / 0.05) ** 2))
    weights /= weights.sum(axis=1, keepdims=True)
    picks = (weights.cumsum(axis=1) > rng.random(rows)[:, None]).argmax(axis=1)

    plan_names = np.array([p[0] for p in PLANS])
    plan = rng.choice(len(PLANS), size=rows, p=[p[1] for p in PLANS])
    low, high = np.array([p[2] for p in PLANS]), np.array([p[3] for p in PLANS])
    mrr = np.round(rng.uniform(low[plan], high[plan]), 2)
    contract = np.where(rng.random(rows) < 0.3, "annual", "monthly")
    tenure = rng.geometric(1 / 14, rows)
    pool = [examples[s] for s in sub_reasons]
    choice = rng.integers(0, 1_000_000, rows)
    answers = [pool[p][c % len(pool[p])] for p, c in zip(picks, choice, strict=True)]
    empty = rng.random(rows) < 0.01
    category = np.array([taxonomy.category_of(s) for s in sub_reasons])[picks]
    sub = np.array(sub_reasons, dtype=object)[picks]
    offsets = rng.choice(["+00:00", "+02:00", "-05:00"], size=rows)
    stamps = pd.to_datetime(start + seconds, unit="s", utc=True)
    table = pd.DataFrame(
        {
            "customer_id": [f"cus_{i:07d}" for i in range(rows)],
            "cancelled_at": pd.Series(stamps.strftime("%Y-%m-%dT%H:%M:%S")) + pd.Series(offsets),
            "plan": plan_names[plan],
            "contract": contract,
            "tenure_months": tenure,
            "mrr": mrr,
            "answer": np.where(empty, "", [a for a, _ in answers]),
            "category": np.where(empty, "other", category),
            "sub_reason": np.where(empty, "", sub),
            "confidence": np.where(empty, np.nan, np.round(rng.uniform(0.3, 0.99, rows), 4)),
            "language": np.where(empty, "", [lang for _, lang in answers]),
            "error": np.where(empty, "empty answer", ""),
        }
    )
    # The offset is only a label here (the instant is UTC); what matters is that the parser reads offsets.
    table.to_csv(path, index=False)
    return {
        "rows": rows,
        "seed": seed,
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "generate_seconds": round(time.perf_counter() - started, 1),
    }


# ---------------------------------------------------------------- workers


def build_store(export: Path, database: Path) -> float:
    """The service's SQLite store (its own table definition) holding the export's rows; returns seconds."""
    import pandas as pd
    from sqlalchemy import create_engine

    from reason_classifier.service.store import classified_answers, metadata

    started = time.perf_counter()
    engine = create_engine(f"sqlite:///{database}")
    metadata.create_all(engine)
    for chunk in pd.read_csv(export, dtype=str, keep_default_na=False, chunksize=100_000):
        when = pd.to_datetime(chunk["cancelled_at"], utc=True, format="ISO8601").dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        rows = pd.DataFrame(
            {
                "created_at": when,
                "request_id": chunk["customer_id"],
                "item": 0,
                "text": chunk["answer"],
                "customer_id": chunk["customer_id"],
                "plan": chunk["plan"],
                "mrr": pd.to_numeric(chunk["mrr"]),
                "metadata": '{"contract": "' + chunk["contract"] + '"}',
                "category": chunk["category"],
                "sub_reason": chunk["sub_reason"].where(chunk["error"] == "", None),
                "abstained": 0,
                "model_version": "bench",
            }
        )
        rows.to_sql(classified_answers.name, engine, if_exists="append", index=False, method=None)
    engine.dispose()
    return time.perf_counter() - started


def worker(engine: str, export: str) -> None:
    imported = time.perf_counter()
    if engine == "duckdb":
        # aggregate and report are imported here, so that their import time is measured apart from the computing
        from reason_classifier.trends import TrendOptions, aggregate, compute_trends, write_trends  # noqa: F401
        from reason_classifier.trends import report as _report  # noqa: F401

        started = time.perf_counter()
        report = compute_trends(export, TrendOptions(period="month", by=SEGMENTS, weight="mrr"))
        computed = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            write_trends(report, folder)
        written = time.perf_counter()
        counts = {
            f"{r.period}/{r.category}": r.answers
            for r in report.document.rows
            if r.segment == "all" and r.level == "category" and r.answers
        }
        result = {
            "seconds": computed - started,
            "write_seconds": written - computed,
            "output_rows": len(report.document.rows),
        }
    elif engine == "store":
        from reason_classifier.trends import TrendOptions, compute_trends

        started = time.perf_counter()
        report = compute_trends(export, TrendOptions(period="month", by=("plan", "metadata.contract"), examples=0))
        counts = {
            f"{r.period}/{r.category}": r.answers
            for r in report.document.rows
            if r.segment == "all" and r.level == "category" and r.answers
        }
        result = {
            "seconds": time.perf_counter() - started,
            "write_seconds": None,
            "output_rows": len(report.document.rows),
        }
    else:
        import pandas as pd

        started = time.perf_counter()
        columns = ["cancelled_at", "category", "sub_reason", "mrr", *SEGMENTS]
        table = pd.read_csv(export, usecols=columns, dtype=str, keep_default_na=False)
        when = pd.to_datetime(table["cancelled_at"], utc=True, format="ISO8601")
        table["period"] = when.dt.tz_localize(None).dt.to_period("M").astype(str)
        table["mrr"] = pd.to_numeric(table["mrr"].replace("", None))
        table["sub_reason"] = table["sub_reason"].where(table["sub_reason"] != "", "unclassified")
        parts = []
        for segment in (None, *SEGMENTS):
            keys = ["period", "category", "sub_reason"] + ([segment] if segment else [])
            grouped = table.groupby(keys).agg(answers=("mrr", "size"), revenue=("mrr", "sum")).reset_index()
            totals = grouped.groupby(["period"] + ([segment] if segment else []))[["answers", "revenue"]].transform(
                "sum"
            )
            grouped["share_pct"] = 100 * grouped["answers"] / totals["answers"]
            grouped["revenue_share_pct"] = 100 * grouped["revenue"] / totals["revenue"]
            parts.append(grouped)
        computed = time.perf_counter()
        overall = parts[0].groupby(["period", "category"])["answers"].sum()
        counts = {f"{p}/{c}": int(n) for (p, c), n in overall.items() if n}
        result = {"seconds": computed - started, "write_seconds": None, "output_rows": sum(len(p) for p in parts)}
    result.update(
        {
            "import_seconds": round(started - imported, 2),
            "engine": engine,
            "peak_rss_mib": round(_peak_rss_mib(), 1),
            "counts": counts,
        }
    )
    print(json.dumps(result), flush=True)


def _peak_rss_mib() -> float:
    """Peak RSS of this process image: VmHWM on Linux. Not ru_maxrss, which Linux carries over from the
    parent across fork and exec, so every worker would report the launcher's peak after it generated the data."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def run_worker(engine: str, export: Path) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", engine, str(export)]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=REPOSITORY)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"{engine} worker failed (exit {completed.returncode}):\n{completed.stdout}")
    return json.loads(lines[-1])


# ---------------------------------------------------------------- report


def machine() -> dict:
    cpu_model = None
    with contextlib.suppress(OSError, StopIteration):
        cpu_model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("reason-classifier", "duckdb", "pandas", "pyarrow", "plotly"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--no-store",
        dest="store",
        action="store_false",
        help="skip the service's SQLite store as a source (read through SQLAlchemy)",
    )
    parser.add_argument("--worker", nargs=2, metavar=("ENGINE", "EXPORT"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        worker(*arguments.worker)
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    report = {
        "benchmark": "trends",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "load_before": os.getloadavg(),
        "seed": arguments.seed,
        "measured": "each engine in its own process on the same tagged CSV export; peak RSS = VmHWM of that process; "
        "duckdb = compute_trends (monthly, by plan and contract, MRR weight, examples), write = "
        "trends.csv/json/report.html",
        "results": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-trends-") as folder:
        for rows in arguments.rows:
            export = Path(folder) / f"export-{rows}.csv"
            data = generate_export(export, rows, arguments.seed)
            console.print(
                f"{rows:,} rows: {data['file_mib']} MiB generated in {data['generate_seconds']} s", highlight=False
            )
            results = {engine: run_worker(engine, export) for engine in ("duckdb", "pandas")}
            if arguments.store:
                database = Path(folder) / f"store-{rows}.db"
                data["store_build_seconds"] = round(build_store(export, database), 1)
                results["store"] = run_worker("store", database)
                database.unlink()
            if any(r["counts"] != results["pandas"]["counts"] for r in results.values()):
                raise SystemExit(f"{rows} rows: the engines disagree on the answers per month and category")
            for result in results.values():
                result.pop("counts")
            report["results"].append({"data": data, "engines": results})
            export.unlink()
    report["load_after"] = os.getloadavg()

    table = Table(
        title=(
            f"trends over a tagged CSV export (load before {report['load_before'][0]:.2f}, after "
            f"{report['load_after'][0]:.2f})"
        )
    )
    for column in ("rows", "file MiB", "engine", "compute s", "write s", "peak RSS MiB", "rows/s"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for entry in report["results"]:
        rows = entry["data"]["rows"]
        for engine, result in entry["engines"].items():
            write = result["write_seconds"]
            table.add_row(
                f"{rows:,}",
                str(entry["data"]["file_mib"]),
                engine,
                f"{result['seconds']:.2f}",
                "–" if write is None else f"{write:.2f}",
                f"{result['peak_rss_mib']:.0f}",
                f"{rows / result['seconds']:,.0f}",
            )
    console.print(table)
    million = [e for e in report["results"] if e["data"]["rows"] >= 1_000_000]
    if million:
        total = million[0]["engines"]["duckdb"]["seconds"] + million[0]["engines"]["duckdb"]["write_seconds"]
        report["target"] = {
            "rows": 1_000_000,
            "seconds": TARGET_SECONDS_1M,
            "duckdb_total_seconds": round(total, 2),
            "met": total < TARGET_SECONDS_1M,
        }
        console.print(
            f"1M rows, compute and write: {total:.1f} s (target < {TARGET_SECONDS_1M:.0f} s)", highlight=False
        )
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    console.print(f"results: {arguments.output}", highlight=False)


if __name__ == "__main__":
    main()
