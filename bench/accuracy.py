"""Quality of the shipped models against simple peers, real customers' text first, on data none of them was trained
or tuned on.

    python bench/accuracy.py [--json bench/results/accuracy.json] [--models tfidf-logreg,fast] [--limit 300]
                             [--previous PATH]

Data, in the order the table shows it:
  1. Real text, read from `../shared/data` (never copied into the project, never trained on; a set that
     is absent is skipped with a message): laptop-review complaints (`absa_laptops_dev.csv`, en, research
     licence), airline complaint tweets (`airline_tweets_reasons.csv`, en, non-commercial) and restaurant
     complaints (`real_reviews_dev.csv`, split by its `lang` column into es, ru, tr and cs). All were
     consulted while developing (docs/model.md): they are dev sets, not a test.
  2. "real mean (6)": the mean of the real sets' macro-F1 (the count says how many were present).
  3. The project's held-out split (`labels/heldout`, written by us), overall and per language, and its
     answers that have diacritics typed without them (as customers on phones and foreign keyboards do).
Macro-F1 is over the labels each set has (training.evaluate.score: labels = sorted(set(gold))): a set
without `market` rows gets no zero-F1 `market` class, while predicting `market` there still costs
recall on the true class.

Peers, all trained on the same `labels/train` plus the taxonomy's seed examples, then the shipped models:
  - zero-shot: cosine similarity to each category's descriptions (no training; the floor);
  - tfidf-logreg: character n-gram TF-IDF + logistic regression (the classic baseline);
  - frozen-use-logreg: the fast recipe with the encoder left frozen (what fine-tuning adds);
  - frozen-me5-logreg: frozen multilingual-e5-small embeddings (reason_classifier.multilingual_e5) +
    logistic regression over the 5 categories (what fine-tuning the transformer adds);
  - setfit: the setfit package's defaults on the English-only MiniLM body, training steps bounded
    (bench/peers.py says which arguments differ from the defaults and why);
  - minilm-finetune: a plain transformers fine-tune of the same MiniLM body with a 5-way head;
  - previous-default: the default before issue #14 (bench/models.py: git archive of commit 0f94aa8, or --previous);
  - default: the shipped default (`ReasonClassifier.load()`);
  - fast: the shipped default without its transformer (`ReasonClassifier.load("fast")`).
SetFit and the MiniLM fine-tune have English-only bodies, so their scores in other languages are expected
to be poor; that is measured. Models are built and measured one at a time, so only one is in memory.

Output: a matrix of macro-F1 (rows: data sets, columns: models; the best of each row in bold) and a
table of answers/s (all data sets together) and fit seconds per model (for the shipped models, the time
to load them). The JSON keeps every (data, model) result under `results[data][model]` (rows, accuracy,
macro-F1, labels, answers/s, per language), plus `real_mean` and, per model, its config and speed.
`--models` runs a subset: the JSON then holds only those models, never older results of the others.
`--limit N` trains the peers on a stratified N-row sample, SetFit for at most N/2 steps (smoke runs only;
the data sets are always measured whole).
"""

from __future__ import annotations

import argparse
import csv
import gc
import importlib.util
import json
import platform
import sys
import time
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.models import SHIPPED_MODELS, PreviousDefaultError, shipped_models  # noqa: E402
from bench.peers import SETFIT_MAX_STEPS, minilm_finetune_peer, setfit_peer  # noqa: E402
from reason_classifier.classifier import ReasonClassifier  # noqa: E402
from reason_classifier.diacritics import strip_diacritics  # noqa: E402
from reason_classifier.encoders import USE_MULTILINGUAL, load_encoder  # noqa: E402
from reason_classifier.taxonomy import CATEGORIES, LabelledExample, Taxonomy  # noqa: E402
from reason_classifier.training.corpus import (
    HELDOUT_PATH,
    TAXONOMY_PATH,
    LabelledSet,
    default_training_set,
    read_labelled,
)  # noqa: E402
from reason_classifier.training.evaluate import score  # noqa: E402

