"""What a trends report is asked for: one typed, validated set of options shared by the CLI and the service."""

from __future__ import annotations

import math
import zoneinfo
from dataclasses import asdict, dataclass
from datetime import date
from itertools import pairwise
from typing import Any

from ..errors import InputError
from .periods import Period

EMERGING_SAMPLE = 2000
"""Answers of the last period embedded for emerging reasons, by default (`compute_trends(..., latest_sample=N)`)."""


@dataclass(frozen=True)
class Segment:
    """A column to split the report by; with `bands`, a numeric column cut into bands.

    `Segment.parse("plan")`, or `Segment.parse("tenure_months:3,12,24")` for the bands
    `<3`, `3-12`, `12-24`, `24+` (each band includes its lower edge).
    """

    column: str
    bands: tuple[float, ...] = ()

    @classmethod
    def parse(cls, text: str | Segment) -> Segment:
        if isinstance(text, Segment):
            return text
        column, _, edges = text.rpartition(":") if ":" in text else (text, "", "")
        if not edges:
            return cls(text)
        try:
            bands = tuple(float(e) for e in edges.split(","))
        except ValueError:
            raise InputError(f"segment {text!r}: band edges must be numbers, e.g. tenure_months:3,12,24") from None
        if not all(math.isfinite(b) for b in bands) or list(bands) != sorted(set(bands)):
            raise InputError(f"segment {text!r}: band edges must be finite and increasing, e.g. tenure_months:3,12,24")
        return cls(column, bands)

    @property
    def name(self) -> str:
        """The name shown in reports: the column, or 'COLUMN band'."""
        return f"{self.column} band" if self.bands else self.column

    def band_labels(self) -> list[str]:
        edges = [_number(b) for b in self.bands]
        return [f"<{edges[0]}", *(f"{a}-{b}" for a, b in pairwise(edges)), f"{edges[-1]}+"]

    def __str__(self) -> str:
        return self.column + (":" + ",".join(_number(b) for b in self.bands) if self.bands else "")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


AUTO = "auto"


@dataclass(frozen=True)
class TrendOptions:
    """Options of a trends report.

    period: 'week' (ISO weeks, from Monday), 'month' or 'quarter'.
    by: segments to split by, each on its own (plan, contract, 'tenure_months:3,12,24'); the
        whole population is always reported too, as segment 'all'.
    weight: the revenue column summed as revenue lost (MRR); 'auto' uses a column named `mrr`
        (any case) when there is one; None reports counts only.
    since, until: first and last day reported (inclusive, in `timezone`); the periods that hold
        them are listed even when empty.
    date_column: the cancellation date (default: cancelled_at, canceled_at, churned_at, date,
        created_at, ... whichever exists; the store's created_at).
    date_format: strptime format for dates that are not ISO 8601, e.g. '%d-%m-%Y %H:%M'.
    text_column: the answer text, for example answers (default: answer, response, text, ...);
        None when there is no such column: the report then has no examples.
    timezone: IANA zone the periods are cut in. Times with an offset (2026-06-30T23:30:00-04:00)
        are converted to it; times without one are read as local times of this zone, except in
        the service's store, which writes UTC.
    top_movers: how many reasons the report lists as the last period's movers.
    examples: example answers shown per rising reason.
    """

    period: Period = Period.MONTH
    by: tuple[Segment, ...] = ()
    weight: str | None = AUTO
    since: date | None = None
    until: date | None = None
    date_column: str | None = None
    date_format: str | None = None
    text_column: str | None = None
    timezone: str = "UTC"
    top_movers: int = 5
    examples: int = 3

    def __post_init__(self) -> None:
        parse_report_window(self)
        if self.top_movers < 0 or self.examples < 0:
            raise InputError("top_movers and examples must not be negative")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["period"] = self.period.value
        data["by"] = [str(s) for s in self.by]
        data["since"] = self.since.isoformat() if self.since else None
        data["until"] = self.until.isoformat() if self.until else None
        return data


def parse_report_window(options: Any) -> None:
    """What the options of every report (trends, retention: frozen dataclasses with these fields) check alike: the
    period and the segments parsed in place, since not after until, a known time zone, no segment given twice."""
    object.__setattr__(options, "period", Period.parse(options.period))
    object.__setattr__(options, "by", tuple(Segment.parse(s) for s in options.by))
    if options.since and options.until and options.since > options.until:
        raise InputError(f"since {options.since} is after until {options.until}")
    try:
        zoneinfo.ZoneInfo(options.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"unknown time zone {options.timezone!r}; use an IANA name such as UTC, Europe/Berlin or America/New_York"
        ) from None
    names = [s.name for s in options.by]
    if len(set(names)) != len(names):
        raise InputError(f"a segment is given twice: {', '.join(names)}")
