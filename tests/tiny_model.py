"""A tiny real model for the tests that need *a* model, not the shipped one: trained in seconds, loaded in milliseconds.

It is trained the way every model is (`training.train_evaluate_save`: seeds in, calibrated head,
abstention threshold chosen by cross-validation, a sealed and checksummed model folder out) on the
taxonomy's seed answers, with the weightless `hashed-char-ngrams` encoder and the same hashed
character n-grams as the shipped model, and measured on the English held-out answers. It classifies
for real: plain answers in the seeds' languages land in the right category, gibberish abstains. It
knows spelling, not meaning, so tests of what the shipped model understands (languages it was not
seeded with, paraphrases, calibration, recorded outputs) use `shipped_classifier` and are marked slow.
"""

from __future__ import annotations

from pathlib import Path

from reason_classifier.encoders import HASHED_NGRAMS
from reason_classifier.taxonomy import Taxonomy, default_taxonomy_path
from reason_classifier.training.config import TrainingConfig
from reason_classifier.training.corpus import HELDOUT_PATH, read_labelled, taxonomy_examples
from reason_classifier.training.train import train_evaluate_save

TINY_MODEL_NAME = "tiny-test-model"
TINY_TRAINING = TrainingConfig(encoder=HASHED_NGRAMS, char_ngram_weight=0, folds=3, use_taxonomy_examples=False)


def train_tiny_model(folder: Path) -> Path:
    """Train the tiny model into `folder` (a new model folder) and return it."""
    taxonomy = Taxonomy.load(default_taxonomy_path())
    heldout = read_labelled(HELDOUT_PATH / "en.csv", taxonomy)
    train_evaluate_save(
        taxonomy_examples(taxonomy),
        heldout,
        "labels/heldout/en.csv",
        taxonomy,
        folder,
        TINY_TRAINING,
        name=TINY_MODEL_NAME,
    )
    return folder


if __name__ == "__main__":  # python tests/tiny_model.py FOLDER: a look at the tiny model outside the tests
    import sys

    print(train_tiny_model(Path(sys.argv[1])))
