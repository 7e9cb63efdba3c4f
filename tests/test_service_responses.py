"""The service answers a fixed set of requests exactly as recorded (tests/service_responses.py)."""

from __future__ import annotations

import json

import pytest

from service_responses import RECORD, record


@pytest.mark.slow
def test_responses_and_stored_rows_are_those_recorded(shipped_classifier, tmp_path):
    """Recorded with the shipped model (its answers are what a refactoring must keep), so slow."""
    recorded = json.loads(RECORD.read_text(encoding="utf-8"))
    if recorded["model_version"] != shipped_classifier.version:
        pytest.skip(f"recorded with {recorded['model_version']}; `python tests/service_responses.py` records again")
    result = record(shipped_classifier, tmp_path)
    for got, expected in zip(result["responses"], recorded["responses"], strict=True):
        assert got == expected
    assert result["stored"] == recorded["stored"]
    assert result["outcomes"] == recorded["outcomes"]
