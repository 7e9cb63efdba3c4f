"""Making `confidence` mean what it says: temperature scaling, and measuring how far off it is.

A logistic head trained to fit its data is over-confident on new text. One temperature,
fitted on out-of-fold predictions of the training data (never the held-out data), rescales
every score so that answers given 80 % confidence are right about 80 % of the time.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from scipy.optimize import minimize_scalar

from reason_classifier.heads import softmax

ECE_BINS = 15


def category_probabilities(logits: np.ndarray, category_matrix: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return softmax(logits / temperature) @ category_matrix


def fit_temperature(logits: np.ndarray, category_matrix: np.ndarray, true_categories: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of the true categories."""

    def loss(log_temperature: float) -> float:
        probabilities = category_probabilities(logits, category_matrix, float(np.exp(log_temperature)))
        return float(
            -np.log(np.clip(probabilities[np.arange(len(true_categories)), true_categories], 1e-12, None)).mean()
        )

    result = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per confidence bin: how many answers, their mean confidence, and how often they were right."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    table = []
    for low, high in pairwise(edges):
        inside = (confidence > low) & (confidence <= high) if low > 0 else (confidence >= low) & (confidence <= high)
        if inside.any():
            table.append(
                {
                    "low": round(float(low), 3),
                    "high": round(float(high), 3),
                    "count": int(inside.sum()),
                    "confidence": float(confidence[inside].mean()),
                    "accuracy": float(correct[inside].mean()),
                }
            )
    return table


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |accuracy − confidence| over equal-width confidence bins, weighted by their size."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    if not len(confidence):
        return 0.0
    return float(
        sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in reliability(confidence, correct, bins))
        / len(confidence)
    )
