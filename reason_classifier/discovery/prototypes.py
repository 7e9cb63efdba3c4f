"""The taxonomy matcher stage: where an answer, or a cluster of answers, sits relative to the sub-reasons.

`TaxonomyPrototypes` holds one prototype per sub-reason: the L2-normalised mean embedding of its
seed answers (`taxonomy.examples()`, written in several languages, so the prototype is about the
reason, not one language). Uses:
- discovery proposes a category and sub-reason for each cluster (`propose`), or `new` when no
  sub-reason is near;
- trends finds "emerging reasons": answers whose best `similarity` to every sub-reason is low,
  then discovered with this matcher.

A replacement matcher needs `propose(centroids, new_below)`, returning one `Proposal` per row.

Cosines of a single short answer to a prototype run lower than those of a cluster centroid (a
mean of many answers is less noisy), so thresholds for answers and for centroids differ; the
discovery defaults are measured in `bench/discovery.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..encoders import Encoder
from ..taxonomy import Taxonomy

NEW = "new"
"""The proposal for a cluster that no sub-reason of the taxonomy is near."""

DEFAULT_NEW_BELOW = 0.5
"""A cluster centroid less similar than this to every sub-reason prototype is proposed as `new`.

Discovery sets a measured value per encoder: 0.55 for the shipped fine-tuned encoder, 0.45 for the base
USE; see encoding.NEW_BELOW."""


@dataclass(frozen=True)
class Proposal:
    """The taxonomy entry nearest a cluster: its category and sub-reason (or `new`) and the cosine to it."""

    category: str
    sub_reason: str
    similarity: float
    nearest_sub_reason: str


class TaxonomyPrototypes:
    """One prototype embedding per sub-reason of `taxonomy`, built with `encoder`.

    `sub_reasons` lists the ids in the taxonomy's order (the columns of `similarity`);
    `vectors` is (n_sub_reasons, dimension), rows of unit length. A sub-reason without seed
    answers falls back to its description.
    """

    def __init__(self, taxonomy: Taxonomy, encoder: Encoder) -> None:
        self.taxonomy = taxonomy
        self.encoder_name = getattr(encoder, "name", type(encoder).__name__)
        self.sub_reasons: list[str] = taxonomy.sub_reason_names
        texts: dict[str, list[str]] = {name: [] for name in self.sub_reasons}
        for example in taxonomy.examples():
            if example.sub_reason is not None:
                texts[example.sub_reason].append(example.text)
        vectors = []
        for name in self.sub_reasons:
            seeds = texts[name] or [taxonomy.sub_reason(name).description]
            mean = encoder.encode(seeds).mean(axis=0)
            vectors.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        self.vectors = np.vstack(vectors).astype(np.float32)
        self.categories: list[str] = [taxonomy.category_of(name) for name in self.sub_reasons]

    def similarity(self, embeddings: np.ndarray) -> np.ndarray:
        """Cosine of each row (L2-normalised embeddings) to each sub-reason: (n, n_sub_reasons)."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.vectors.shape[1]:
            raise ValueError(
                f"embeddings must be (n, {self.vectors.shape[1]}) from the prototypes' encoder "
                f"({self.encoder_name}); got shape {embeddings.shape}"
            )
        return embeddings @ self.vectors.T

    def nearest(self, embeddings: np.ndarray) -> tuple[list[str], np.ndarray]:
        """The nearest sub-reason id of each row and its cosine."""
        scores = self.similarity(embeddings)
        if not len(scores):
            return [], np.zeros(0, dtype=np.float32)
        best = scores.argmax(axis=1)
        return [self.sub_reasons[i] for i in best], scores[np.arange(len(best)), best]

    def propose(self, centroids: np.ndarray, new_below: float = DEFAULT_NEW_BELOW) -> list[Proposal]:
        """A proposal per cluster centroid: the nearest sub-reason, or `new` under `new_below` (category still the
        nearest's)."""
        names, scores = self.nearest(centroids)
        proposals = []
        for name, score in zip(names, scores, strict=True):
            category = self.taxonomy.category_of(name)
            proposals.append(Proposal(category, name if score >= new_below else NEW, round(float(score), 3), name))
        return proposals
