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
- `postgres`: the same rows in the service's table in PostgreSQL (a throwaway cluster from Debian's
  package, filled with COPY), grouped by the server: `compute_trends` as `GET /v1/trends` runs it
  (by plan and metadata.contract, MRR weight, no examples);
- `postgres-cli`: `reason-classifier trends URL -o … --by plan --by metadata.contract --no-emerging`,
  in process (examples of rising reasons: the last month's texts are read for them);
- `postgres-rows`: the previous way on the same database: every row read through SQLAlchemy into
  DuckDB (only up to `--rows-path-max`, it is the slow one).
All must agree on the answers per month and category; the run fails otherwise.

    python bench/trends.py --rows 10000000 --engines duckdb postgres postgres-cli --no-store

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
from typing import Any

BENCH = Path(__file__).resolve().parent
REPOSITORY = BENCH.parent
DEFAULT_OUTPUT = BENCH / "results" / "trends.json"
sys.path.insert(0, str(REPOSITORY))

from bench.plans import draw_plans  # noqa: E402

TARGET_SECONDS_1M = 30.0

SEGMENTS = ("plan", "contract")
ENGINES = ("duckdb", "pandas", "store", "postgres", "postgres-cli", "postgres-rows")
POSTGRES_SETTINGS = {"shared_buffers": "256MB", "work_mem": "64MB"}
"""A modest server's settings (Debian's defaults are 128MB and 4MB): the grouping fits in memory."""


# ---------------------------------------------------------------- data


GENERATE_CHUNK_ROWS = 1_000_000


def generate_export(path: Path, rows: int, seed: int) -> dict:
    """A tagged export of `rows` rows written to `path`, a million rows at a time (the same rows for the same
    seed, whatever the size beyond); returns what the data is like."""
    import numpy as np

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    path.unlink(missing_ok=True)
    for first in range(0, rows, GENERATE_CHUNK_ROWS):
        _generate_chunk(path, first, min(GENERATE_CHUNK_ROWS, rows - first), rng)
    return {
        "rows": rows,
        "seed": seed,
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "generate_seconds": round(time.perf_counter() - started, 1),
    }


def _generate_chunk(path: Path, first: int, rows: int, rng: Any) -> None:
    import numpy as np
    import pandas as pd

    from reason_classifier.taxonomy import Taxonomy

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

    plans, mrr = draw_plans(rng, rows)
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
            "customer_id": [f"cus_{i:08d}" for i in range(first, first + rows)],
            "cancelled_at": pd.Series(stamps.strftime("%Y-%m-%dT%H:%M:%S")) + pd.Series(offsets),
            "plan": plans,
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
    table.to_csv(path, index=False, mode="a", header=first == 0)


# ---------------------------------------------------------------- workers


def build_store(export: Path, database: Path) -> float:
    """The service's SQLite store (its own table definition) holding the export's rows; returns seconds."""
    import pandas as pd
    from sqlalchemy import create_engine

    from reason_classifier.answer_store_schema import classified_answers, metadata

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


def build_postgres_store(export: Path, url: str) -> float:
    """The service's table in PostgreSQL (created by the service's own definition) holding the export's rows;
    returns seconds. The file is streamed as it is into a staging table with COPY, and the server turns it into
    stored answers (ANALYZE included, as a database in use would have its statistics)."""
    import psycopg
    from sqlalchemy import create_engine

    from reason_classifier.answer_store_schema import metadata
    from reason_classifier.database import database_url
    from reason_classifier.service.store import prepare_schema

    started = time.perf_counter()
    engine = create_engine(database_url(url))
    metadata.drop_all(engine)
    prepare_schema(engine)
    engine.dispose()
    columns = "customer_id, cancelled_at, plan, contract, tenure_months, mrr, answer, category, sub_reason, "
    columns += "confidence, language, error"
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE UNLOGGED TABLE export ({', '.join(c + ' text' for c in columns.split(', '))})")
        copy_sql = f"COPY export ({columns}) FROM STDIN (FORMAT csv, HEADER)"
        with cursor.copy(copy_sql) as copy, open(export, "rb") as file:
            while block := file.read(1 << 22):
                copy.write(block)
        cursor.execute("""
            INSERT INTO classified_answers (created_at, request_id, item, text, customer_id, plan, mrr, metadata,
                                            category, sub_reason, confidence, abstained, model_version)
            SELECT cancelled_at::timestamptz, customer_id, 0, coalesce(answer, ''), customer_id, plan, mrr::float8,
                   json_build_object('contract', contract), category,
                   CASE WHEN coalesce(error, '') = '' THEN sub_reason END, confidence::float8, false, 'bench'
            FROM export  -- COPY reads an empty CSV field as NULL
        """)
        cursor.execute("DROP TABLE export")
        connection.commit()
        connection.autocommit = True
        cursor.execute("VACUUM ANALYZE classified_answers")
    return time.perf_counter() - started


def _month_counts(report: Any) -> dict[str, int]:
    return {
        f"{r.period}/{r.category}": r.answers
        for r in report.document.rows
        if r.segment == "all" and r.level == "category" and r.answers
    }


def postgres_worker(engine: str, url: str) -> dict:
    """`postgres`, `postgres-cli` or `postgres-rows` on the store at `url` (see the module's docstring)."""
    from reason_classifier.trends import TrendOptions, compute_trends

    options = TrendOptions(period="month", by=("plan", "metadata.contract"), weight="mrr", examples=0)
    if engine == "postgres":
        started = time.perf_counter()
        counts = _month_counts(compute_trends(url, options))
    elif engine == "postgres-rows":
        from reason_classifier.trends.sources import StoreSource

        StoreSource.grouped_relation = lambda self, con, grouping: None  # type: ignore[method-assign]
        started = time.perf_counter()
        counts = _month_counts(compute_trends(url, options))
    else:
        from reason_classifier.cli.main import app

        with tempfile.TemporaryDirectory() as folder:
            arguments = ["trends", url, "-o", folder, "--by", "plan", "--by", "metadata.contract", "--no-emerging"]
            started = time.perf_counter()
            try:
                app(arguments, standalone_mode=False)
            except SystemExit as exit:
                if exit.code:
                    raise
            document = json.loads((Path(folder) / "trends.json").read_text())
        counts = {
            f"{r['period']}/{r['category']}": r["answers"]
            for r in document["rows"]
            if r["segment"] == "all" and r["level"] == "category" and r["answers"]
        }
    return {
        "seconds": time.perf_counter() - started,
        "write_seconds": None,
        "output_rows": None,
        "counts": counts,
        "started": started,
    }


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
    elif engine.startswith("postgres"):
        result = postgres_worker(engine, export)
        counts, started = result.pop("counts"), result.pop("started")
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


def run_worker(engine: str, export: Path | str, timeout: float | None = None) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", engine, str(export)]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=REPOSITORY, timeout=timeout)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"{engine} worker failed (exit {completed.returncode}):\n{completed.stdout}")
    return json.loads(lines[-1])


# ---------------------------------------------------------------- report


def _postgres_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


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
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=ENGINES,
        default=list(ENGINES),
        help="engines to run (the SQLite store also needs --store); PostgreSQL ones skip where it is not installed",
    )
    parser.add_argument(
        "--rows-path-max",
        type=int,
        default=1_000_000,
        help="largest size postgres-rows (every row through Python, the previous way) runs at",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds an engine may take before it is stopped")
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
        "trends.csv/json/report.html; postgres = compute_trends on the same rows in PostgreSQL as GET /v1/trends "
        "runs it (the server's own memory is not in peak RSS); postgres-cli = `reason-classifier trends` in process; "
        "postgres-rows = the previous way (every row through SQLAlchemy into DuckDB)",
        "results": [],
    }
    postgres_engines = [e for e in arguments.engines if e.startswith("postgres")]
    with tempfile.TemporaryDirectory(prefix="bench-trends-") as folder, contextlib.ExitStack() as stack:
        cluster = None
        if postgres_engines:
            sys.path.insert(0, str(REPOSITORY / "tests"))
            from postgres_cluster import ClusterUnavailable, throwaway_cluster

            try:
                cluster = stack.enter_context(throwaway_cluster(POSTGRES_SETTINGS))
                report["postgres"] = {"settings": POSTGRES_SETTINGS, "version": _postgres_version(cluster)}
            except ClusterUnavailable as reason:
                console.print(f"PostgreSQL engines skipped: {reason}", highlight=False)
        for rows in arguments.rows:
            export = Path(folder) / f"export-{rows}.csv"
            data = generate_export(export, rows, arguments.seed)
            console.print(
                f"{rows:,} rows: {data['file_mib']} MiB generated in {data['generate_seconds']} s", highlight=False
            )
            results = {
                engine: run_worker(engine, export, arguments.timeout)
                for engine in arguments.engines
                if engine in ("duckdb", "pandas")
            }
            if arguments.store and "store" in arguments.engines:
                database = Path(folder) / f"store-{rows}.db"
                data["store_build_seconds"] = round(build_store(export, database), 1)
                results["store"] = run_worker("store", database, arguments.timeout)
                database.unlink()
            if cluster is not None:
                data["postgres_build_seconds"] = round(build_postgres_store(export, cluster), 1)
                console.print(f"  PostgreSQL store filled in {data['postgres_build_seconds']} s", highlight=False)
                for engine in postgres_engines:
                    if engine == "postgres-rows" and rows > arguments.rows_path_max:
                        continue
                    results[engine] = run_worker(engine, cluster, arguments.timeout)
            reference = next(iter(results.values()))["counts"]
            if any(r["counts"] != reference for r in results.values()):
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
        table.add_column(column, justify="left" if column == "engine" else "right", no_wrap=column == "engine")
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
    million = [e for e in report["results"] if e["data"]["rows"] == 1_000_000 and "duckdb" in e["engines"]]
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
