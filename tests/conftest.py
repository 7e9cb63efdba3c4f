"""Shared fixtures: a tiny real model, the one a test gets unless it asks for the shipped one.

`classifier` (folder: `tiny_model`) is trained once per session in seconds on the taxonomy's seed
answers (tests/tiny_model.py) and classifies plain answers in the seeds' languages; tagging, files,
commands, trends and the service run on it (`--model` or the service's `model` setting name its
folder). `shipped_classifier` is the default model shipped in the package (fine-tuned multilingual
encoder, character n-grams, transformer): loading and running it over a suite takes minutes, so a test
that uses it must be marked `slow` (checked at collection) and runs with `python -m pytest -m slow`;
so must one that loads the model `default` or `fast` another way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reason_classifier.classifier import ReasonClassifier
from tiny_model import train_tiny_model

SHIPPED = "shipped_classifier"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's folder, sealed and checksummed like any model folder: copy it before changing it."""
    return train_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def classifier(tiny_model: Path) -> ReasonClassifier:
    return ReasonClassifier.load(tiny_model)


@pytest.fixture(scope="session")
def shipped_classifier() -> ReasonClassifier:
    return ReasonClassifier.load()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test that loads the shipped model without the `slow` mark, so the fast suite stays fast."""
    unmarked = [
        item.nodeid
        for item in items
        if SHIPPED in getattr(item, "fixturenames", ()) and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            f"{len(unmarked)} test(s) use `{SHIPPED}` (the shipped model, minutes per suite) without "
            f"@pytest.mark.slow: {', '.join(unmarked)}. Mark them slow, or use `classifier` (the tiny test model)."
        )
