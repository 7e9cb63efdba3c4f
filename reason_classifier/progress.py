"""How far a long job has got, told the same way by tagging, training and discovery.

One event type lets a caller write one progress display (the CLI's bar, a log line, a notebook
widget) for every job instead of one per job's callback signature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    """`done` of `total` steps of `stage` are finished; `total` is None when the job cannot know it yet (a CSV is
    not counted before it is read). `loss` is where the stage has one (training), named by `loss_name`: the
    validation loss of a cross-validation fold, the training loss so far of a fine-tuning epoch."""

    stage: str
    done: int
    total: int | None = None
    loss: float | None = None
    loss_name: str = "validation loss"

    def describe(self) -> str:
        """The stage as a person reads it, with the loss when there is one."""
        return self.stage if self.loss is None else f"{self.stage} · {self.loss_name} {self.loss:.3f}"


ProgressCallback = Callable[[ProgressEvent], None]
"""What a long job calls as it advances; it must return quickly, the job waits for it."""