SHARED_DATA = ROOT.parent / "shared" / "data"
REAL_SETS = (
    # (name, file in ../shared/data, language kept: None = every row)
    # its errors (devices, battery "charge" read as pricing) prompted writing round i: a dev set since then,
    # never trained on
    ("laptop reviews (real, en)", "absa_laptops_dev.csv", None),
    # consulted while developing (it rejected an English MiniLM expert), never trained on
    ("airline tweets (real, en)", "airline_tweets_reasons.csv", None),
    # restaurant complaints (SemEval-2016 ABSA), one set per language; new in issue #14
    *((f"restaurant reviews (real, {lang})", "real_reviews_dev.csv", lang) for lang in ("es", "ru", "tr", "cs")),
)
HELDOUT = "heldout (labels/heldout)"
HELDOUT_PLAIN = "heldout without diacritics"
SEED = 0
PEERS = ("zero-shot", "tfidf-logreg", "frozen-use-logreg", "frozen-me5-logreg", "setfit", "minilm-finetune")
MODELS = (*PEERS, "previous-default", "default", "fast")
assert set(SHIPPED_MODELS) <= set(MODELS)


def read_real(file_name: str) -> LabelledSet | None:
    """A real development set from ../shared/data (`text,label[,lang]`), or None with a message when it is absent."""
    path = SHARED_DATA / file_name
    if not path.is_file():
        Console(stderr=True).print(f"skipping a real set: {path} is not here")
        return None
    with open(path, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    return LabelledSet(
        tuple(LabelledExample(r["text"], r["label"], None, r.get("lang") or "en") for r in rows), (str(path),)
    )


def read_real_sets() -> dict[str, LabelledSet]:
    """Every real development set that is here, by its name in REAL_SETS, in that order (each file read once)."""
    files = {file_name: read_real(file_name) for file_name in dict.fromkeys(file_name for _, file_name, _ in REAL_SETS)}
    sets = {}
    for name, file_name, language in REAL_SETS:
        data = files[file_name]
        if data is None:
            continue
        if language is not None:
            examples = tuple(e for e in data.examples if e.language == language)
            if not examples:
                Console(stderr=True).print(f"skipping a real set: {file_name} has no rows with lang={language}")
                continue
            data = LabelledSet(examples, tuple(f"{source} (lang={language})" for source in data.sources))
        sets[name] = data
    return sets


def typed_without_diacritics(data: LabelledSet) -> LabelledSet:
    """The answers of `data` that have diacritics, typed without them: same meaning, same labels."""
    examples = tuple(replace(e, text=plain) for e in data.examples if (plain := strip_diacritics(e.text)) != e.text)
    return LabelledSet(
        examples, tuple(f"{source} (answers with diacritics, typed without them)" for source in data.sources)
    )


def zero_shot(taxonomy: Taxonomy, encoder_name: str):
    encoder = load_encoder(encoder_name)
    prototypes = []
    for category in CATEGORIES:
        content = taxonomy.categories[category]
        descriptions = [content.description, *(s.description for s in content.sub_reasons.values())]
        mean = encoder.encode(descriptions).mean(axis=0)
        prototypes.append(mean / np.linalg.norm(mean))
    prototypes = np.vstack(prototypes)
    return lambda texts: [CATEGORIES[i] for i in (encoder.encode(texts) @ prototypes.T).argmax(axis=1)]


def frozen_use_peer(train: LabelledSet, taxonomy: Taxonomy):
    """A head over the frozen encoder alone (no fine-tuning, no n-grams): what the default recipe adds, measured."""
    from reason_classifier.training.config import TrainingConfig
    from reason_classifier.training.train import train as train_model

    classifier, _ = train_model(
        train, taxonomy, TrainingConfig(fine_tune_epochs=0, char_ngram_weight=0, use_taxonomy_examples=False)
    )
    return (lambda texts: [p.category for p in classifier.predict(texts)]), {
        "recipe": "default with fine_tune_epochs=0, char_ngram_weight=0"
    }


def frozen_me5_peer(train: LabelledSet):
    """Frozen multilingual-e5-small embeddings + logistic regression over the 5 categories: what fine-tuning it adds."""
    from reason_classifier.multilingual_e5 import ME5, MultilingualE5Encoder

    encoder = MultilingualE5Encoder(threads=2)
    model = LogisticRegression(C=10, class_weight="balanced", max_iter=3000, random_state=SEED)
    model.fit(encoder.encode(train.texts), train.categories)
    return (lambda texts: list(model.predict(encoder.encode(texts)))), {
        "encoder": f"{ME5} (frozen, mean-pooled, unit length, 'query: ' prefix)",
        "classifier": (
            "LogisticRegression(C=10, class_weight=balanced) over the 5 categories (C as the tf-idf peer; not tuned)"
        ),
    }


def tfidf_logreg(train: LabelledSet):
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=1)
    model = LogisticRegression(C=10, class_weight="balanced", max_iter=3000, random_state=SEED)
    model.fit(vectorizer.fit_transform(train.texts), train.categories)
    return lambda texts: list(model.predict(vectorizer.transform(texts)))


