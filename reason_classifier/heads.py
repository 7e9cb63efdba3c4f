"""A linear softmax layer over sentence embeddings (and any features beside them), evaluated in numpy.

Training happens elsewhere (scikit-learn, in `training/`); serving needs only the learned
weights, so the service imports no training library and a prediction is one matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

HEAD_PREFIX = "sub_reason"
"""The prefix of a head's arrays in its file (heads over the sub-reasons)."""


@dataclass(frozen=True)
class LinearHead:
    """Multinomial logistic regression with a calibration temperature.

    Probabilities are softmax((X @ coef.T + intercept) / temperature).
    """

    classes: tuple[str, ...]
    coef: np.ndarray  # (n_classes, dimension)
    intercept: np.ndarray  # (n_classes,)
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.coef.shape != (len(self.classes), self.coef.shape[1]) or self.intercept.shape != (len(self.classes),):
            raise ValueError(
                f"weights do not fit {len(self.classes)} classes: coef {self.coef.shape}, intercept "
                f"{self.intercept.shape}"
            )
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")

    @property
    def dimension(self) -> int:
        return int(self.coef.shape[1])

    def logits(self, *blocks: np.ndarray | sp.spmatrix) -> np.ndarray:
        """Uncalibrated scores (temperature 1), for fitting the temperature.

        The input may come as column blocks side by side (dense embeddings, sparse n-grams), which
        is faster than joining them into one matrix first.
        """
        if sum(block.shape[1] for block in blocks) != self.dimension:
            raise ValueError(f"the head reads {self.dimension} columns; got blocks of {[b.shape[1] for b in blocks]}")
        scores = np.zeros((blocks[0].shape[0], len(self.classes)), dtype=np.float32) + self.intercept
        start = 0
        for block in blocks:
            width = block.shape[1]
            scores += np.asarray(block @ self._coef_by_column[start : start + width])
            start += width
        return scores

    def predict_proba(self, *blocks: np.ndarray | sp.spmatrix) -> np.ndarray:
        return softmax(self.logits(*blocks) / self.temperature)

    @cached_property
    def _coef_by_column(self) -> np.ndarray:
        """coef transposed and contiguous: a sparse block times it does not copy the weights on every call."""
        return np.ascontiguousarray(self.coef.T)

    def with_temperature(self, temperature: float) -> LinearHead:
        return LinearHead(self.classes, self.coef, self.intercept, temperature)

    def reorder(self, classes: Sequence[str]) -> LinearHead:
        """The same head with its outputs in the order of `classes` (which must be the same set)."""
        if sorted(classes) != sorted(self.classes):
            raise ValueError(f"cannot reorder classes {list(self.classes)} as {list(classes)}")
        index = [self.classes.index(c) for c in classes]
        return LinearHead(tuple(classes), self.coef[index], self.intercept[index], self.temperature)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}_classes": np.array(self.classes),
            f"{prefix}_coef": self.coef.astype(np.float32),
            f"{prefix}_intercept": self.intercept.astype(np.float32),
            f"{prefix}_temperature": np.array(self.temperature, dtype=np.float64),
        }

    def save(self, path: str | Path) -> None:
        """One `.npz` file with the arrays under the prefix `sub_reason`, as every model folder keeps its heads."""
        arrays: dict[str, Any] = self.to_arrays(HEAD_PREFIX)
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> LinearHead:
        """The head `save` wrote; raises OSError, KeyError or ValueError on a file that is not one."""
        with np.load(path, allow_pickle=False) as arrays:
            return cls.from_arrays(arrays, HEAD_PREFIX)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray] | np.lib.npyio.NpzFile, prefix: str) -> LinearHead:
        return cls(
            classes=tuple(str(c) for c in arrays[f"{prefix}_classes"]),
            coef=np.asarray(arrays[f"{prefix}_coef"], dtype=np.float32),
            intercept=np.asarray(arrays[f"{prefix}_intercept"], dtype=np.float32),
            temperature=float(arrays[f"{prefix}_temperature"]),
        )


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax; works on a copy, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted
