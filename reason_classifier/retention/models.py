"""The retention report's document: what `retention.json` holds and `GET /v1/retention` returns."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field


class RetentionRow(BaseModel):
    """One group's numbers in one period (`period` 'all' for the whole range), for one segment value.

    `level` says what the group is: `all`, `category`, `sub_reason`, `offer` or `variant` (of
    `experiment`). Rates are percentages with the Wilson interval at the report's confidence; the
    accept rate is of offers shown, the save rate of answers.
    """

    period: str
    period_start: date | None
    segment: str
    segment_value: str
    level: str
    category: str | None = None
    sub_reason: str | None = None
    offer: str | None = None
    experiment: str | None = None
    variant: str | None = None
    answers: int
    offers_shown: int
    outcomes: int
    accepted: int
    declined: int
    cancelled: int
    paused: int
    downgraded: int
    accept_rate_pct: float | None
    accept_low_pct: float | None
    accept_high_pct: float | None
    deflections: int = Field(description="Saves (accepted, paused, downgraded) not followed by a later cancellation.")
    lost_later: int = Field(description="Saves the same customer cancelled after all, in a later cancel flow.")
    save_rate_pct: float | None
    save_low_pct: float | None
    save_high_pct: float | None
    saved_mrr: float
    saved_revenue: float
    deflections_without_mrr: int


class ComparisonOut(BaseModel):
    """A variant's rate against the control's: difference in points, pooled two-proportion z-test, and the
    customers per variant a difference this large needs to be detected (and how many are still missing)."""

    control_pct: float | None
    variant_pct: float | None
    difference_pts: float | None
    z: float | None
    p_value: float | None
    significant: bool
    needed_per_variant: int | None
    still_needed_per_variant: int | None


class VariantResult(BaseModel):
    variant: str
    control: bool
    offer: str | None
    answers: int
    offers_shown: int
    accepted: int
    accept_rate_pct: float | None
    accept_low_pct: float | None
    accept_high_pct: float | None
    deflections: int
    save_rate_pct: float | None
    save_low_pct: float | None
    save_high_pct: float | None
    saved_mrr: float
    accept_vs_control: ComparisonOut | None = None
    save_vs_control: ComparisonOut | None = None


class ExperimentResult(BaseModel):
    """Accept rates are of the answers assigned to a variant (a holdout accepts nothing), as are save rates."""

    experiment: str
    control: str
    control_chosen_by: str
    variants: list[VariantResult]


class FunnelStep(BaseModel):
    step: str
    count: int
    pct_of_first: float | None
    pct_of_previous: float | None


class RetentionSummary(BaseModel):
    answers_read: int
    answers_reported: int
    answers_without_date: int
    outcomes_read: int
    outcomes_matched: int
    outcomes_unmatched: int = Field(description="Outcomes whose request id or customer matches no answer.")
    outcomes_superseded: int = Field(description="Earlier outcomes of an answer that has a later one (exports).")
    first_day: date | None
    last_day: date | None
    offers_shown: int
    accepted: int
    deflections: int
    saved_mrr: float
    saved_revenue: float
    horizon_months: float


class RetentionDocument(BaseModel):
    source: str
    outcomes_source: str | None
    options: dict[str, Any]
    summary: RetentionSummary
    periods: list[str]
    funnel: list[FunnelStep]
    experiments: list[ExperimentResult]
    rows: list[RetentionRow]
    notes: list[str] = Field(default_factory=list)
