"""Weighing the fine-tuned transformer beside the fast head, on rows neither was fitted on.

The transformer is fine-tuned once, with a seeded share of the training rows kept out
(`calibration_split`); the fast head's scores for those rows are its out-of-fold scores from
cross-validation. On those rows alone: the transformer's temperature, then for every weight the
mixture's macro-F1 and calibration, and the abstention threshold of the chosen weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from reason_classifier.heads import softmax
from reason_classifier.taxonomy import CATEGORIES, Taxonomy

from .calibration import expected_calibration_error, fit_temperature
from .train import abstention_curve, best_threshold

WEIGHT_GRID = np.round(np.arange(0.0, 1.01, 0.1), 2)


def calibration_split(strata: Sequence[str], share: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rows the transformer is fine-tuned on, rows kept out to calibrate and weigh it), stratified by `strata`."""
    rows = np.arange(len(strata))
    fit, kept = train_test_split(rows, test_size=share, random_state=seed, stratify=list(strata))
    return np.sort(fit), np.sort(kept)


def weigh(
    head_probabilities: np.ndarray,
    transformer_logits: np.ndarray,
    true_sub_reasons: np.ndarray,
    taxonomy: Taxonomy,
    weight: float | None = None,
) -> dict:
    """The transformer's temperature, the weight curve, the chosen weight and its abstention threshold.

    `head_probabilities` are the fast head's calibrated out-of-fold sub-reason probabilities for
    the kept rows; `transformer_logits` the transformer's for the same rows. `weight` None picks
    the weight with the best macro-F1 on these rows.
    """
    matrix = taxonomy.category_matrix()
    truth = np.argmax(np.eye(len(taxonomy.sub_reason_names))[true_sub_reasons] @ matrix, axis=1)
    temperature = fit_temperature(transformer_logits, matrix, truth)
    transformer = softmax(transformer_logits / temperature)
    names = np.array(CATEGORIES)
    curve = []
    for w in WEIGHT_GRID:
        categories = ((1 - w) * head_probabilities + w * transformer) @ matrix
        curve.append(
            {
                "weight": float(w),
                "macro_f1": float(f1_score(names[truth], names[categories.argmax(1)], average="macro")),
                "ece": expected_calibration_error(categories.max(1), categories.argmax(1) == truth),
            }
        )
    chosen = (
        weight if weight is not None else max(curve, key=lambda p: (round(p["macro_f1"], 3), p["weight"]))["weight"]
    )
    categories = ((1 - chosen) * head_probabilities + chosen * transformer) @ matrix
    return {
        "transformer_temperature": temperature,
        "weight": float(chosen),
        "weight_curve": curve,
        "abstain_below": best_threshold(abstention_curve(categories, truth)),
        "kept_rows": len(truth),
    }