def shipped_peer(shipped: dict):
    """A shipped model (bench/models.py) as a peer: `shipped["load"]` is what ReasonClassifier.load takes."""
    classifier = ReasonClassifier.load(shipped["load"])
    config = {
        **{k: v for k, v in shipped.items() if k != "load"},
        "version": classifier.version,
        "encoder": classifier.encoder.name,
        "transformer": classifier.transformer is not None,
        "transformer_weight": classifier.transformer_weight,
        "abstain_below": classifier.abstain_below,
        "fit_seconds_are": "loading time (trained elsewhere)",
    }
    return (lambda texts: [p.category for p in classifier.predict(texts)]), config


def measure(predict, data: LabelledSet) -> dict:
    started = time.perf_counter()
    predicted = predict(data.texts)
    seconds = time.perf_counter() - started
    languages = sorted({lang or "unknown" for lang in data.languages})
    per_language = {}
    for language in languages:
        rows = [i for i, lang in enumerate(data.languages) if (lang or "unknown") == language]
        per_language[language] = score([data.categories[i] for i in rows], [predicted[i] for i in rows]).as_dict()
    return {
        **score(data.categories, predicted).as_dict(),
        "labels": sorted(set(data.categories)),
        "answers_per_second": round(len(data) / seconds, 1),
        "predict_seconds": round(seconds, 3),
        "per_language": per_language,
    }


def subsample(data: LabelledSet, rows: int) -> LabelledSet:
    """A stratified sample of `rows` examples (seed 0), for smoke runs of the trained peers."""
    from sklearn.model_selection import train_test_split

    if rows >= len(data):
        return data
    kept, _ = train_test_split(list(range(len(data))), train_size=rows, random_state=SEED, stratify=data.categories)
    return LabelledSet(
        tuple(data.examples[i] for i in sorted(kept)),
        tuple(f"{s} (stratified {rows}-row sample)" for s in data.sources),
    )


def model_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODELS)}"
        )
    return [name for name in MODELS if name in names]


def real_mean(results: dict, real_names: list[str], models: list[str]) -> dict:
    """Per model, the mean macro-F1 over the real sets present."""
    return {
        "sets": real_names,
        "macro_f1": {m: round(float(np.mean([results[d][m]["macro_f1"] for d in real_names])), 4) for m in models}
        if real_names
        else {},
    }


