"""Retention: whether the save offers kept customers, and how much revenue that saved.

    from reason_classifier.retention import RetentionOptions, compute_retention, open_sources, write_retention
    with open_sources("answers.db") as sources:   # the service's store: answers and their outcomes
        document = compute_retention(sources, RetentionOptions(period="month", by=["plan"]))
    write_retention(document, "retention/")    # retention.csv, retention.json, report.html

The same `compute_retention` serves the CLI (`reason-classifier retention`) and the service
(`GET /v1/retention`). Names are imported on first use, so the service can import the outcome
kinds and the document models without pandas or DuckDB.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "OUTCOMES_TABLE": "aggregate",
    "RetentionSources": "aggregate",
    "compute_retention": "aggregate",
    "open_sources": "aggregate",
    "RetentionDocument": "models",
    "RetentionOptions": "options",
    "LOST": "outcomes",
    "SAVED": "outcomes",
    "OutcomeKind": "outcomes",
    "write_retention": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
