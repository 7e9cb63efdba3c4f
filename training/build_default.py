"""Rebuild the default model shipped in `reason_classifier/default_model` from the project's own corpus.

    python -m reason_classifier.training.build_default

Trains on `labels/train/` plus the taxonomy's seed examples, measures on `labels/heldout/`
(never trained or tuned on), and writes the folder with its metrics and model card. The real
development sets in `../shared/data` are research-licensed: they are measured on in `bench/`,
never trained on here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reason_classifier.model_folder import DEFAULT_MODEL_PATH
from reason_classifier.taxonomy import Taxonomy

from .config import TrainingConfig
from .corpus import HELDOUT_PATH, TAXONOMY_PATH, TRAIN_PATH, read_labelled
from .train import train_evaluate_save

DEFAULT_NAME = "reason-classifier-default"


def build(output: Path = DEFAULT_MODEL_PATH, config: TrainingConfig | None = None) -> dict:
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    _, metrics = train_evaluate_save(
        read_labelled(TRAIN_PATH, taxonomy),
        read_labelled(HELDOUT_PATH, taxonomy),
        "labels/heldout",
        taxonomy,
        output,
        config,
        name=DEFAULT_NAME,
    )
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_MODEL_PATH)
    arguments = parser.parse_args()
    metrics = build(arguments.output)
    print(
        json.dumps(
            {k: {m: v[m] for m in ("rows", "accuracy", "macro_f1", "per_language")} for k, v in metrics.items()},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
