"""Reason trends for product teams: which reasons grow, what they cost, where, and what is new.

    from reason_classifier.trends import TrendOptions, compute_trends, write_trends
    report = compute_trends("export.tagged.csv", TrendOptions(period="month", by=["plan"], weight="mrr"))
    write_trends(report, "trends/")          # trends.csv, trends.json, report.html

The same `compute_trends` serves the CLI (`reason-classifier trends`) and the service
(`GET /v1/trends`), so both give the same numbers.
"""

from .aggregate import TrendReport, compute_trends, resolve_columns, rising_reasons
from .models import TrendRow, TrendsDocument
from .options import Segment, TrendOptions
from .periods import Period
from .sources import TrendSource, open_source

__all__ = [
    "Period", "Segment", "TrendOptions", "TrendReport", "TrendRow", "TrendSource", "TrendsDocument",
    "compute_trends", "open_source", "resolve_columns", "rising_reasons",
]
