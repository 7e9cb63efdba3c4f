"""Tagging many Parquet files on one machine and on Ray Data with 1 and 2 model actors, in one run.

    python bench/tag_ray.py                                   # 1,000,000 rows (fast) and 100,000 (default)
    python bench/tag_ray.py --rows 200000 --default-rows 20000
    python bench/tag_ray.py --rows 20000 --default-rows 0     # quick check, fast model only

The data: `--files` Parquet files (16) of generated survey answers, made as bench/tag_throughput.py makes its
export (the project's labelled answers in every language, mostly made distinct, 1 % empty), split evenly.

Each configuration runs in its own process, one after the other on the same files:
  - local: what `reason-classifier tag` does, `tag_file` on each file in turn, the CLI's 2 BLAS threads;
  - ray-1, ray-2: `tag_on_ray` on a local Ray started with 2 CPUs (`--engine ray`), with 1 and 2 model actors of one
    BLAS thread each, reading and the driver's writing sharing the same 2 cores.
Measured: rows/s over the whole run (start-up and model loads included, as a user waits for them) and over tagging
alone for the local path; peak RSS of every process (the local process; Ray's driver, each model actor, the largest
other Ray process, and the sum of all of them at their highest sample, sampled every 0.2 s with psutil); Ray's
start-up (`ray.init` of a local cluster) and, after the run, the time for a fresh actor to start and load the model
(`model_load_seconds` inside it, `actor_ready_seconds` from the driver: process, imports and model). Then every Ray
output is compared with the local output of the same file: same rows, same order, same category, sub-reason and
error; the largest confidence difference is reported (the local path's 2 BLAS threads and the actors' 1 may round
the last bits differently).

Results: a table on the terminal and JSON in bench/results/tag_ray.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPOSITORY = BENCH.parent
DEFAULT_OUTPUT = BENCH / "results" / "tag_ray.json"
sys.path.insert(0, str(REPOSITORY))

CONFIGURATIONS = ("local", "ray-1", "ray-2")
TEXT_COLUMN = "answer"


# ---------------------------------------------------------------- data


def generate_files(folder: Path, rows: int, files: int, seed: int) -> dict:
    """`files` Parquet files holding `rows` generated answers between them; what the data is like."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.tag_throughput import labelled_answers, make_answer

    answers = labelled_answers()
    by_language: dict[str, list[str]] = {}
    for language, text in answers:
        by_language.setdefault(language, []).append(text)
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    distinct: set[str] = set()
    for index in range(files):
        count = rows // files + (1 if index < rows % files else 0)
        texts = [make_answer(rng, answers, by_language) for _ in range(count)]
        distinct.update(texts)
        table = pa.table(
            {
                "customer_id": pa.array(range(written, written + count), pa.int64()),
                "plan": pa.array([rng.choice(("free", "starter", "pro", "business")) for _ in range(count)]),
                TEXT_COLUMN: pa.array(texts, pa.string()),
            }
        )
        pq.write_table(table, folder / f"part-{index:02d}.parquet", row_group_size=16_384)
        written += count
    return {
        "rows": written,
        "files": files,
        "distinct_answers": len(distinct),
        "file_mib": round(sum(p.stat().st_size for p in folder.glob("*.parquet")) / 2**20, 2),
    }


# ---------------------------------------------------------------- workers (one process per configuration)


def local_worker(model: str, inputs: Path, outputs: Path) -> dict:
    from reason_classifier.classifier import ReasonClassifier
    from reason_classifier.config import Settings
    from reason_classifier.tagging import tag_file

    settings = Settings()
    started = time.perf_counter()
    classifier = ReasonClassifier.load(model, threads=settings.threads)
    loaded = time.perf_counter()
    rows = 0
    outputs.mkdir(parents=True, exist_ok=True)
    for source in sorted(inputs.glob("*.parquet")):
        rows += tag_file(source, outputs / source.name, classifier, TEXT_COLUMN, chunk_rows=settings.chunk_rows).rows
    finished = time.perf_counter()
    return {
        "rows": rows,
        "seconds": round(finished - started, 2),
        "rows_per_second": round(rows / (finished - started), 1),
        "model_load_seconds": round(loaded - started, 2),
        "tagging_rows_per_second": round(rows / (finished - loaded), 1),
        "blas_threads": settings.threads,
        "peak_rss_mib": {"local process": _peak_rss_mib()},
    }


