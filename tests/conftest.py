"""Shared fixtures: the real default model (USE multilingual + heads), loaded once per test session."""

from __future__ import annotations

import pytest

from reason_classifier.classifier import ReasonClassifier


@pytest.fixture(scope="session")
def classifier() -> ReasonClassifier:
    return ReasonClassifier.load()
