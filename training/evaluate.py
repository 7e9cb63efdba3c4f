"""Measuring a classifier on labelled answers it was not trained on.

Macro-F1 is taken over the categories present in the gold labels, so a set with no `market`
rows is not rewarded or punished for a class it cannot test; predictions of an absent class
still count as errors for the true class.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from reason_classifier.classifier import ReasonClassifier
from reason_classifier.taxonomy import ABSTAIN_CATEGORY, CATEGORIES

from .calibration import expected_calibration_error, reliability
from .corpus import LabelledSet


@dataclass(frozen=True)
class Scores:
    rows: int
    accuracy: float
    macro_f1: float

    def as_dict(self) -> dict:
        return {"rows": self.rows, "accuracy": round(self.accuracy, 4), "macro_f1": round(self.macro_f1, 4)}


def score(gold: list[str], predicted: list[str]) -> Scores:
    labels = sorted(set(gold))
    return Scores(
        len(gold),
        accuracy_score(gold, predicted),
        f1_score(gold, predicted, average="macro", labels=labels, zero_division=0),
    )


def evaluate(classifier: ReasonClassifier, data: LabelledSet, name: str) -> dict:
    """Overall, per-language and per-class quality of `classifier` on `data`, as plain JSON-ready numbers."""
    predictions = classifier.predict(data.texts)
    predicted = [p.category for p in predictions]
    gold = data.categories
    by_language: dict[str, list[int]] = defaultdict(list)
    for i, language in enumerate(data.languages):
        by_language[language or "unknown"].append(i)
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=list(CATEGORIES), zero_division=0
    )
    covered = [i for i, p in enumerate(predictions) if not p.abstained]
    sub_gold = [i for i, s in enumerate(data.sub_reasons) if s is not None]
    scored = [i for i, p in enumerate(predictions) if p.error is None]
    top = np.array([max(predictions[i].scores.values()) for i in scored])
    right = np.array([max(predictions[i].scores, key=predictions[i].scores.__getitem__) == gold[i] for i in scored])
    return {
        "data": name,
        **score(gold, predicted).as_dict(),
        "per_language": {
            language: score([gold[i] for i in rows], [predicted[i] for i in rows]).as_dict()
            for language, rows in sorted(by_language.items())
        },
        "per_category": {
            c: {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": int(s)}
            for c, p, r, f, s in zip(CATEGORIES, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": {
            "labels": list(CATEGORIES),
            "rows_true_columns_predicted": confusion_matrix(gold, predicted, labels=list(CATEGORIES)).tolist(),
        },
        "coverage": round(len(covered) / len(predictions), 4) if predictions else 0.0,
        "accuracy_when_not_abstaining": round(
            accuracy_score([gold[i] for i in covered], [predicted[i] for i in covered]), 4
        )
        if covered
        else None,
        "sub_reason_accuracy": round(
            sum(predictions[i].sub_reason == data.sub_reasons[i] for i in sub_gold) / len(sub_gold), 4
        )
        if sub_gold
        else None,
        "calibration": {
            "ece": round(expected_calibration_error(top, right), 4),
            "reliability": reliability(top, right),
            "coverage_curve": _coverage_curve(top, right),
        },
        "abstained_share": round(
            sum(p.category == ABSTAIN_CATEGORY and p.abstained for p in predictions) / max(len(predictions), 1), 4
        ),
    }


def _coverage_curve(confidence: np.ndarray, correct: np.ndarray) -> list[dict]:
    """Accuracy on the answers kept if everything below each confidence were set aside (a report, not a tuning)."""
    curve = []
    for threshold in np.round(np.arange(0.0, 0.96, 0.05), 2):
        kept = confidence >= threshold
        curve.append(
            {
                "threshold": float(threshold),
                "coverage": round(float(kept.mean()), 4),
                "accuracy": round(float(correct[kept].mean()), 4) if kept.any() else None,
            }
        )
    return curve