def ray_worker(model: str, inputs: Path, outputs: Path, actors: int) -> dict:
    import ray

    from reason_classifier.config import Settings
    from reason_classifier.ray_tagging import RayTagOptions, ray_session, tag_on_ray

    settings = Settings()
    options = RayTagOptions(text_column=TEXT_COLUMN, model=model, chunk_rows=settings.chunk_rows)
    sampler = MemorySampler()
    sampler.start()
    started = time.perf_counter()
    driver_cpu_before = _cpu_seconds()
    with ray_session(num_cpus=2):
        session_started = time.perf_counter()
        result = tag_on_ray(inputs, outputs, options, workers=actors)
        finished = time.perf_counter()
        driver_cpu = _cpu_seconds() - driver_cpu_before
        sampler.stop()
        probe = ray.remote(num_cpus=1)(_LoadProbe)
        asked = time.perf_counter()
        actor = probe.remote(options)
        load_seconds = ray.get(actor.model_load_seconds.remote())
        actor_ready = time.perf_counter() - asked
        ray.kill(actor)
    return {
        "rows": result.summary.rows,
        "seconds": round(finished - started, 2),
        "rows_per_second": round(result.summary.rows / (finished - started), 1),
        "ray_start_seconds": round(session_started - started, 2),
        "actor_model_load_seconds": round(load_seconds, 2),
        "actor_ready_seconds": round(actor_ready, 2),
        "actors": result.workers,
        # The driver receives, unpickles and writes every row: its CPU per row bounds a run whatever the cluster.
        "driver_cpu_seconds": round(driver_cpu, 2),
        "driver_rows_per_cpu_second": round(result.summary.rows / driver_cpu, 1) if driver_cpu else None,
        "blas_threads_per_actor": 1,
        "peak_rss_mib": sampler.report(),
    }


class _LoadProbe:
    """A fresh actor doing what each of the run's model actors does first: load the model."""

    def __init__(self, options) -> None:
        from reason_classifier.ray_tagging import ChunkTagger

        self.tagger = ChunkTagger(options, [])

    def model_load_seconds(self) -> float:
        return self.tagger.model_load_seconds


