"""Shared fixtures: a tiny real model for the tests that need *a* model, and the shipped default model for those that
test it.

`tiny_classifier` (folder: `tiny_model`) is trained once per session in seconds on the taxonomy's seed
answers (tests/tiny_model.py) and classifies plain answers in the seeds' languages; tagging, files,
commands, trends and the service run on it (`--model` / the `model` setting name its folder).
`classifier` is the default model shipped in the package (fine-tuned multilingual encoder, character
n-grams, transformer): loading and running it over a suite takes minutes, so a test that uses it, or
loads the model `default` or `fast`, is marked `slow` and runs with `python -m pytest -m slow`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reason_classifier.classifier import ReasonClassifier
from tiny_model import train_tiny_model


@pytest.fixture(scope="session")
def classifier() -> ReasonClassifier:
    return ReasonClassifier.load()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's folder, sealed and checksummed like any model folder: copy it before changing it."""
    return train_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_classifier(tiny_model: Path) -> ReasonClassifier:
    return ReasonClassifier.load(tiny_model)
