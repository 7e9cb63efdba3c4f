"""Discovery on labelled answers: time, peak memory, clusters, unassigned share and agreement with the truth.

    python bench/discovery.py                          # every data set, default encoder
    flock /tmp/cpu.lock python bench/discovery.py      # the same, on a shared machine
    python bench/discovery.py --sets own,mix-1k --encoders use-multilingual-v3,reason_classifier/default_model/encoder

Data sets (labels are never shown to discovery; they only score it):
  - absa: ../shared/data/absa_laptops_dev.csv, 744 real English laptop-review complaints (product/support/pricing;
    research licence: read from there, never copied); skipped with a message when absent;
  - own: labels/heldout + labels/train, the project's answers in seven languages (17 sub-reasons);
  - heldout: labels/heldout alone (the fair set for the fine-tuned encoder, which was trained on labels/train);
  - mix-1k, mix-20k: a seeded mixture of absa and own, answers drawn with replacement and most made distinct
    with a short prefix or suffix (as people write: "Honestly, ...", "... Bye.").
Each run is `reason_classifier.discovery.discover` on a CSV export, in its own worker process so that its peak RSS
(`ru_maxrss`) is its own; the time is the whole command (read, embed, cluster, describe, write the three files).
In the same worker, plain KMeans with k = the number of true categories runs on the same embeddings (peer).
Agreement: adjusted Rand index (ARI) and purity (share of answers whose cluster's majority label is theirs),
against the category and, where known, the sub-reason; discovery's scores count the answers it put in a
cluster (the unassigned share is reported beside them). `proposal` = share of clusters whose proposed
sub-reason is their majority true sub-reason (own/heldout only).
Results: a table, and JSON in bench/results/discovery.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPOSITORY = BENCH.parent
sys.path.insert(0, str(REPOSITORY))
ABSA = REPOSITORY.parent / "shared" / "data" / "absa_laptops_dev.csv"
DEFAULT_OUTPUT = BENCH / "results" / "discovery.json"
SETS = ("absa", "own", "heldout", "mix-1k", "mix-20k")
SEED = 0
PREFIXES = ("", "", "Honestly, ", "To be honest: ", "Well, ", "Main reason: ", "cancelling because ", "hi - ", "1) ")
SUFFIXES = ("", "", " Bye.", " Thanks anyway.", "!", " :(", " - sorry", ".", " (again)")


def load_sets(names: list[str], seed: int) -> dict[str, list[dict]]:
    from reason_classifier.taxonomy import Taxonomy
    from reason_classifier.training.corpus import HELDOUT_PATH, TAXONOMY_PATH, TRAIN_PATH, read_labelled

    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    own = [
        {"text": e.text, "category": e.category, "sub_reason": e.sub_reason or "", "lang": e.language or ""}
        for e in read_labelled([HELDOUT_PATH, TRAIN_PATH], taxonomy).examples
    ]
    heldout = [
        {"text": e.text, "category": e.category, "sub_reason": e.sub_reason or "", "lang": e.language or ""}
        for e in read_labelled(HELDOUT_PATH, taxonomy).examples
    ]
    absa = None
    if ABSA.is_file():
        with open(ABSA, encoding="utf-8", newline="") as file:
            absa = [
                {"text": r["text"], "category": r["label"], "sub_reason": "", "lang": r.get("lang") or "en"}
                for r in csv.DictReader(file)
            ]
    else:
        print(f"skipping the absa set and the mixtures' absa part: {ABSA} is not here", file=sys.stderr)
    sets: dict[str, list[dict]] = {}
    for name in names:
        if name == "absa":
            if absa is not None:
                sets[name] = absa
        elif name == "own":
            sets[name] = own
        elif name == "heldout":
            sets[name] = heldout
        else:
            size = {"mix-1k": 1_000, "mix-20k": 20_000}[name]
            sets[name] = mixture(own + (absa or []), size, seed)
    return sets


def mixture(pool: list[dict], size: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(size):
        row = dict(rng.choice(pool))
        row["text"] = f"{rng.choice(PREFIXES)}{row['text']}{rng.choice(SUFFIXES)}"
        rows.append(row)
    return rows


def purity(labels: list, truth: list) -> float:
    groups: dict = {}
    for label, true in zip(labels, truth, strict=True):
        groups.setdefault(label, Counter())[true] += 1
    return sum(c.most_common(1)[0][1] for c in groups.values()) / max(len(labels), 1)


def agreement(labels: list, rows: list[dict]) -> dict:
    from sklearn.metrics import adjusted_rand_score

    kept = [(label, row) for label, row in zip(labels, rows, strict=True) if label >= 0]
    result = {}
    for field in ("category", "sub_reason"):
        pairs = [(label, row[field]) for label, row in kept if row[field]]
        if len(pairs) < 2:
            continue
        predicted, truth = zip(*pairs, strict=True)
        result[f"ari_{field}"] = round(adjusted_rand_score(truth, predicted), 3)
        result[f"purity_{field}"] = round(purity(list(predicted), list(truth)), 3)
    return result


def worker(export: str, folder: str, encoder: str, k: int) -> None:
    """One timed discovery and the KMeans peer on the same embeddings; prints JSON."""
    import numpy as np
    from sklearn.cluster import KMeans

    from reason_classifier.discovery import ReasonDiscoverer, discover

    started = time.perf_counter()
    result = discover(export, "text", folder, ReasonDiscoverer(encoder, seed=SEED))
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    kmeans = KMeans(n_clusters=k, n_init=4, random_state=SEED).fit_predict(result.embeddings)
    kmeans_seconds = time.perf_counter() - started
    labels = np.full(result.review.rows, -2, dtype=np.int64)
    labels[result.rows] = result.labels
    kmeans_labels = np.full(result.review.rows, -2, dtype=np.int64)
    kmeans_labels[result.rows] = kmeans
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "peak_rss_mib": round(peak_mib),
                "timings": result.timings,
                "summary": result.review.summary,
                "labels": labels.tolist(),
                "kmeans_labels": kmeans_labels.tolist(),
                "kmeans_seconds": round(kmeans_seconds, 2),
                "proposals": {c.id: c.proposed.sub_reason if c.proposed else "" for c in result.review.clusters},
                "nearest": {c.id: c.proposed.nearest_sub_reason if c.proposed else "" for c in result.review.clusters},
            }
        )
    )


def run(name: str, rows: list[dict], encoder: str) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        export = Path(scratch) / f"{name}.csv"
        with open(export, "w", encoding="utf-8", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=["text"])
            writer.writeheader()
            writer.writerows({"text": r["text"]} for r in rows)
        k = len({r["category"] for r in rows})
        command = [sys.executable, __file__, "--worker", str(export), str(Path(scratch) / "out"), encoder, str(k)]
        completed = subprocess.run(
            command, stdout=subprocess.PIPE, text=True, cwd=REPOSITORY, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
        if completed.returncode:
            raise SystemExit(f"worker failed on {name} with {encoder}")
        measured = json.loads(completed.stdout.strip().splitlines()[-1])
    labels, kmeans = measured.pop("labels"), measured.pop("kmeans_labels")
    summary = measured["summary"]
    result = {
        "set": name,
        "encoder": encoder,
        "answers": len(rows),
        "seconds": measured["seconds"],
        "peak_rss_mib": measured["peak_rss_mib"],
        "timings": measured["timings"],
        "clusters": summary["clusters"],
        "sample_size": summary["sample_size"],
        "min_cluster_size": summary["min_cluster_size"],
        "unassigned_share": summary["unassigned_share"],
        **agreement(labels, rows),
        "kmeans": {
            "k": len({r["category"] for r in rows}),
            "seconds": measured["kmeans_seconds"],
            **agreement(kmeans, rows),
        },
    }
    if all(r["sub_reason"] for r in rows):
        majority: dict = {}
        for label, row in zip(labels, rows, strict=True):
            if label >= 0:
                majority.setdefault(label, Counter())[row["sub_reason"]] += 1
        nearest = {int(k): v for k, v in measured["nearest"].items()}
        proposed = {int(k): v for k, v in measured["proposals"].items()}
        result["proposal_nearest_correct"] = round(
            sum(nearest[c] == counts.most_common(1)[0][0] for c, counts in majority.items()) / max(len(majority), 1), 3
        )
        result["proposed_new_share"] = round(sum(v == "new" for v in proposed.values()) / max(len(proposed), 1), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--encoders", default="default,use-multilingual-v3")
    parser.add_argument("--json", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--worker", nargs=4, metavar=("EXPORT", "FOLDER", "ENCODER", "K"))
    args = parser.parse_args()
    if args.worker:
        export, folder, encoder, k = args.worker
        worker(export, folder, encoder, int(k))
        return
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        parser.error(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    load = os.getloadavg()
    sets = load_sets(names, SEED)
    results = []
    for encoder in [e.strip() for e in args.encoders.split(",") if e.strip()]:
        for name, rows in sets.items():
            print(f"{name} ({len(rows):,} answers) with {encoder} ...", file=sys.stderr, flush=True)
            results.append(run(name, rows, encoder))
    load_after = os.getloadavg()

    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"discovery vs KMeans(k = categories), seed {SEED}; load {load[0]:.2f} before, {load_after[0]:.2f} after"
    )
    for column in (
        "set",
        "encoder",
        "answers",
        "s",
        "peak MiB",
        "clusters",
        "unassigned",
        "ARI cat",
        "purity cat",
        "ARI sub",
        "purity sub",
        "KMeans ARI cat",
        "KMeans purity cat",
        "KMeans purity sub",
    ):
        table.add_column(column, justify="left" if column in ("set", "encoder") else "right")
    for r in results:
        km = r["kmeans"]
        table.add_row(
            r["set"],
            Path(r["encoder"]).name if "/" in r["encoder"] else r["encoder"],
            f"{r['answers']:,}",
            f"{r['seconds']:.1f}",
            str(r["peak_rss_mib"]),
            str(r["clusters"]),
            f"{r['unassigned_share']:.1%}",
            f"{r.get('ari_category', 0):.3f}",
            f"{r.get('purity_category', 0):.3f}",
            f"{r['ari_sub_reason']:.3f}" if "ari_sub_reason" in r else "-",
            f"{r['purity_sub_reason']:.3f}" if "purity_sub_reason" in r else "-",
            f"{km.get('ari_category', 0):.3f}",
            f"{km.get('purity_category', 0):.3f}",
            f"{km['purity_sub_reason']:.3f}" if "purity_sub_reason" in km else "-",
        )
    Console(width=220).print(table)
    document = {
        "bench": "discovery",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": SEED,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load,
            "load_after": load_after,
        },
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
