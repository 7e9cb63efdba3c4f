"""Grouping answer embeddings into candidate reasons: density-based clusters plus "close enough" assignment.

`AnswerClusterer` follows the scikit-learn contract (`fit` returns self, `fit_predict`, `predict`,
learned state ends in `_`). Embeddings are L2-normalised rows, so a dot product is a cosine.

How it clusters, and why (measured in `bench/discovery.py`):

1. **Sample.** Inputs larger than `max_sample` rows are clustered on a seeded random sample; the
   other rows are assigned afterwards (step 4). `sample_size_` says how many rows were clustered.
2. **Reduce.** HDBSCAN on 512-dimensional sentence embeddings calls 80–90 % of short answers noise
   (every point is far from every other in that many dimensions). UMAP to `n_components`
   dimensions on the cosine k-nearest-neighbour graph first (the BERTopic recipe) brings the noise
   down to 10–40 % with purer clusters. The neighbours are computed exactly here with one blocked
   matrix product, which is fast for the sample sizes used and skips pynndescent's ~25 s of
   just-in-time compilation per process.
3. **Cluster.** scikit-learn's HDBSCAN on the reduced points (excess-of-mass selection, or leaf selection
   when one cluster would swallow more than half of the answers); `min_cluster_size` defaults to
   about half the square root of the sample size (5 for 200 answers, 50 for 10,000), so a
   reviewer sees tens of clusters, not hundreds.
4. **Assign.** Every row HDBSCAN left as noise, and every row outside the sample, goes to the
   nearest cluster centroid (cosine, in the original embedding space) when it is within that
   cluster's radius (`assign_spread` robust standard deviations of its members' cosines below
   their median); otherwise it stays -1 ("unassigned") and is counted, never dropped.

Also used by trends ("emerging reasons"): fit on recent answers far from every sub-reason.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

UNASSIGNED = -1
"""The label of a row that belongs to no cluster."""

CLUSTERED, ASSIGNED, NOT_ASSIGNED = "clustered", "assigned", "unassigned"
"""How a row got its label: by the density clustering, by nearest-centroid assignment, or not at all."""


class AnswerClusterer:
    """Density-based clustering of answer embeddings with automatic parameters for 200 to 200,000 answers.

    Parameters (stored as given, checked in `fit`):
        min_cluster_size: smallest group HDBSCAN calls a cluster; None = max(5, round(sqrt(sample) / 2)).
        min_samples: HDBSCAN's density smoothing; None = min_cluster_size (purer clusters, more
            noise, which step 4 then assigns).
        max_sample: at most this many rows are clustered; the rest are assigned to the clusters.
        n_components: dimensions UMAP reduces to before HDBSCAN; 0 = cluster the raw embeddings.
        n_neighbors: neighbours of the UMAP graph.
        assign_spread: how far from a centroid a row may be and still belong to the cluster, in
            robust standard deviations of the members' cosines to it (radius = median − spread ×
            1.4826 × MAD). Noise within the radius of its nearest cluster is assigned to it; a
            member HDBSCAN put in a cluster but outside its radius is taken out (UMAP's graph
            links every answer to some neighbours, so isolated answers would otherwise be hidden
            in clusters). Larger = more assigned; `float("inf")` assigns every row.
        cluster_selection: HDBSCAN's "eom", "leaf", or "auto" (default): "eom", unless its largest cluster holds
            more than half of the clustered answers, then "leaf". Measured with the default encoder: "eom" put 703 of
            744 laptop-review complaints in one cluster (2 clusters in all) where "leaf" found 12; on well-separated
            groups "leaf" splits each into several, which "eom" does not.
        random_state: seed of the sample and of UMAP; the same input and seed give the same labels.

    Learned state: `labels_` (int per row, -1 = unassigned), `centroids_` (n_clusters × dim,
    L2-normalised), `radii_` (per cluster: the cosine a row needs to be assigned), `n_clusters_`,
    `sample_size_`, `sample_indices_`, `membership_` (per row: "clustered", "assigned" or
    "unassigned"), `similarity_` (per row: cosine to its cluster's centroid, or to the nearest one
    when unassigned), `n_noise_assigned_`, `n_unassigned_`, `min_cluster_size_`, `min_samples_`,
    `embedding_` (the sample's reduced coordinates), `cluster_selection_` (the HDBSCAN selection used).
    """

    def __init__(
        self,
        min_cluster_size: int | None = None,
        min_samples: int | None = None,
        max_sample: int = 10_000,
        n_components: int = 5,
        n_neighbors: int = 15,
        assign_spread: float = 2.0,
        cluster_selection: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.max_sample = max_sample
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.assign_spread = assign_spread
        self.cluster_selection = cluster_selection
        self.random_state = random_state

    # -- the scikit-learn contract -------------------------------------------------------------

    def fit(self, embeddings: np.ndarray) -> AnswerClusterer:
        X = _as_embeddings(embeddings)
        self._check_parameters()
        n = len(X)
        rng = np.random.default_rng(self.random_state)
        sample = np.sort(rng.choice(n, size=self.max_sample, replace=False)) if n > self.max_sample else np.arange(n)
        self.sample_indices_ = sample
        self.sample_size_ = len(sample)
        m = self.sample_size_
        self.min_cluster_size_ = self.min_cluster_size or default_min_cluster_size(m)
        self.min_samples_ = self.min_samples or self.min_cluster_size_

        sample_labels = np.full(m, UNASSIGNED, dtype=np.int64)
        self.embedding_ = np.zeros((m, 0), dtype=np.float32)
        self.cluster_selection_ = "none"
        if m >= max(2 * self.min_cluster_size_, 3):
            reduced = self._reduce(X[sample])
            self.embedding_ = reduced
            selection = "eom" if self.cluster_selection == "auto" else self.cluster_selection
            sample_labels = _hdbscan(reduced, self.min_cluster_size_, self.min_samples_, selection)
            clustered = sample_labels[sample_labels >= 0]
            if (
                self.cluster_selection == "auto"
                and len(clustered)
                and np.bincount(clustered).max() > 0.5 * len(clustered)
            ):
                selection = "leaf"
                sample_labels = _hdbscan(reduced, self.min_cluster_size_, self.min_samples_, selection)
            self.cluster_selection_ = selection
        sample_labels = _renumber_by_size(sample_labels)

        self.n_clusters_ = int(sample_labels.max() + 1) if m else 0
        dim = X.shape[1]
        self.centroids_ = np.zeros((self.n_clusters_, dim), dtype=np.float32)
        self.radii_ = np.zeros(self.n_clusters_, dtype=np.float32)
        for cluster in range(self.n_clusters_):
            members = X[sample[sample_labels == cluster]]
            centroid = members.mean(axis=0)
            centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
            self.centroids_[cluster] = centroid
            self.radii_[cluster] = _radius(members @ centroid, self.assign_spread)

        labels = np.full(n, UNASSIGNED, dtype=np.int64)
        labels[sample] = sample_labels
        nearest, similarity = self._nearest(X)
        if self.n_clusters_:
            # UMAP's graph pulls isolated answers into some cluster; one far from that cluster's centre in the
            # original space is not a member (it may still be assigned to the cluster it is nearest to).
            own = labels >= 0
            own_similarity = np.einsum("ij,ij->i", X[own], self.centroids_[labels[own]])
            evicted = np.flatnonzero(own)[own_similarity < self.radii_[labels[own]]]
            labels[evicted] = UNASSIGNED
        self.n_evicted_ = int(len(evicted)) if self.n_clusters_ else 0
        membership = np.full(n, NOT_ASSIGNED, dtype=object)
        membership[labels >= 0] = CLUSTERED
        to_assign = labels == UNASSIGNED
        close = to_assign & (nearest >= 0)
        if self.n_clusters_:
            close &= similarity >= self.radii_[np.maximum(nearest, 0)]
        labels[close] = nearest[close]
        membership[close] = ASSIGNED
        own = labels >= 0
        similarity[own] = np.einsum("ij,ij->i", X[own], self.centroids_[labels[own]]) if own.any() else similarity[own]

        in_sample = np.zeros(n, dtype=bool)
        in_sample[sample] = True
        self.labels_ = labels
        self.membership_ = membership
        self.similarity_ = similarity.astype(np.float32)
        self.n_noise_assigned_ = int((close & in_sample).sum())
        self.n_out_of_sample_assigned_ = int((close & ~in_sample).sum())
        self.n_unassigned_ = int((labels == UNASSIGNED).sum())
        return self

    def fit_predict(self, embeddings: np.ndarray, y: object = None) -> np.ndarray:
        return self.fit(embeddings).labels_

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """The nearest cluster of each row when it is close enough (see `assign_spread`), else -1."""
        self._check_fitted()
        X = _as_embeddings(embeddings)
        nearest, similarity = self._nearest(X)
        if not self.n_clusters_:
            return nearest
        close = similarity >= self.radii_[np.maximum(nearest, 0)]
        return np.where(close, nearest, UNASSIGNED)

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """Cosine similarity of each row to each cluster centroid, (n, n_clusters_)."""
        self._check_fitted()
        return _as_embeddings(embeddings) @ self.centroids_.T

    # -- reporting -----------------------------------------------------------------------------

    def summary(self) -> dict[str, int | float | str]:
        """Counts a report shows: rows, sample size, clusters, noise assigned, unassigned, parameters."""
        self._check_fitted()
        return {
            "rows": int(len(self.labels_)),
            "sample_size": int(self.sample_size_),
            "clusters": int(self.n_clusters_),
            "clustered": int((self.membership_ == CLUSTERED).sum()),
            "evicted": self.n_evicted_,
            "noise_assigned": self.n_noise_assigned_,
            "out_of_sample_assigned": self.n_out_of_sample_assigned_,
            "unassigned": self.n_unassigned_,
            "min_cluster_size": int(self.min_cluster_size_),
            "min_samples": int(self.min_samples_),
            "n_components": int(self.n_components),
            "cluster_selection": self.cluster_selection_,
            "random_state": int(self.random_state),
        }

    # -- helpers -------------------------------------------------------------------------------

    def _check_parameters(self) -> None:
        if self.min_cluster_size is not None and (
            not isinstance(self.min_cluster_size, int) or self.min_cluster_size < 2
        ):
            raise ValueError(f"min_cluster_size must be an integer of at least 2, got {self.min_cluster_size!r}")
        if self.min_samples is not None and (not isinstance(self.min_samples, int) or self.min_samples < 1):
            raise ValueError(f"min_samples must be a positive integer, got {self.min_samples!r}")
        if not isinstance(self.max_sample, int) or self.max_sample < 10:
            raise ValueError(f"max_sample must be an integer of at least 10, got {self.max_sample!r}")
        if not isinstance(self.n_components, int) or self.n_components < 0:
            raise ValueError(f"n_components must be a non-negative integer, got {self.n_components!r}")
        if not isinstance(self.n_neighbors, int) or self.n_neighbors < 2:
            raise ValueError(f"n_neighbors must be an integer of at least 2, got {self.n_neighbors!r}")
        if self.cluster_selection not in ("auto", "eom", "leaf"):
            raise ValueError(f"cluster_selection must be 'auto', 'eom' or 'leaf', got {self.cluster_selection!r}")
        if not self.assign_spread >= 0:
            raise ValueError(f"assign_spread must be a non-negative number, got {self.assign_spread!r}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "centroids_"):
            raise RuntimeError("this AnswerClusterer is not fitted yet; call fit first")

    def _nearest(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.n_clusters_ or not len(X):
            return np.full(len(X), UNASSIGNED, dtype=np.int64), np.zeros(len(X), dtype=np.float32)
        nearest = np.empty(len(X), dtype=np.int64)
        similarity = np.empty(len(X), dtype=np.float32)
        for start in range(0, len(X), 8192):
            scores = X[start : start + 8192] @ self.centroids_.T
            nearest[start : start + 8192] = scores.argmax(axis=1)
            similarity[start : start + 8192] = scores.max(axis=1)
        return nearest, similarity

    def _reduce(self, X: np.ndarray) -> np.ndarray:
        m = len(X)
        if self.n_components == 0 or m <= self.n_components + 2:
            return X
        k = min(self.n_neighbors, m - 1)
        indices, distances = exact_neighbours(X, k)
        return umap_layout(X, indices, distances, self.n_components, self.random_state)


def _radius(similarities: np.ndarray, spread: float) -> float:
    median = float(np.median(similarities))
    deviation = 1.4826 * float(np.median(np.abs(similarities - median)))
    return median - spread * max(deviation, 1e-3) if np.isfinite(spread) else -np.inf


def default_min_cluster_size(sample_size: int) -> int:
    """max(5, round(sqrt(n) / 2)): 5 for 200 answers, 16 for 1,000, 50 for 10,000."""
    return max(5, round(math.sqrt(max(sample_size, 0)) / 2))


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


def _hdbscan(points: np.ndarray, min_cluster_size: int, min_samples: int, selection: str) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    min_samples = min(min_samples, len(points) - 1)
    return HDBSCAN(
        min_cluster_size=min_cluster_size, min_samples=min_samples, cluster_selection_method=selection, copy=True
    ).fit_predict(points)


def _renumber_by_size(labels: np.ndarray) -> np.ndarray:
    """Cluster 0 is the largest, then 1, …; ties by first appearance. -1 stays -1."""
    kept = labels[labels >= 0]
    if not len(kept):
        return labels.astype(np.int64)
    ids, first, counts = np.unique(kept, return_index=True, return_counts=True)
    order = sorted(range(len(ids)), key=lambda i: (-counts[i], first[i]))
    mapping = np.full(int(ids.max()) + 1, UNASSIGNED, dtype=np.int64)
    mapping[ids[order]] = np.arange(len(ids))
    return np.where(labels >= 0, mapping[np.maximum(labels, 0)], UNASSIGNED).astype(np.int64)


def _as_embeddings(embeddings: np.ndarray) -> np.ndarray:
    X = np.asarray(embeddings, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (rows × dimensions), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("embeddings contain NaN or infinite values")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)
