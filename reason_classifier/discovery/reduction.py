"""The reducer stage: UMAP on an exactly computed cosine neighbour graph.

HDBSCAN on 512-dimensional sentence embeddings calls 80–90 % of short answers noise (every point
is far from every other in that many dimensions). UMAP to a few dimensions on the cosine
k-nearest-neighbour graph first (the BERTopic recipe) brings the noise down to 10–40 % with purer
clusters. The neighbours are computed exactly with one blocked matrix product, which is fast for
the sample sizes discovery clusters and skips pynndescent's ~25 s of just-in-time compilation per
process. The same layout in two dimensions draws the report's map.
"""

from __future__ import annotations

import warnings

import numpy as np


class NeighbourUMAP:
    """UMAP to `n_components` dimensions on the exact cosine graph of `n_neighbors` neighbours (seeded).

    `fit_transform(X)` returns the reduced rows; `n_components=0`, or too few rows for UMAP
    (at most `n_components + 2`), returns X unchanged.
    """

    def __init__(self, n_components: int = 5, n_neighbors: int = 15, random_state: int = 0) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> NeighbourUMAP:
        self.embedding_ = self.fit_transform(X)
        return self

    def fit_transform(self, X: np.ndarray, y: object = None) -> np.ndarray:
        m = len(X)
        if self.n_components == 0 or m <= self.n_components + 2:
            self.embedding_ = X
            return X
        k = min(self.n_neighbors, m - 1)
        indices, distances = exact_neighbours(X, k)
        self.embedding_ = umap_layout(X, indices, distances, self.n_components, self.random_state)
        return self.embedding_


def exact_neighbours(X: np.ndarray, k: int, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of each row by cosine (itself first, distance 0), as UMAP's precomputed_knn wants."""
    n = len(X)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        scores = X[start : start + block] @ X.T
        rows = np.arange(scores.shape[0])
        scores[rows, start + rows] = np.inf  # itself first, whatever duplicates exist
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        indices[start : start + block] = np.take_along_axis(top, order, axis=1)
        distances[start : start + block] = np.clip(1.0 - np.take_along_axis(top_scores, order, axis=1), 0.0, 2.0)
    distances[:, 0] = 0.0
    return indices, distances


def umap_layout(
    X: np.ndarray, indices: np.ndarray, distances: np.ndarray, n_components: int, random_state: int
) -> np.ndarray:
    """UMAP coordinates from a precomputed cosine k-NN graph (seeded, so reproducible)."""
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state", "no search index": both expected
        reducer = umap.UMAP(
            n_components=n_components,
            n_neighbors=indices.shape[1],
            min_dist=0.0,
            metric="cosine",
            random_state=random_state,
            precomputed_knn=(indices, distances, None),
            transform_mode="embedding",
        )
        return np.asarray(reducer.fit_transform(X), dtype=np.float32)