class MemorySampler(threading.Thread):
    """Peak RSS of this process and all its descendants (a local Ray's GCS, raylet and workers), by role."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peaks: dict[int, tuple[str, float]] = {}
        self.peak_total = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._halt.is_set():
            total = 0.0
            for process in [me, *me.children(recursive=True)]:
                try:
                    rss = process.memory_info().rss / 2**20
                    name = " ".join(process.cmdline()[:1]) or process.name()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                total += rss
                role = "driver" if process.pid == me.pid else _role(name)
                if rss > self.peaks.get(process.pid, ("", 0.0))[1]:
                    self.peaks[process.pid] = (role, rss)
            self.peak_total = max(self.peak_total, total)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def report(self) -> dict:
        by_role: dict[str, list[float]] = {}
        for role, rss in self.peaks.values():
            by_role.setdefault(role, []).append(rss)
        report = {role: round(max(values), 1) for role, values in sorted(by_role.items())}
        report["model actors (each)"] = [round(v, 1) for v in sorted(by_role.get("model actor", []), reverse=True)]
        report["all processes (sum at peak)"] = round(self.peak_total, 1)
        return report


def _role(command: str) -> str:
    if "ChunkTagger" in command or "MapWorker" in command:
        return "model actor"
    if "raylet" in command:
        return "raylet"
    if "gcs_server" in command:
        return "gcs_server"
    if command.startswith("ray::"):
        return "other ray worker"
    return "other ray process"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mib() -> float:
    scale = 1 if sys.platform == "darwin" else 1024
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20, 1)


def run_configuration(name: str, model: str, inputs: Path, outputs: Path, timeout: float) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, model, str(inputs), str(outputs)]
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1" if name.startswith("ray") else os.environ.get("OMP_NUM_THREADS", "2"),
    }
    # A session of its own, so a configuration that overruns is stopped with every process it started (a local Ray's
    # raylet, GCS and workers), not only the launcher's child.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, cwd=REPOSITORY, env=environment, start_new_session=True
    )
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop_tree(process.pid)
        process.communicate()
        raise
    completed = subprocess.CompletedProcess(command, process.returncode, stdout)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"{name} with {model} failed (exit {completed.returncode}):\n{completed.stdout[-2000:]}")
    return json.loads(lines[-1])


def _stop_tree(pid: int) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=10)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


# ---------------------------------------------------------------- comparison and report


def compare(local: Path, ray: Path) -> dict:
    """Every Ray output against the local output of the same file: rows, order, tags."""
    import numpy as np
    import pandas as pd

    rows, max_difference, different = 0, 0.0, 0
    for expected_path in sorted(local.glob("*.parquet")):
        expected, got = pd.read_parquet(expected_path), pd.read_parquet(ray / expected_path.name)
        assert list(got.columns) == list(expected.columns), expected_path.name
        assert len(got) == len(expected), expected_path.name
        for column in expected.columns:
            if column == "confidence":
                continue
            same = (got[column] == expected[column]) | (got[column].isna() & expected[column].isna())
            different += int((~same.fillna(False)).sum())
        confidence = (got["confidence"].astype("float64") - expected["confidence"].astype("float64")).abs()
        max_difference = max(max_difference, float(np.nan_to_num(confidence.max(), nan=0.0)))
        rows += len(got)
    return {"rows_compared": rows, "cells_different": different, "max_confidence_difference": max_difference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", nargs=4, metavar=("CONFIGURATION", "MODEL", "INPUTS", "OUTPUTS"))
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the fast model")
    parser.add_argument("--default-rows", type=int, default=100_000, help="rows for the default model (0: skip)")
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed to each configuration")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--note", default="", help="what the run should be read with (e.g. a shared machine)")
    arguments = parser.parse_args()
    if arguments.worker:
        name, model, inputs, outputs = arguments.worker
        if name == "local":
            result = local_worker(model, Path(inputs), Path(outputs))
        else:
            result = ray_worker(model, Path(inputs), Path(outputs), int(name.split("-")[1]))
        print(json.dumps(result))
        return
    run(arguments)


def run(arguments: argparse.Namespace) -> None:
    report: dict = {
        "benchmark": "bench/tag_ray.py",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": arguments.seed,
        "note": arguments.note,
        "machine": _machine(),
        "versions": _versions(),
        "data": {},
        "results": {},
    }
    sizes = [("fast", arguments.rows), ("default", arguments.default_rows)]
    with tempfile.TemporaryDirectory(prefix="bench-tag-ray-") as scratch:
        for model, rows in sizes:
            if rows <= 0:
                continue
            inputs = Path(scratch, f"{model}-inputs")
            data = generate_files(inputs, rows, arguments.files, arguments.seed)
            results: dict = {}
            for name in CONFIGURATIONS:
                outputs = Path(scratch, f"{model}-{name}")
                print(f"{model}: {name} on {rows:,} rows ...", file=sys.stderr, flush=True)
                try:
                    results[name] = run_configuration(name, model, inputs, outputs, arguments.timeout)
                except subprocess.TimeoutExpired:
                    results[name] = {"timed_out_after_seconds": arguments.timeout}
                    continue
                if name != "local" and "rows" in results.get("local", {}):
                    results[name]["same_rows_as_local"] = compare(Path(scratch, f"{model}-local"), outputs)
                if name != "local":
                    shutil.rmtree(outputs, ignore_errors=True)
            report["data"][model] = data
            # One column per engine and model on docs/benchmarks.md: "fast local", "fast ray-2", …
            report["results"].update({f"{model} {name}": result for name, result in results.items()})
            shutil.rmtree(Path(scratch, f"{model}-local"), ignore_errors=True)
            shutil.rmtree(inputs)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_report(report)


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for model, data in report["data"].items():
        results = {name: report["results"][f"{model} {name}"] for name in CONFIGURATIONS}
        table = Table(title=f"{model}: {data['rows']:,} rows in {data['files']} Parquet files")
        for column in ("engine", "rows/s", "seconds", "start-up s", "model load s", "peak RSS MiB", "same rows"):
            table.add_column(column, justify="right" if column != "engine" else "left")
        for name, result in results.items():
            if "rows" not in result:
                table.add_row(name, f"timed out after {result['timed_out_after_seconds']:,.0f} s", *[""] * 5)
                continue
            peaks = result["peak_rss_mib"]
            if name == "local":
                memory = f"{peaks['local process']:,.0f}"
                startup, load = "-", f"{result['model_load_seconds']:.1f}"
                same = "(reference)"
            else:
                actors = ", ".join(f"{v:,.0f}" for v in peaks["model actors (each)"])
                total = peaks["all processes (sum at peak)"]
                memory = f"driver {peaks.get('driver', 0):,.0f}; actors {actors}; all {total:,.0f}"
                startup = f"{result['ray_start_seconds']:.1f}"
                load = f"{result['actor_model_load_seconds']:.1f} ({result['actor_ready_seconds']:.1f} ready)"
                check = result.get("same_rows_as_local")
                same = f"{check['rows_compared']:,} rows, {check['cells_different']} cells differ" if check else "-"
            table.add_row(
                name, f"{result['rows_per_second']:,.0f}", f"{result['seconds']:,.0f}", startup, load, memory, same
            )
        console.print(table)
    if report["note"]:
        console.print(report["note"])


def _machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("reason-classifier", "ray", "pandas", "pyarrow", "torch"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


if __name__ == "__main__":
    main()
