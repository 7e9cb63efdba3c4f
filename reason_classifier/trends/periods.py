"""Reporting periods: ISO weeks (starting Monday), calendar months and quarters, in one time zone.

A period is named by its first day. Every period between the first and the last one is listed,
including those without a single answer, so that a change is always measured against the period
just before, never against an older one that happens to have data.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import Enum


class Period(str, Enum):  # noqa: UP042 - StrEnum changes str() and f-strings of members (behaviour kept)
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"

    @classmethod
    def parse(cls, value: str | Period) -> Period:
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"period {value!r} is not one of {', '.join(p.value for p in cls)}") from None

    def start_of(self, day: date) -> date:
        """The first day of the period that holds `day`."""
        if self is Period.WEEK:
            return day - timedelta(days=day.weekday())
        if self is Period.MONTH:
            return day.replace(day=1)
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)

    def next_start(self, start: date) -> date:
        if self is Period.WEEK:
            return start + timedelta(days=7)
        months = 1 if self is Period.MONTH else 3
        month = start.month - 1 + months
        return date(start.year + month // 12, month % 12 + 1, 1)

    def end_of(self, start: date) -> date:
        """The last day of the period starting on `start` (inclusive)."""
        return self.next_start(start) - timedelta(days=1)

    def label(self, start: date) -> str:
        """'2026-W23' (ISO week), '2026-06', '2026-Q2'."""
        if self is Period.WEEK:
            year, week, _ = start.isocalendar()
            return f"{year}-W{week:02d}"
        if self is Period.MONTH:
            return f"{start.year}-{start.month:02d}"
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"

    def count_between(self, first: date, last: date) -> int:
        """How many periods `starts_between` would list, without listing them."""
        a, b = self.start_of(first), self.start_of(last)
        if self is Period.WEEK:
            return (b - a).days // 7 + 1
        return ((b.year - a.year) * 12 + b.month - a.month) // (1 if self is Period.MONTH else 3) + 1

    def starts_between(self, first: date, last: date) -> list[date]:
        """Every period start from the period holding `first` to the one holding `last`, in order."""
        starts, current, last_start = [], self.start_of(first), self.start_of(last)
        while current <= last_start:
            starts.append(current)
            current = self.next_start(current)
        return starts
