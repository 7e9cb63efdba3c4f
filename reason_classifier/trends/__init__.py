"""Reason trends for product teams: which reasons grow, what they cost, where, and what is new.

    from reason_classifier.trends import TrendOptions, add_emerging_reasons, compute_trends, write_trends
    report = compute_trends("export.tagged.csv", TrendOptions(period="month", by=["plan"], weight="mrr"),
                            latest_sample=2000)
    add_emerging_reasons(report)             # optional: loads the model, looks for new reasons
    write_trends(report, "trends/")          # trends.csv, trends.json, report.html

The same `compute_trends` serves the CLI (`reason-classifier trends`) and the service
(`GET /v1/trends`), so both give the same numbers. Names are imported on first use, so the
service can import the document models without pandas or DuckDB.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrendReport": "aggregate",
    "compute_trends": "aggregate",
    "resolve_columns": "aggregate",
    "rising_reasons": "aggregate",
    "TrendRow": "models",
    "TrendsDocument": "models",
    "Segment": "options",
    "TrendOptions": "options",
    "Period": "periods",
    "TrendSource": "sources",
    "open_source": "sources",
    "write_trends": "report",
    "find_emerging_reasons": "emerging",
    "add_emerging_reasons": "emerging",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
