"""Hashed character n-grams, read by the head beside the sentence embedding.

The embedding carries meaning across languages; character n-grams carry what it smooths away:
inflected Polish and German words, words run together or misspelt, Chinese terms the encoder's
vocabulary splits badly. Together they beat either alone in every writing round we held out
(see README, "How the default model was chosen"). Hashing needs no vocabulary, so the feature
map is fixed by three numbers and a model folder stores only the head's weights for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
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
    def _vectorizer(self) -> HashingVectorizer:
        return HashingVectorizer(
            analyzer="char_wb", ngram_range=tuple(self.ngram_range), n_features=self.n_features,
            alternate_sign=False, norm="l2", dtype=np.float32,
        )

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """(n, n_features) sparse rows of length `weight`."""
        return (self._vectorizer.transform(texts) * self.weight).tocsr()

    def beside(self, embeddings: np.ndarray, texts: Sequence[str]) -> sp.csr_matrix:
        """The head's input: each embedding followed by its text's n-grams."""
        return sp.hstack([sp.csr_matrix(embeddings), self.transform(texts)], format="csr")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CharNgrams:
        return cls(weight=float(values["weight"]), ngram_range=tuple(values["ngram_range"]),  # type: ignore[arg-type]
                   n_features=int(values["n_features"]))
