"""Progress of a long job as plain lines, for logs, pipes and CI, where a live bar cannot be drawn.

A terminal gets a redrawn bar; everything else used to get nothing at all for the minutes a
training run takes. These lines say which stage is running, how far it is and about how long
it has left, without flooding a log: a line when a stage starts and when it ends, and at most
one every `every` seconds in between.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .progress import ProgressEvent


def time_left(elapsed: float, done: int, total: int | None) -> float | None:
    """Seconds left in a stage at its pace so far; None until there is a pace to go by."""
    if total is None or done <= 0 or elapsed <= 0 or done > total:
        return None
    return elapsed / done * (total - done)


def describe_duration(seconds: float) -> str:
    """A rough duration as people say it ("about 40 s", "about 3 min", "about 1 h 20 min")."""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"


class ProgressLines:
    """A progress callback that hands throttled plain lines to `write`."""

    def __init__(
        self, write: Callable[[str], None], every: float = 15.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.write = write
        self.every = every
        self.clock = clock
        self._stage: str | None = None
        self._started = 0.0
        self._last_line = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        now = self.clock()
        if event.stage != self._stage:
            self._stage, self._started, self._last_line = event.stage, now, float("-inf")
        finished = event.total is not None and event.done >= event.total
        if not finished and now - self._last_line < self.every:
            return
        self._last_line = now
        self.write(self.line(event, now - self._started))

    @staticmethod
    def line(event: ProgressEvent, elapsed: float) -> str:
        """`stage[ · loss] · done/total · time left` (or `done in` once the stage is finished)."""
        done, total = event.done, event.total
        parts = [event.describe(), f"{done:,}/{total:,}" if total is not None else f"{done:,}"]
        left = time_left(elapsed, done, total)
        if total is not None and done >= total:
            parts.append(f"done in {describe_duration(elapsed).removeprefix('about ')}")
        elif left is not None:
            parts.append(f"{describe_duration(left)} left")
        return " · ".join(parts)