def print_tables(results: dict, real_names: list[str], mean: dict, models: dict, console: Console) -> None:
    names = list(models)
    rows: list[tuple[str, dict[str, float], int | None] | None] = []  # None: a section break
    for data_name in real_names:
        rows.append(
            (data_name, {m: results[data_name][m]["macro_f1"] for m in names}, results[data_name][names[0]]["rows"])
        )
    if real_names:
        rows.append((f"real mean ({len(real_names)})", mean["macro_f1"], None))
        rows.append(None)
    if HELDOUT in results:
        heldout = results[HELDOUT]
        rows.append((HELDOUT, {m: heldout[m]["macro_f1"] for m in names}, heldout[names[0]]["rows"]))
        for language, language_result in heldout[names[0]]["per_language"].items():
            rows.append(
                (
                    f"  heldout: {language}",
                    {m: heldout[m]["per_language"][language]["macro_f1"] for m in names},
                    language_result["rows"],
                )
            )
    if HELDOUT_PLAIN in results:
        rows.append(
            (
                HELDOUT_PLAIN,
                {m: results[HELDOUT_PLAIN][m]["macro_f1"] for m in names},
                results[HELDOUT_PLAIN][names[0]]["rows"],
            )
        )

    table = Table(
        title=(
            "Category macro-F1 (over the labels each set has) on data no model was trained or tuned on; "
            "best of each row in bold"
        )
    )
    table.add_column("data", no_wrap=True)
    table.add_column("rows", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for row in rows:
        if row is None:
            table.add_section()
            continue
        label, scores, count = row
        best = max(scores.values())
        cells = [f"[bold]{v:.3f}[/]" if v == best and len(names) > 1 else f"{v:.3f}" for v in scores.values()]
        table.add_row(f"[bold]{label}[/]" if count is None else label, "" if count is None else f"{count:,}", *cells)
    console.print(table)

    speed = Table(title="Speed: answers/s over every data set above (one call per set), and fit seconds")
    for column in ("model", "answers/s", "fit s", "note"):
        speed.add_column(column, justify="left" if column in ("model", "note") else "right")
    for name, model in models.items():
        note = (
            "load time (trained elsewhere)"
            if name in SHIPPED_MODELS
            else ("no training" if name == "zero-shot" else "")
        )
        speed.add_row(name, f"{model['answers_per_second']:,.0f}", f"{model['fit_seconds']:,.1f}", note)
    console.print(speed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "accuracy.json")
    parser.add_argument(
        "--models",
        type=model_names,
        default=list(MODELS),
        help=f"comma-separated subset of {','.join(MODELS)} (default: all)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="train on a stratified sample of this many rows, SetFit for at most limit/2 steps (smoke runs only)",
    )
    parser.add_argument(
        "--previous",
        type=Path,
        default=None,
        help="folder of the previous default model (default: extracted from git, commit 0f94aa8)",
    )
    arguments = parser.parse_args()
    if "setfit" in arguments.models and importlib.util.find_spec("setfit") is None:
        parser.error(
            'the setfit peer needs the setfit package: pip install -e ".[bench]", or leave it out with --models'
        )

    with ExitStack() as stack:
        try:  # first, so a missing previous default stops the run before minutes of training
            shipped = stack.enter_context(
                shipped_models([m for m in arguments.models if m in SHIPPED_MODELS], arguments.previous)
            )
        except PreviousDefaultError as error:
            parser.exit(2, f"{parser.prog}: error: the previous default model is not available: {error}\n")
        run(arguments, shipped)


def run(arguments: argparse.Namespace, shipped: dict[str, dict]) -> None:
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    train = default_training_set(taxonomy)
    if arguments.limit:
        train = subsample(train, arguments.limit)
    real = read_real_sets()
    heldout = read_labelled(HELDOUT_PATH, taxonomy)
    datasets = {**real, HELDOUT: heldout, HELDOUT_PLAIN: typed_without_diacritics(heldout)}

    builders = {
        # The base encoder, not the default model's fine-tuned one: zero-shot means nothing was learnt from labels.
        "zero-shot": lambda: (zero_shot(taxonomy, USE_MULTILINGUAL), {"encoder": USE_MULTILINGUAL}),
        "tfidf-logreg": lambda: (
            tfidf_logreg(train),
            {
                "features": "char_wb 2-4-grams, sublinear tf",
                "classifier": "LogisticRegression(C=10, class_weight=balanced)",
            },
        ),
        "frozen-use-logreg": lambda: frozen_use_peer(train, taxonomy),
        "frozen-me5-logreg": lambda: frozen_me5_peer(train),
        # a smoke run (--limit) also caps SetFit's steps, at limit/2, so it takes a minute rather than 7
        "setfit": lambda: setfit_peer(
            train,
            seed=SEED,
            **({"max_steps": min(SETFIT_MAX_STEPS, max(1, arguments.limit // 2))} if arguments.limit else {}),
        ),
        "minilm-finetune": lambda: minilm_finetune_peer(train, seed=SEED),
        **{name: (lambda model=model: shipped_peer(model)) for name, model in shipped.items()},
    }
    results: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": SEED,
        "python": platform.python_version(),
        "train_rows": len(train),
        "train_limit": arguments.limit,
        "models_run": list(arguments.models),
        "data": {name: {"rows": len(data), "sources": list(data.sources)} for name, data in datasets.items()},
        "models": {},
        "results": {},
    }
    console = Console(stderr=True)
    for name in arguments.models:
        # one model at a time: built, measured on every set, then let go
        console.print(f"building {name}" + ("" if name in SHIPPED_MODELS else f" on {len(train)} rows"))
        started = time.perf_counter()
        predict, config = builders[name]()
        fit_seconds = time.perf_counter() - started
        console.print(f"built {name} in {fit_seconds:.1f} s; measuring")
        rows = seconds = 0.0
        for data_name, data in datasets.items():
            result = measure(predict, data)
            result["fit_seconds"] = round(fit_seconds, 2)
            results["results"].setdefault(data_name, {})[name] = result
            rows, seconds = rows + result["rows"], seconds + result["predict_seconds"]
        results["models"][name] = {
            "fit_seconds": round(fit_seconds, 2),
            "answers_per_second": round(rows / seconds, 1) if seconds else None,
            "config": config,
        }
        console.print(f"measured {name}: {rows:,.0f} answers in {seconds:.1f} s")
        del predict
        gc.collect()

    real_names = list(real)
    results["real_mean"] = real_mean(results["results"], real_names, list(arguments.models))
    print_tables(
        results["results"],
        real_names,
        results["real_mean"],
        results["models"],
        Console(width=max(Console().width, 160)),
    )
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written {arguments.json}")


if __name__ == "__main__":
    main()
