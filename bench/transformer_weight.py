"""What each weight of the transformer beside the fast head trades, on real text and on the held-out split.

    python bench/transformer_weight.py [MODEL_FOLDER] [--json bench/results/transformer_weight.json]

The model (default: the shipped one) must carry a transformer. For every answer, the sub-reason
probabilities are (1 - w) * head + w * transformer, summed into categories, and the category is their
argmax (no abstention): w = 0 is `fast`, w = 1 the transformer alone. Training chooses the weight
on its calibration split (`training/ensemble.py`); the real sets are dev sets, so this script does not
choose it: it shows what each weight trades on them.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.accuracy import read_real_sets  # noqa: E402
from reason_classifier.classifier import ReasonClassifier  # noqa: E402
from reason_classifier.taxonomy import CATEGORIES, Taxonomy  # noqa: E402
from reason_classifier.training.corpus import HELDOUT_PATH, TAXONOMY_PATH, read_labelled  # noqa: E402
from reason_classifier.training.evaluate import score  # noqa: E402

WEIGHTS = tuple(np.round(np.arange(0.0, 1.01, 0.1), 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default=None, help="model folder (default: the shipped default)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "transformer_weight.json")
    arguments = parser.parse_args()
    model = ReasonClassifier.load(arguments.model)
    if model.transformer is None:
        parser.error(f"{arguments.model or 'the default model'} carries no transformer")
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    datasets = {**read_real_sets(), "heldout (labels/heldout)": read_labelled(HELDOUT_PATH, taxonomy)}
    matrix = model.taxonomy.category_matrix()
    results: dict = {}
    for name, data in datasets.items():
        Console(stderr=True).print(f"reading {name} ({len(data)} answers)")
        head = model.head.predict_proba(*model.features(data.texts))
        transformer = model.transformer.predict_proba(data.texts)
        results[name] = {}
        for w in WEIGHTS:
            predicted = [CATEGORIES[i] for i in (((1 - w) * head + w * transformer) @ matrix).argmax(axis=1)]
            results[name][str(w)] = score(data.categories, predicted).as_dict()["macro_f1"]
    real = [name for name in datasets if "real" in name]
    results["real mean"] = {str(w): float(np.mean([results[name][str(w)] for name in real])) for w in WEIGHTS}
    table = Table(title=f"Category macro-F1 by the transformer's weight (trained weight: {model.transformer_weight})")
    table.add_column("data")
    for w in WEIGHTS:
        table.add_column(f"w={w}", justify="right")
    for name, row in results.items():
        table.add_row(name, *(f"{row[str(w)]:.3f}" for w in WEIGHTS))
    Console().print(table)
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "python": platform.python_version(),
                "model": model.version,
                "trained_weight": model.transformer_weight,
                "macro_f1": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
