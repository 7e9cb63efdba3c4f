"""Would an English expert beside the default help on English text? Its probabilities mixed in, by weight.

    python bench/english_expert.py [--json bench/results/english_expert.json]

The expert is bench/accuracy.py's `minilm-finetune` peer (a transformers fine-tune of the English-only
MiniLM body, trained on the same rows, seed 0): the best model on the real laptop reviews there. For
every English answer, the category scores are (1 - w) * default + w * expert; w = 0 is the default's own
probabilities (without its abstention), w = 1 the expert alone. Measured on the held-out split's English
answers and on the two real English sets of `../shared/data`, which are dev sets (bench/accuracy.py
says why): the weight is not chosen here, the script shows what each weight trades.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.accuracy import SEED, read_real_sets
from bench.peers import minilm_finetune
from reason_classifier.classifier import ReasonClassifier
from reason_classifier.taxonomy import CATEGORIES, Taxonomy
from reason_classifier.training.corpus import (
    HELDOUT_PATH,
    TAXONOMY_PATH,
    LabelledSet,
    default_training_set,
    read_labelled,
)
from reason_classifier.training.evaluate import score

WEIGHTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0)


def english(data: LabelledSet) -> LabelledSet:
    return LabelledSet(
        tuple(e for e in data.examples if e.language == "en"), tuple(f"{s} (English answers)" for s in data.sources)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "english_expert.json")
    arguments = parser.parse_args()

    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    train = default_training_set(taxonomy)
    datasets = {"heldout, English (labels/heldout)": english(read_labelled(HELDOUT_PATH, taxonomy)), **read_real_sets()}

    Console(stderr=True).print(f"fine-tuning the MiniLM expert on {len(train)} rows")
    started = time.perf_counter()
    expert_proba, expert_config = minilm_finetune(train, seed=SEED)
    fit_seconds = time.perf_counter() - started
    default = ReasonClassifier.load()

    results: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": SEED,
        "python": platform.python_version(),
        "train_rows": len(train),
        "expert": {**expert_config, "fit_seconds": round(fit_seconds, 1)},
        "weights": list(WEIGHTS),
        "results": {},
    }
    table = Table(title="Category macro-F1: (1 - w) * default + w * English MiniLM expert")
    table.add_column("data")
    table.add_column("rows", justify="right")
    for weight in WEIGHTS:
        table.add_column(f"w={weight:g}", justify="right")
    for data_name, data in datasets.items():
        mixed_scores = {}
        default_probabilities, expert_probabilities = default.predict_proba(data.texts), expert_proba(data.texts)
        for weight in WEIGHTS:
            mixed = (1 - weight) * default_probabilities + weight * expert_probabilities
            mixed_scores[f"{weight:g}"] = score(
                data.categories, [CATEGORIES[i] for i in mixed.argmax(axis=1)]
            ).as_dict()
        results["results"][data_name] = mixed_scores
        table.add_row(data_name, str(len(data)), *(f"{s['macro_f1']:.3f}" for s in mixed_scores.values()))
    Console(width=160).print(table)
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written {arguments.json}")


if __name__ == "__main__":
    main()
