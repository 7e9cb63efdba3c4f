"""Time and peak memory of the retention report, against plain pandas; alert delivery's throughput.

    python bench/retention.py                    # 1,000,000 answers
    python bench/retention.py --rows 50000       # quick check
    python bench/retention.py --parts classify   # only the cancel flow's latency with and without alerts

The data is generated deterministically from `--seed`: a year of classified answers (the store's
columns: time, request id, customer, plan and MRR, reason, offer and its kind, and two experiments,
one with a holdout), one customer in ten answering twice, and outcomes for 60 % of the answers
(accepted, paused, downgraded, declined, cancelled at rates that depend on the offer), some with
the MRR kept, written as Parquet exports.

Each engine runs in its own worker process, so its peak RSS (VmHWM) is its own:
- `duckdb`: `compute_retention` as the CLI runs it (monthly, by plan), then `write_retention`
  (retention.csv, retention.json, report.html) timed apart;
- `pandas`: the plain way: read both files, merge outcomes on request id, count per month the
  answers, offers shown, accepts and saved MRR of the saves (without later-loss checks, intervals,
  experiments or report), the peer a team would write by hand;
- `dispatcher`: `--alerts` alerts in an SQLite outbox delivered to a receiver on 127.0.0.1 by the
  service's dispatcher (4 delivery threads), alerts per second.
- `classify`: the cancel flow's path with and without alerts: the real service (`serve`, the shipped
  default model, an SQLite store) answers `--requests` single answers from labels/heldout with a
  customer id, plan and MRR at concurrency 8, once without webhooks and once with a webhook for
  every team to a receiver on 127.0.0.1, in alternating rounds (so drift in the machine's load hits
  both alike): p50/p99 of classify each way, and how fast the service's own dispatcher delivered the
  alerts while it answered (every alert must arrive, signed and verified, each once).
duckdb and pandas must agree on answers, offers shown and accepts per month.

Results: a table on the terminal and JSON in bench/results/retention.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPOSITORY = BENCH.parent
DEFAULT_OUTPUT = BENCH / "results" / "retention.json"
sys.path.insert(0, str(REPOSITORY))

from bench.plans import PLANS, draw_plans  # noqa: E402

TARGET_SECONDS_1M = 30.0

REASONS = (
    ("pricing", "too_expensive", "downgrade", None, 0.25),
    ("pricing", "price_increase", None, "price_increase_offer", 0.12),
    ("product", "too_complex", None, "onboarding_test", 0.15),
    ("support", "slow_response", "senior_support", None, 0.18),
    ("market", "budget_cuts", "pause", None, 0.15),
    ("other", "unclear", "none", None, 0.15),
)
EXPERIMENTS = {
    "price_increase_offer": (
        ("discount", "discount_20", 0.45),
        ("downgrade", "downgrade", 0.45),
        ("holdout", "none", 0.1),
    ),
    "onboarding_test": (("call", "onboarding", 0.5), ("video", "onboarding_video", 0.5)),
}
ACCEPT = {"downgrade": 0.22, "discount_20": 0.30, "senior_support": 0.15, "pause": 0.35, "onboarding": 0.20,
          "onboarding_video": 0.17, "none": 0.0}  # fmt: skip


def generate(folder: Path, rows: int, seed: int) -> dict:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    start = datetime(2025, 7, 1, tzinfo=UTC).timestamp()
    seconds = rng.uniform(0, 365 * 86400, rows)
    customers = rng.integers(0, int(rows * 0.9), rows)
    plans, mrr = draw_plans(rng, rows)
    reason_index = rng.choice(len(REASONS), rows, p=[r[4] for r in REASONS])
    offers = np.empty(rows, dtype=object)
    experiments = np.full(rows, None, dtype=object)
    variants = np.full(rows, None, dtype=object)
    for i, (_, _, offer, experiment, _) in enumerate(REASONS):
        mask = reason_index == i
        if experiment is None:
            offers[mask] = offer
            continue
        arms = EXPERIMENTS[experiment]
        pick = rng.choice(len(arms), int(mask.sum()), p=[a[2] for a in arms])
        offers[mask] = np.array([a[1] for a in arms], dtype=object)[pick]
        experiments[mask] = experiment
        variants[mask] = np.array([a[0] for a in arms], dtype=object)[pick]
    answers = pd.DataFrame(
        {
            "created_at": pd.to_datetime(start + seconds, unit="s", utc=True),
            "request_id": [f"r{i:08d}" for i in range(rows)],
            "item": 0,
            "customer_id": [f"c{c:08d}" for c in customers],
            "plan": plans,
            "mrr": mrr,
            "category": np.array([r[0] for r in REASONS], dtype=object)[reason_index],
            "sub_reason": np.array([r[1] for r in REASONS], dtype=object)[reason_index],
            "offer_id": offers,
            "offer_kind": np.where(offers == "none", "none", "other"),
            "experiment": experiments,
            "variant": variants,
        }
    )
    reported = rng.random(rows) < 0.6
    accept = rng.random(rows) < np.array([ACCEPT[o] for o in offers])
    other = rng.choice(["paused", "downgraded", "declined", "cancelled"], rows, p=[0.05, 0.05, 0.3, 0.6])
    outcome = np.where(accept, "accepted", other)
    kept = np.where(rng.random(rows) < 0.3, np.round(mrr * 0.8, 2), np.nan)
    outcomes = pd.DataFrame(
        {
            "request_id": answers["request_id"][reported].to_numpy(),
            "outcome": outcome[reported],
            "mrr_kept": kept[reported],
            "reported_at": answers["created_at"][reported].to_numpy(),
        }
    )
    answers.to_parquet(folder / "answers.parquet", index=False)
    outcomes.to_parquet(folder / "outcomes.parquet", index=False)
    return {"answers": rows, "outcomes": int(reported.sum()), "customers": int(len(np.unique(customers)))}


def _peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_duckdb(folder: Path) -> dict:
    from reason_classifier.retention import RetentionOptions, compute_retention, open_sources
    from reason_classifier.retention.report import write_retention

    started = time.perf_counter()
    sources = open_sources(folder / "answers.parquet", folder / "outcomes.parquet")
    document = compute_retention(sources, RetentionOptions(by=("plan",)))
    computed = time.perf_counter() - started
    write_started = time.perf_counter()
    write_retention(document, folder / "report")
    written = time.perf_counter() - write_started
    months = {
        r.period: (r.answers, r.offers_shown, r.accepted)
        for r in document.rows
        if r.segment == "all" and r.level == "all" and r.period != "all"
    }
    return {
        "seconds": round(computed, 3),
        "write_seconds": round(written, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "saved_mrr": round(document.summary.saved_mrr, 2),
        "deflections": document.summary.deflections,
        "months": months,
    }


def run_pandas(folder: Path) -> dict:
    import pandas as pd

    started = time.perf_counter()
    answers = pd.read_parquet(
        folder / "answers.parquet", columns=["created_at", "request_id", "mrr", "offer_id", "offer_kind"]
    )
    outcomes = pd.read_parquet(folder / "outcomes.parquet", columns=["request_id", "outcome", "mrr_kept"])
    merged = answers.merge(outcomes, on="request_id", how="left")
    merged["month"] = merged["created_at"].dt.strftime("%Y-%m")
    merged["shown"] = merged["offer_id"].notna() & (merged["offer_id"] != "none") & (merged["offer_kind"] != "none")
    merged["accepted"] = merged["shown"] & (merged["outcome"] == "accepted")
    merged["saved"] = merged["outcome"].isin(["accepted", "paused", "downgraded"])
    merged["saved_mrr"] = merged["mrr_kept"].fillna(merged["mrr"]).where(merged["saved"], 0.0)
    grouped = merged.groupby("month").agg(
        answers=("request_id", "size"),
        shown=("shown", "sum"),
        accepted=("accepted", "sum"),
        saved_mrr=("saved_mrr", "sum"),
    )
    seconds = time.perf_counter() - started
    months = {m: (int(r.answers), int(r.shown), int(r.accepted)) for m, r in grouped.iterrows()}
    return {"seconds": round(seconds, 3), "peak_rss_mb": round(_peak_rss_mb(), 1), "months": months}


def run_dispatcher(folder: Path, alerts: int) -> dict:
    from sqlalchemy import create_engine, insert

    from reason_classifier.answer_store_schema import alert_outbox, create_tables
    from reason_classifier.webhooks import Alert, RetryPolicy, WebhookDestination, alert_id
    from reason_classifier.webhooks.dispatcher import Dispatcher
    from reason_classifier.webhooks.outbox import Outbox, outbox_row
    from tests.webhook_receiver import Receiver

    secret = "whsec_bench_secret_0000"
    engine = create_engine(f"sqlite:///{folder / 'outbox.db'}")
    create_tables(engine)
    now = datetime.now(UTC)
    rows = [
        outbox_row(
            Alert(id=alert_id(f"r{i}", 0, "support"), created_at=now, team="support", request_id=f"r{i}",
                  customer_id=f"c{i}", plan="pro", mrr=49.0, category="support", sub_reason="slow_response")
        )
        for i in range(alerts)
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(alert_outbox), rows)
    receiver = Receiver(secret).start()
    outbox = Outbox(engine)
    dispatcher = Dispatcher(outbox, {"support": WebhookDestination(url=receiver.url, secret=secret)}, RetryPolicy())
    started = time.perf_counter()
    dispatcher.start()
    while outbox.counts()["delivered"] < alerts:
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    dispatcher.stop()
    receiver.stop()
    assert len(set(receiver.keys())) == alerts
    return {"alerts": alerts, "seconds": round(seconds, 3), "alerts_per_second": round(alerts / seconds, 1)}


PARTS = ("report", "dispatcher", "classify")
CLASSIFY_CONCURRENCY = 8
CLASSIFY_ROUNDS = 2


def _teams() -> list[str]:
    """Every team the shipped configuration alerts: the taxonomy's owners and the offer rules' teams."""
    from reason_classifier.offers import OffersConfig
    from reason_classifier.service.settings import DEFAULT_OFFERS_PATH
    from reason_classifier.taxonomy import Taxonomy

    return sorted(OffersConfig.load(DEFAULT_OFFERS_PATH).alerted_teams(Taxonomy.load()))


def _classify_round(folder: Path, model: str, texts: list[str], fields: list[dict], webhooks: dict | None) -> dict:
    """One server with a fresh store (and `webhooks`, if given): warm-up, the measured requests, then (with
    webhooks) the wait until its dispatcher has delivered every alert."""
    from bench.service_latency import free_port, load, start_server
    from reason_classifier.webhooks.outbox import Outbox

    database = folder / f"classify-{len(list(folder.glob('classify-*.db')))}.db"
    settings = {"store": str(database)}
    if webhooks is not None:
        settings["webhooks"] = json.dumps(webhooks)
    port = free_port()
    server, _ = start_server(port, model, settings)
    try:
        load(port, texts[:100], CLASSIFY_CONCURRENCY, fields[:100])  # warm-up, not measured
        started = time.perf_counter()
        latencies, statuses = load(port, texts, CLASSIFY_CONCURRENCY, fields)
        answered = time.perf_counter() - started
        result = {**latencies, "statuses": {str(k): v for k, v in sorted(statuses.items())}}
        if webhooks is not None:
            from sqlalchemy import create_engine

            outbox = Outbox(create_engine(f"sqlite:///{database}"))
            deadline = time.monotonic() + 600
            while True:
                counts = outbox.counts()
                settled = counts["delivered"] + counts["dead"] == sum(counts.values())  # none pending or in flight
                if settled or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            delivered = time.perf_counter() - started
            result["alerts"] = counts
            result["alerts_delivered_after_last_answer_seconds"] = round(max(0.0, delivered - answered), 3)
            result["alerts_per_second"] = round(counts["delivered"] / delivered, 1)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return result


def run_classify(folder: Path, model: str, requests: int, seed: int) -> dict:
    import numpy as np

    from bench.service_latency import answers
    from tests.webhook_receiver import Receiver

    secret = "whsec_bench_secret_0000"
    rng = np.random.default_rng(seed)
    texts = answers(seed, requests)
    plan_index = rng.choice(len(PLANS), requests, p=[p[1] for p in PLANS])
    fields = [
        {"customer_id": f"c{i:06d}", "plan": PLANS[p][0], "mrr": float(PLANS[p][2])} for i, p in enumerate(plan_index)
    ]
    receiver = Receiver(secret).start()
    webhooks = {team: {"url": receiver.url, "secret": secret} for team in _teams()}
    rounds: dict[str, list[dict]] = {"without_alerts": [], "with_alerts": []}
    try:
        for _ in range(CLASSIFY_ROUNDS):
            rounds["without_alerts"].append(_classify_round(folder, model, texts, fields, None))
            rounds["with_alerts"].append(_classify_round(folder, model, texts, fields, webhooks))
    finally:
        receiver.stop()
    delivered = sum(r["alerts"]["delivered"] for r in rounds["with_alerts"])
    keys = receiver.keys()
    if len(keys) != delivered or len(set(keys)) != len(keys):
        raise SystemExit(f"alerts: {delivered} delivered by the outbox, {len(keys)} received, {len(set(keys))} unique")
    summary = {
        way: {
            "p50_ms": round(float(np.median([r["p50_ms"] for r in results])), 2),
            "p99_ms": round(float(np.median([r["p99_ms"] for r in results])), 2),
            "requests_per_second": round(float(np.median([r["requests_per_second"] for r in results])), 1),
        }
        for way, results in rounds.items()
    }
    summary["with_alerts"]["alerts_per_second"] = round(
        float(np.median([r["alerts_per_second"] for r in rounds["with_alerts"]])), 1
    )
    return {
        "model": model,
        "requests_per_round": requests,
        "concurrency": CLASSIFY_CONCURRENCY,
        "rounds": rounds,
        "summary": summary,
        "alerts_received": len(keys),
        "p99_with_over_without": round(summary["with_alerts"]["p99_ms"] / summary["without_alerts"]["p99_ms"], 3),
    }


def worker(engine: str, folder: Path, alerts: int) -> None:
    result = (
        run_duckdb(folder)
        if engine == "duckdb"
        else run_pandas(folder)
        if engine == "pandas"
        else run_dispatcher(folder, alerts)
    )
    print(json.dumps(result))


def in_process(engine: str, folder: Path, alerts: int) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", engine, "--folder", str(folder), "--alerts", str(alerts)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=1000, help="classify requests per round and way")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to measure (default: all)")
    parser.add_argument("--model", default="default", help="the served model in the classify part")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--worker")
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.folder, args.alerts)
        return
    load_before = os.getloadavg()[0]
    results: dict[str, dict] = {}
    data: dict = {}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        if "report" in args.parts:
            data = generate(folder, args.rows, args.seed)
            results |= {engine: in_process(engine, folder, args.alerts) for engine in ("duckdb", "pandas")}
        if "dispatcher" in args.parts:
            results["dispatcher"] = in_process("dispatcher", folder, args.alerts)
        if "classify" in args.parts:
            results["classify"] = run_classify(folder, args.model, args.requests, args.seed)
    report: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": args.seed,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    if "report" in args.parts:
        duck, plain = results["duckdb"], results["pandas"]
        agree = {m: tuple(v) for m, v in duck["months"].items()} == {m: tuple(v) for m, v in plain["months"].items()}
        if not agree:
            raise SystemExit("duckdb and pandas disagree on answers, offers shown or accepts per month")
        for engine in ("duckdb", "pandas"):
            results[engine].pop("months")
        total = duck["seconds"] + duck["write_seconds"]
        report |= {"rows": args.rows, "data": data, "target_seconds_1m": TARGET_SECONDS_1M}
        report["target_met"] = total < TARGET_SECONDS_1M if args.rows >= 1_000_000 else None
        print(f"{args.rows:,} answers, {data['outcomes']:,} outcomes (load {load_before:.1f} before the run)")
        print(f"{'engine':<12}{'seconds':>10}{'peak RSS MB':>14}")
        for engine in ("duckdb", "pandas"):
            print(f"{engine:<12}{results[engine]['seconds']:>10.2f}{results[engine]['peak_rss_mb']:>14.0f}")
        print(f"report files written in {duck['write_seconds']:.2f} s; target for 1M rows: {TARGET_SECONDS_1M:.0f} s")
    if "dispatcher" in results:
        d = results["dispatcher"]
        print(f"dispatcher: {d['alerts']:,} alerts in {d['seconds']:.2f} s, {d['alerts_per_second']:.0f} alerts/s")
    if "classify" in results:
        c = results["classify"]
        rounds = f"{c['requests_per_round']} requests x {CLASSIFY_ROUNDS} rounds"
        print(f"classify ({c['model']} model) at concurrency {c['concurrency']}, {rounds}:")
        for way, figures in c["summary"].items():
            extra = f", alerts delivered {figures['alerts_per_second']:.0f}/s" if "alerts_per_second" in figures else ""
            print(f"  {way:<16} p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms{extra}")
        print(f"  p99 with alerts / without: {c['p99_with_over_without']:.2f} ({c['alerts_received']} alerts received)")
        refused: dict[str, int] = {}
        for way in c["rounds"].values():
            for measured in way:
                for status, count in measured["statuses"].items():
                    if status != "200":
                        refused[status] = refused.get(status, 0) + count
        if refused:
            print(f"  not answered 200: {refused} (a busy machine: the model's time limit; see the rounds)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({**report, "results": results}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
