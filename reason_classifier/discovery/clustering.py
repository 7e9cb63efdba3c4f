"""Grouping answer embeddings into candidate reasons: sample, reduce, cluster, then "close enough" assignment.

`AnswerClusterer` follows the scikit-learn contract (`fit` returns self, `fit_predict`, `predict`,
learned state ends in `_`). Embeddings are L2-normalised rows, so a dot product is a cosine.

How it clusters, and why (measured in `bench/discovery.py`):

1. **Sample.** Inputs larger than `max_sample` rows are clustered on a seeded random sample; the
   other rows are assigned afterwards (step 4). `sample_size_` says how many rows were clustered.
2. **Reduce** with the reducer stage (default `NeighbourUMAP`: see `reduction.py` for why).
3. **Cluster** the reduced sample with the clusterer stage (default `DensityClusterer`, HDBSCAN
   with automatic parameters: see `density.py`).
4. **Assign.** Every row the clusterer left as noise, and every row outside the sample, goes to the
   nearest cluster centroid (cosine, in the original embedding space) when it is within that
   cluster's radius (`assign_spread` robust standard deviations of its members' cosines below
   their median); otherwise it stays -1 ("unassigned") and is counted, never dropped.

Steps 2 and 3 are stages: anything with `fit_transform` can reduce (or "passthrough" skips the
step), anything with `fit_predict` returning -1 for noise can cluster (KMeans, HDBSCAN, ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .density import DensityClusterer, default_min_cluster_size
from .reduction import NeighbourUMAP

UNASSIGNED = -1
"""The label of a row that belongs to no cluster."""

CLUSTERED, ASSIGNED, NOT_ASSIGNED = "clustered", "assigned", "unassigned"
"""How a row got its label: by the density clustering, by nearest-centroid assignment, or not at all."""

PASSTHROUGH = "passthrough"
"""The reducer that leaves the embeddings as they are (scikit-learn's name for a skipped step)."""


class AnswerClusterer:
    """Clustering of answer embeddings with automatic parameters for 200 to 200,000 answers.

    Parameters (stored as given, checked in `fit`):
        min_cluster_size: smallest group called a cluster; None = max(5, round(sqrt(sample) / 2)). A sample
            of fewer than twice this many rows has no cluster, whatever the clusterer.
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
        reducer: the reduction stage, anything with `fit_transform`; None = `NeighbourUMAP(n_components,
            n_neighbors, random_state)`; "passthrough" = none.
        clusterer: the clustering stage, anything with `fit_predict` giving -1 for noise; None =
            `DensityClusterer(min_cluster_size, min_samples, cluster_selection)`.

    Learned state: `labels_` (int per row, -1 = unassigned), `centroids_` (n_clusters × dim,
    L2-normalised), `radii_` (per cluster: the cosine a row needs to be assigned), `n_clusters_`,
    `sample_size_`, `sample_indices_`, `membership_` (per row: "clustered", "assigned" or
    "unassigned"), `similarity_` (per row: cosine to its cluster's centroid, or to the nearest one
    when unassigned), `n_noise_assigned_`, `n_unassigned_`, `min_cluster_size_`, `min_samples_`,
    `embedding_` (the sample's reduced coordinates), `cluster_selection_` (the HDBSCAN selection used, or the
    clusterer's class name), `reducer_` and `clusterer_` (the fitted stages; None when too few rows to cluster).
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
        reducer: Any = None,
        clusterer: Any = None,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.max_sample = max_sample
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.assign_spread = assign_spread
        self.cluster_selection = cluster_selection
        self.random_state = random_state
        self.reducer = reducer
        self.clusterer = clusterer

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
        self.reducer_: Any = None
        self.clusterer_: Any = None
        if m >= max(2 * self.min_cluster_size_, 3):
            self.reducer_ = self._reducer_stage()
            reduced = X[sample] if self.reducer_ is None else np.asarray(self.reducer_.fit_transform(X[sample]))
            self.embedding_ = reduced
            self.clusterer_ = self.clusterer or DensityClusterer(
                self.min_cluster_size_, self.min_samples_, self.cluster_selection
            )
            sample_labels = np.asarray(self.clusterer_.fit_predict(reduced)).astype(np.int64)
            if sample_labels.shape != (m,):
                raise ValueError(
                    f"the clusterer {type(self.clusterer_).__name__} returned {sample_labels.shape} labels for {m} rows"
                )
            self.cluster_selection_ = getattr(self.clusterer_, "cluster_selection_", type(self.clusterer_).__name__)
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

    def summary(self) -> dict[str, int | float | str | None]:
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
            "n_components": self._n_components(),
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
        if not (self.reducer is None or _is_passthrough(self.reducer) or hasattr(self.reducer, "fit_transform")):
            raise ValueError(f"reducer must have fit_transform, or be None or {PASSTHROUGH!r}; got {self.reducer!r}")
        if not (self.clusterer is None or hasattr(self.clusterer, "fit_predict")):
            raise ValueError(f"clusterer must have fit_predict, or be None; got {self.clusterer!r}")

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

    def _reducer_stage(self) -> Any:
        if self.reducer is None:
            return NeighbourUMAP(self.n_components, self.n_neighbors, self.random_state)
        return None if _is_passthrough(self.reducer) else self.reducer

    def _n_components(self) -> int | None:
        if self.reducer is None:
            return int(self.n_components)
        return 0 if _is_passthrough(self.reducer) else getattr(self.reducer, "n_components", None)


def _radius(similarities: np.ndarray, spread: float) -> float:
    median = float(np.median(similarities))
    deviation = 1.4826 * float(np.median(np.abs(similarities - median)))
    return median - spread * max(deviation, 1e-3) if np.isfinite(spread) else -np.inf


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


def _is_passthrough(stage: object) -> bool:
    return isinstance(stage, str) and stage == PASSTHROUGH
