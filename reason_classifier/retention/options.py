"""What a retention report is asked for: one typed, validated set of options shared by the CLI and the service."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ..errors import InputError
from ..trends.options import Segment, parse_report_window
from ..trends.periods import Period


@dataclass(frozen=True)
class RetentionOptions:
    """Options of a retention report.

    period: 'week', 'month' or 'quarter' (of the answer's time).
    by: segments, each on its own (plan, language, 'mrr:50,200', metadata.contract in the store).
    since, until: first and last day of answers reported (inclusive, in `timezone`).
    horizon_months: saved revenue = saved MRR × this many months (what keeping a customer is worth).
    confidence: of the Wilson intervals; alpha and power: of the experiments' tests and sample sizes.
    controls: experiment → its control variant (from the offers file); otherwise a variant named
        `control`, else the first by name, and the report says so.
    date_column: the answer's time in an export (default: created_at, date, ...; the store's created_at).
    timezone: IANA zone periods are cut in.
    """

    period: Period = Period.MONTH
    by: tuple[Segment, ...] = ()
    since: date | None = None
    until: date | None = None
    horizon_months: float = 12.0
    confidence: float = 0.95
    alpha: float = 0.05
    power: float = 0.8
    controls: dict[str, str] = field(default_factory=dict)
    date_column: str | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        parse_report_window(self)
        if not (math.isfinite(self.horizon_months) and self.horizon_months > 0):
            raise InputError(f"horizon_months {self.horizon_months} must be a positive number of months")
        for name in ("confidence", "alpha", "power"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise InputError(f"{name} {value} must be between 0 and 1")

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period.value,
            "by": [str(s) for s in self.by],
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "horizon_months": self.horizon_months,
            "confidence": self.confidence,
            "alpha": self.alpha,
            "power": self.power,
            "controls": dict(self.controls),
            "timezone": self.timezone,
        }
