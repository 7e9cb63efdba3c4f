"""The trends document: what `trends.json`, the CLI and `GET /v1/trends` all hand out, as typed models."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

ALL = "all"
"""The segment (and segment value) of the rows that count every answer."""


class TrendRow(BaseModel):
    """One reason in one period of one segment. Shares are percentages; changes are in points
    against the period just before (None for the first period)."""

    segment: str = Field(description="The segment column, or 'all' for every answer.")
    segment_value: str = Field(description="The segment's value ('(none)' when empty), or 'all'.")
    period: str = Field(description="'2026-W23', '2026-06' or '2026-Q2'.")
    period_start: date
    level: Literal["category", "sub_reason"]
    category: str
    sub_reason: str | None = Field(
        description="None on category rows; 'unclassified' for rows the tagger could not classify."
    )
    answers: int = Field(description="Answers (customers lost) with this reason.")
    share_pct: float = Field(description="Share of the period's answers, in %.")
    share_change_pts: float | None
    revenue_lost: float | None = Field(description="Sum of the weight column (MRR lost); None without a weight column.")
    revenue_share_pct: float | None = Field(description="Share of the period's revenue lost, in %.")
    revenue_share_change_pts: float | None
    weight_missing: int = Field(description="Answers without a weight (left out of the revenue sums).")


class PeriodTotals(BaseModel):
    period: str
    start: date
    end: date
    answers: int
    revenue_lost: float | None
    weight_missing: int


class Columns(BaseModel):
    """The columns the report was computed from."""

    date: str
    category: str
    sub_reason: str | None
    error: str | None
    weight: str | None
    text: str | None
    segments: list[str]


class Summary(BaseModel):
    rows_read: int
    rows_reported: int = Field(description="Rows with a date inside since/until: the answers in the report.")
    rows_without_date: int = Field(description="Rows whose date cell is empty: left out.")
    rows_outside_range: int
    unclassified: int = Field(
        description="Reported rows the tagger could not classify (error column set): counted as other/unclassified."
    )
    weight_missing: int
    first_day: date | None
    last_day: date | None


class ExampleAnswers(BaseModel):
    category: str
    sub_reason: str
    share_change_pts: float | None
    answers: list[str]


class EmergingReason(BaseModel):
    size: int = Field(description="Answers of the sample in this cluster.")
    share_of_sample_pct: float
    keywords: list[str]
    nearest_sub_reason: str | None
    similarity: float | None = Field(
        description="Mean similarity of the cluster's answers to their nearest sub-reason."
    )
    examples: list[str]


class EmergingReasons(BaseModel):
    period: str
    answers_in_period: int
    sampled: int = Field(description="Answers of the period embedded (a seeded sample when there are more).")
    far: int = Field(description="Sampled answers far from every taxonomy sub-reason.")
    threshold: float
    reasons: list[EmergingReason]
    note: str | None = None


class TrendsDocument(BaseModel):
    source: str
    options: dict
    columns: Columns
    summary: Summary
    periods: list[PeriodTotals]
    top_movers: list[TrendRow] = Field(
        description="Sub-reasons of the last period with the largest share change, in points ('other' left out)."
    )
    other_movers: list[TrendRow] = Field(
        default_factory=list,
        description="The last period's change of 'other' (unclear: the model abstained; unclassified: the tagger "
        "could not read the row), apart from the movers: nobody can act on it as a reason, but a rise says the "
        "taxonomy or the model misses something.",
    )
    examples: list[ExampleAnswers] = Field(
        default_factory=list, description="Example answers of the last period per rising reason."
    )
    emerging: EmergingReasons | None = None
    notes: list[str] = Field(default_factory=list)
    rows: list[TrendRow]

    def latest_rows(self, level: Literal["category", "sub_reason"] = "category", segment: str = ALL) -> list[TrendRow]:
        """The rows of the last period at `level` for `segment` (every answer by default), in the document's order;
        none when there is no period."""
        if not self.periods:
            return []
        last = self.periods[-1].start
        return [r for r in self.rows if r.segment == segment and r.level == level and r.period_start == last]
