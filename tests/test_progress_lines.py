"""Progress as plain lines when there is no terminal: stages, counts, time left, and no flood (issue 15)."""

from __future__ import annotations

from reason_classifier.progress import ProgressEvent
from reason_classifier.progress_lines import ProgressLines, describe_duration, time_left


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_per_stage_start_and_end_and_at_most_one_per_interval_between():
    clock, lines = Clock(), []
    progress = ProgressLines(lines.append, every=15, clock=clock)
    progress(ProgressEvent("encoding", 0, 1000))
    for done in range(100, 1001, 100):
        clock.now += 3
        progress(ProgressEvent("encoding", done, 1000))
    clock.now += 1
    progress(ProgressEvent("fold 1: fine-tuning epoch 1/2", 64, 640, 2.30149, "training loss"))
    progress(ProgressEvent("reading", 2048))
    assert lines == [
        "encoding · 0/1,000",
        "encoding · 500/1,000 · about 15 s left",
        "encoding · 1,000/1,000 · done in 30 s",
        "fold 1: fine-tuning epoch 1/2 · training loss 2.301 · 64/640",
        "reading · 2,048",
    ]


def test_time_left_follows_the_pace_of_the_stage_so_far():
    assert time_left(60, 100, 400) == 180
    assert time_left(0, 0, 400) is None and time_left(10, 5, None) is None
    assert [describe_duration(s) for s in (0.2, 42, 180, 4000, 7200)] == [
        "about 1 s",
        "about 42 s",
        "about 3 min",
        "about 1 h 7 min",
        "about 2 h",
    ]
