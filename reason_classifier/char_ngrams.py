"""Hashed character n-grams, weighted by how rare they are, read by the head beside the sentence embedding.

The embedding carries meaning across languages; character n-grams carry what it smooths away:
inflected Polish and German words, words run together or misspelt, Chinese terms the encoder's
vocabulary splits badly; together they read answers better than either alone. Weighting each
n-gram by its rarity in the training answers (IDF, with dampened repeats) lets "refund" or "zwrot"
speak louder than "the" or "nie". The measurements behind both are in docs/model-history.md.
They read answers without diacritics, so "nie dziala" and "nie działa" share every n-gram
(`reason_classifier.diacritics`).
Hashing needs no vocabulary: the feature map is fixed by a few numbers and one IDF array.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import HashingVectorizer

from .diacritics import strip_diacritics


@dataclass(frozen=True, eq=False)
class CharNgrams:
    """Character n-grams within word boundaries, hashed into `n_features` columns, each row L2-normalised and scaled by
    `weight`.

    `weight` sets how loud the n-grams are next to the unit-length embedding under one L2 penalty.
    `sublinear_tf` counts a repeated n-gram as 1 + log(count). `idf`, learnt by `fit`, weights each
    column by the smoothed inverse document frequency, as scikit-learn's `TfidfTransformer` does;
    columns never seen in training get the largest weight, so an unfamiliar answer is not
    stretched to full length on its few familiar n-grams. `fold_diacritics` reads "très" as "tres".
    Folders written before these existed have none of them and read the same as before.
    """

    weight: float = 4.0
    ngram_range: tuple[int, int] = (2, 4)
    n_features: int = 2**18
    sublinear_tf: bool = True
    fold_diacritics: bool = True
    idf: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        low, high = self.ngram_range
        if not self.weight > 0 or not 1 <= low <= high or self.n_features < 1:
            raise ValueError(
                f"char n-grams need weight > 0, 1 <= min n <= max n and n_features >= 1; got weight {self.weight!r}, "
                f"ngram_range {self.ngram_range!r}, n_features {self.n_features!r}"
            )
        if self.idf is not None and self.idf.shape != (self.n_features,):
            raise ValueError(
                f"char n-gram IDF must have one value per column ({self.n_features}); got shape {self.idf.shape}"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CharNgrams):
            return NotImplemented
        same_idf = (self.idf is None and other.idf is None) or (
            self.idf is not None and other.idf is not None and np.array_equal(self.idf, other.idf)
        )
        return self.to_dict() == other.to_dict() and same_idf

    __hash__ = object.__hash__

    @cached_property
    def _analyzer(self) -> Callable[[str], list[str]]:
        fold = _lower_without_diacritics if self.fold_diacritics else None
        return HashingVectorizer(
            analyzer="char_wb", ngram_range=tuple(self.ngram_range), preprocessor=fold
        ).build_analyzer()

    @cached_property
    def _hasher(self) -> FeatureHasher:
        return FeatureHasher(n_features=self.n_features, input_type="string", dtype=np.float32, alternate_sign=False)

    def count(self, texts: Sequence[str]) -> sp.csr_matrix:
        """(n, n_features) raw n-gram counts: the costly part, which `fit_counts` and `weigh` share."""
        if len(texts) == 0:
            return sp.csr_matrix((0, self.n_features), dtype=np.float32)
        return self._hasher.transform(self._analyzer(text) for text in texts)

    def fit(self, texts: Sequence[str]) -> CharNgrams:
        return self.fit_counts(self.count(texts))

    def fit_counts(self, counts: sp.csr_matrix) -> CharNgrams:
        """A copy whose IDF comes from the answers behind `counts`: ln((1 + n) / (1 + df)) + 1."""
        documents = np.bincount(counts.indices, minlength=self.n_features)
        idf = np.log((1 + counts.shape[0]) / (1 + documents)) + 1
        return replace(self, idf=idf.astype(np.float32))

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """(n, n_features) sparse rows of length `weight` (an empty text gives an empty row).

        Without IDF, sublinear counts and folding these are the numbers of scikit-learn's
        `HashingVectorizer(analyzer="char_wb", norm="l2")` times `weight` (tested), computed
        without its per-call checks, which cost a live single-answer request three times the hashing itself.
        """
        return self._weigh_in_place(self.count(texts))

    def weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """The rows `transform` gives, from counts made by `count` (left unchanged, so training can reuse them)."""
        return self._weigh_in_place(counts.copy())

    def _weigh_in_place(self, values: sp.csr_matrix) -> sp.csr_matrix:
        if self.sublinear_tf:
            values.data = 1 + np.log(values.data)
        if self.idf is not None:
            values.data *= self.idf[values.indices]
        per_row = np.diff(values.indptr)
        rows = np.repeat(np.arange(values.shape[0]), per_row)
        norms = np.sqrt(np.bincount(rows, weights=values.data.astype(np.float64) ** 2, minlength=values.shape[0]))
        norms[norms == 0] = 1.0
        values.data *= np.repeat((self.weight / norms).astype(np.float32), per_row)
        return values

    def to_dict(self) -> dict[str, Any]:
        """The settings, for a model folder's config; the IDF array is stored beside it."""
        return {
            "weight": self.weight,
            "ngram_range": list(self.ngram_range),
            "n_features": self.n_features,
            "sublinear_tf": self.sublinear_tf,
            "fold_diacritics": self.fold_diacritics,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any], idf: np.ndarray | None = None) -> CharNgrams:
        return cls(
            weight=float(values["weight"]),
            ngram_range=tuple(values["ngram_range"]),
            n_features=int(values["n_features"]),
            sublinear_tf=bool(values.get("sublinear_tf", False)),
            fold_diacritics=bool(values.get("fold_diacritics", False)),
            idf=idf,
        )


def _lower_without_diacritics(text: str) -> str:
    return strip_diacritics(text.lower())
