"""Hashed character n-grams, read by the head beside the sentence embedding.

The embedding carries meaning across languages; character n-grams carry what it smooths away:
inflected Polish and German words, words run together or misspelt, Chinese terms the encoder's
vocabulary splits badly. Together they beat either alone in every writing round we held out
(README, "The default model: how it is made and how it was measured"). Hashing needs no vocabulary, so the feature
map is fixed by three numbers and a model folder stores only the head's weights for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import HashingVectorizer


@dataclass(frozen=True)
class CharNgrams:
    """Character n-grams within word boundaries, hashed into `n_features` columns, each row L2-normalised and scaled by `weight`.

    `weight` sets how loud the n-grams are next to the unit-length embedding under one L2 penalty.
    """

    weight: float = 3.0
    ngram_range: tuple[int, int] = (2, 4)
    n_features: int = 2**18

    def __post_init__(self) -> None:
        low, high = self.ngram_range
        if not self.weight > 0 or not 1 <= low <= high or self.n_features < 1:
            raise ValueError(
                f"char n-grams need weight > 0, 1 <= min n <= max n and n_features >= 1; got weight {self.weight!r}, "
                f"ngram_range {self.ngram_range!r}, n_features {self.n_features!r}"
            )

    @cached_property
    def _analyzer(self) -> Callable[[str], list[str]]:
        return HashingVectorizer(analyzer="char_wb", ngram_range=tuple(self.ngram_range)).build_analyzer()

    @cached_property
    def _hasher(self) -> FeatureHasher:
        return FeatureHasher(n_features=self.n_features, input_type="string", dtype=np.float32, alternate_sign=False)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """(n, n_features) sparse rows of length `weight` (an empty text gives an empty row).

        The same numbers as scikit-learn's `HashingVectorizer(analyzer="char_wb", norm="l2")` times
        `weight` (tested), without its per-call checks, which cost a live single-answer request
        three times the hashing itself.
        """
        if len(texts) == 0:
            return sp.csr_matrix((0, self.n_features), dtype=np.float32)
        counts = self._hasher.transform(self._analyzer(text) for text in texts)
        per_row = np.diff(counts.indptr)
        rows = np.repeat(np.arange(len(texts)), per_row)
        norms = np.sqrt(np.bincount(rows, weights=counts.data.astype(np.float64) ** 2, minlength=len(texts)))
        norms[norms == 0] = 1.0
        counts.data *= np.repeat((self.weight / norms).astype(np.float32), per_row)
        return counts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CharNgrams:
        return cls(weight=float(values["weight"]), ngram_range=tuple(values["ngram_range"]),  # type: ignore[arg-type]
                   n_features=int(values["n_features"]))
