"""One progress event for every long job, so one display serves them all."""

from __future__ import annotations

from reason_classifier.progress import ProgressEvent


def test_an_event_reads_as_its_stage_with_the_loss_when_there_is_one():
    assert ProgressEvent("tagging export.csv", 2048, None).describe() == "tagging export.csv"
    assert ProgressEvent("cross-validation", 2, 5, 0.41234).describe() == "cross-validation · validation loss 0.412"
    # A fine-tuning epoch's loss is the training loss so far, and must not read as a validation loss.
    fine_tuning = ProgressEvent("fine-tuning epoch 1/2", 64, 640, 2.30149, "training loss")
    assert fine_tuning.describe() == "fine-tuning epoch 1/2 · training loss 2.301"
