"""`ReasonDiscoverer`: from answers nobody has labelled to candidate reasons a person can name.

One object composed of stages, as BERTopic composes its embedder, reducer, clusterer and
representation; each stage is a constructor argument whose default is the choice measured in
`bench/discovery.py`, and each can be replaced by anything with the same method:

    stage       default                                   replaceable by anything with
    encoder     "default": the shipped model's encoder    encode(texts), or transform(texts) (fitted on the answers)
    reducer     NeighbourUMAP(5 dimensions)               fit_transform(X); "passthrough" skips reduction
    clusterer   DensityClusterer (HDBSCAN, automatic)     fit_predict(X), -1 for noise
    keywords    ClusterKeywords (class-based TF-IDF)      fit_transform(texts, labels) -> {label: [keyword, ...]}
    matcher     TaxonomyPrototypes of `taxonomy`          propose(centroids, new_below) -> [Proposal, ...]

After the clusterer, answers it left as noise (and answers outside a large input's clustered
sample) are assigned to the nearest cluster when close enough (`AnswerClusterer`), so the result
accounts for every answer: clustered, assigned, or unassigned (-1), never dropped.

    discoverer = ReasonDiscoverer(seed=0)
    discovery = discoverer.fit_transform(answers)      # a Discovery: clusters, a label per answer, ...
    for cluster in discovery.clusters:
        print(cluster.id, cluster.size, cluster.keywords[:3], cluster.proposal)
    discoverer.predict(more_answers)                   # their clusters, -1 when none is close

The discovery folder a person reviews (`folder.discover`) and emerging reasons in trends are both
built on this object.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..progress import ProgressCallback, ProgressEvent
from ..taxonomy import Taxonomy, default_taxonomy_path
from .clustering import UNASSIGNED, AnswerClusterer
from .encoding import DEFAULT_ENCODER, ENCODE_BATCH, NEW_BELOW, as_encoder, distinct, embed, encoder_name
from .keywords import ClusterKeywords
from .prototypes import DEFAULT_NEW_BELOW, Proposal, TaxonomyPrototypes

EXAMPLE_CHARS = 300
"""A typical answer longer than this is shown cut, with "..." (the whole answer stays in the data)."""


@dataclass
class DiscoveredCluster:
    """One candidate reason: its answers, the words that set it apart and the taxonomy entry nearest it."""

    id: int
    name: str  # its first three keywords, or "cluster N"
    size: int  # answers in it, clustered or assigned
    share: float  # of all answers, 0-1, 4 decimals
    keywords: list[str]
    examples: list[str]  # distinct answers nearest its centre (compared ignoring case and spacing)
    languages: dict[str, int]  # answers per language, most first ("unknown" when undetected); empty when not detected
    proposal: Proposal | None  # the nearest sub-reason, or `new`; None without a matcher
    members: np.ndarray  # positions of its answers among the texts, nearest its centre first


@dataclass
class UnassignedAnswers:
    size: int
    share: float
    examples: list[str]  # a seeded sample of them, distinct


@dataclass
class Discovery:
    """The result of `ReasonDiscoverer.fit_transform`: every answer accounted for, in the order given."""

    clusters: list[DiscoveredCluster]
    labels: np.ndarray  # per answer: its cluster, -1 = unassigned
    membership: np.ndarray  # per answer: "clustered", "assigned" or "unassigned"
    similarity: np.ndarray  # per answer: cosine to its cluster's centre (to the nearest one when unassigned)
    languages: list[str]  # per answer: ISO code, "" when unknown or not detected
    unassigned: UnassignedAnswers
    summary: dict[str, Any]  # counts and parameters a report shows
    embeddings: np.ndarray = field(repr=False)  # per answer, as the encoder gave them


@dataclass
class Assignments:
    """New answers placed among the clusters found (`ReasonDiscoverer.transform`)."""

    labels: np.ndarray  # per answer: the nearest cluster when close enough, else -1
    similarity: np.ndarray  # per answer and cluster: cosine to the cluster's centre, (n, n_clusters)


class ReasonDiscoverer:
    """Discovery of candidate reasons in free-text answers, composed of replaceable stages (see the module).

    Stages (None = the default; see the module's table):
        encoder: "default", an encoder name or folder for `load_encoder` ("use-multilingual-v3", ...), or an
            object with `encode(texts)` or `transform(texts)`.
        reducer, clusterer: given to `AnswerClusterer`.
        keywords: the keywords stage; None = ClusterKeywords(top_n=n_keywords).
        matcher: proposes a taxonomy entry per cluster; None = TaxonomyPrototypes(taxonomy, encoder).
    Knobs:
        taxonomy: the taxonomy (a file or a Taxonomy) the default matcher proposes from; None =
            labels/taxonomy.yaml in a checkout, else the shipped model's.
        min_cluster_size, max_sample, assign_spread: see `AnswerClusterer`.
        new_below: a cluster whose centre is less similar than this to every sub-reason is proposed `new`;
            None = NEW_BELOW of a named encoder, else prototypes.DEFAULT_NEW_BELOW.
        n_keywords: keywords per cluster of the default keywords stage.
        examples: typical answers kept per cluster (and of the unassigned answers).
        detect_languages: count each cluster's answers per language (off: no language detector loaded).
        seed: seed of the clustered sample, of UMAP and of the unassigned examples: same input, same result.
        batch_size: answers encoded at a time.

    Learned: `discovery_` (the Discovery of the fitted answers), `encoder_`, `clusterer_` (the fitted
    AnswerClusterer), `keywords_` (the fitted keywords stage), `matcher_`, `new_below_`, `timings_`
    (seconds per step).
    """

    def __init__(
        self,
        encoder: Any = DEFAULT_ENCODER,
        reducer: Any = None,
        clusterer: Any = None,
        keywords: Any = None,
        matcher: Any = None,
        *,
        taxonomy: str | Path | Taxonomy | None = None,
        min_cluster_size: int | None = None,
        max_sample: int = 10_000,
        assign_spread: float = 2.0,
        new_below: float | None = None,
        n_keywords: int = 10,
        examples: int = 8,
        detect_languages: bool = True,
        seed: int = 0,
        batch_size: int = ENCODE_BATCH,
    ) -> None:
        self.encoder = encoder
        self.reducer = reducer
        self.clusterer = clusterer
        self.keywords = keywords
        self.matcher = matcher
        self.taxonomy = taxonomy
        self.min_cluster_size = min_cluster_size
        self.max_sample = max_sample
        self.assign_spread = assign_spread
        self.new_below = new_below
        self.n_keywords = n_keywords
        self.examples = examples
        self.detect_languages = detect_languages
        self.seed = seed
        self.batch_size = batch_size

    # -- the scikit-learn contract -------------------------------------------------------------

    def fit(
        self, texts: Sequence[str], embeddings: np.ndarray | None = None, on_progress: ProgressCallback | None = None
    ) -> ReasonDiscoverer:
        """Discover the clusters of `texts`; `embeddings` (one row per text) skips the encoder."""
        self._check_parameters()
        texts = _as_texts(texts)
        report = on_progress or (lambda event: None)
        self.timings_: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            self.timings_[name] = round(now - clock, 3)
            clock = now

        taxonomy = self._taxonomy() if self.matcher is None else None  # a bad taxonomy file fails before any work
        unique, which = distinct(texts)
        self.encoder_ = as_encoder(self.encoder)
        if embeddings is None:
            embeddings = embed(self.encoder_, unique, self.batch_size, report)[which]
        else:
            embeddings = np.asarray(embeddings, dtype=np.float32)
            if embeddings.ndim != 2 or len(embeddings) != len(texts):
                raise ValueError(f"embeddings must have one row per text ({len(texts)}); got shape {embeddings.shape}")
        self.new_below_ = (
            self.new_below
            if self.new_below is not None
            else NEW_BELOW.get(self.encoder, DEFAULT_NEW_BELOW)
            if isinstance(self.encoder, str)
            else DEFAULT_NEW_BELOW
        )
        lap("embed")

        report(ProgressEvent("clustering", 0, 1))
        self.clusterer_ = AnswerClusterer(
            min_cluster_size=self.min_cluster_size,
            max_sample=self.max_sample,
            assign_spread=self.assign_spread,
            random_state=self.seed,
            reducer=self.reducer,
            clusterer=self.clusterer,
        )
        labels = self.clusterer_.fit_predict(embeddings)
        lap("cluster")

        report(ProgressEvent("describing clusters", 0, 1))
        languages = [""] * len(texts)
        if self.detect_languages:
            from ..language import default_detector

            unique_languages = default_detector().detect_many(unique)
            languages = [unique_languages[i] or "" for i in which]
        lap("languages")
        self.keywords_ = self.keywords if self.keywords is not None else ClusterKeywords(top_n=self.n_keywords)
        keywords = self.keywords_.fit_transform(texts, labels)
        self.matcher_ = self.matcher if taxonomy is None else TaxonomyPrototypes(taxonomy, self.encoder_)
        centroids = self.clusterer_.centroids_
        proposals = list(self.matcher_.propose(centroids, new_below=self.new_below_)) if len(centroids) else []
        similarity = self.clusterer_.similarity_
        clusters = self._describe(texts, labels, similarity, languages, keywords, proposals)
        unassigned = np.flatnonzero(labels == UNASSIGNED)
        unassigned_share = round(len(unassigned) / max(len(texts), 1), 4)
        rng = np.random.default_rng(self.seed)
        self.discovery_ = Discovery(
            clusters=clusters,
            labels=labels,
            membership=self.clusterer_.membership_,
            similarity=similarity,
            languages=languages,
            unassigned=UnassignedAnswers(
                size=len(unassigned),
                share=unassigned_share,
                examples=distinct_examples((texts[i] for i in rng.permutation(unassigned)), self.examples),
            ),
            summary={
                **self.clusterer_.summary(),
                "answers": len(texts),
                "distinct_answers": len(unique),
                "unassigned_share": unassigned_share,
                "new_below": self.new_below_,
                "assign_spread": self.assign_spread,
            },
            embeddings=embeddings,
        )
        lap("describe")
        return self

    def fit_transform(
        self, texts: Sequence[str], embeddings: np.ndarray | None = None, on_progress: ProgressCallback | None = None
    ) -> Discovery:
        return self.fit(texts, embeddings, on_progress).discovery_

    def transform(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> Assignments:
        """Place new answers among the clusters found, by the same rule that assigned the fitted noise."""
        self._check_fitted()
        texts = _as_texts(texts)
        if embeddings is None:
            unique, which = distinct(texts)
            embeddings = np.asarray(self.encoder_.encode(unique), dtype=np.float32)[which] if unique else None
        if embeddings is None:
            return Assignments(np.zeros(0, dtype=np.int64), np.zeros((0, self.clusterer_.n_clusters_), np.float32))
        return Assignments(self.clusterer_.predict(embeddings), self.clusterer_.transform(embeddings))

    def predict(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """The cluster of each new answer, -1 when none is close enough."""
        return self.transform(texts, embeddings).labels

    # -- helpers -------------------------------------------------------------------------------

    @property
    def encoder_name(self) -> str:
        """What the review file records as the encoder."""
        return encoder_name(self.encoder)

    @property
    def taxonomy_path(self) -> str:
        """The default matcher's taxonomy file, as the review file records it ("<taxonomy>" when given as an object)."""
        if isinstance(self.taxonomy, Taxonomy):
            return "<taxonomy>"
        return str(Path(self.taxonomy) if self.taxonomy else default_taxonomy_path())

    def _describe(
        self,
        texts: list[str],
        labels: np.ndarray,
        similarity: np.ndarray,
        languages: list[str],
        keywords: dict[int, list[str]],
        proposals: list[Proposal],
    ) -> list[DiscoveredCluster]:
        clusters = []
        for cluster in range(self.clusterer_.n_clusters_):
            in_order = np.flatnonzero(labels == cluster)
            members = in_order[np.argsort(-similarity[in_order], kind="stable")]
            words = list(keywords.get(cluster, []))
            clusters.append(
                DiscoveredCluster(
                    id=cluster,
                    name=" / ".join(words[:3]) or f"cluster {cluster}",
                    size=len(members),
                    share=round(len(members) / max(len(texts), 1), 4),
                    keywords=words,
                    examples=distinct_examples((texts[i] for i in members), self.examples),
                    languages=dict(Counter(languages[i] or "unknown" for i in in_order).most_common())
                    if self.detect_languages
                    else {},
                    proposal=proposals[cluster] if proposals else None,
                    members=members,
                )
            )
        return clusters

    def _taxonomy(self) -> Taxonomy:
        return self.taxonomy if isinstance(self.taxonomy, Taxonomy) else Taxonomy.load(self.taxonomy_path)

    def _check_parameters(self) -> None:
        if self.min_cluster_size is not None and self.min_cluster_size < 2:
            raise ValueError(f"min_cluster_size must be at least 2, got {self.min_cluster_size!r}")
        if self.max_sample < 10:
            raise ValueError(f"max_sample must be at least 10, got {self.max_sample!r}")
        if not 1 <= self.examples <= 50:
            raise ValueError(f"examples must be between 1 and 50, got {self.examples!r}")
        if self.new_below is not None and not -1.0 <= self.new_below <= 1.0:
            raise ValueError(f"new_below is a cosine, between -1 and 1; got {self.new_below!r}")
        if self.keywords is not None and not hasattr(self.keywords, "fit_transform"):
            raise ValueError(f"keywords must have fit_transform(texts, labels); got {type(self.keywords).__name__}")
        if self.matcher is not None and not hasattr(self.matcher, "propose"):
            raise ValueError(f"matcher must have propose(centroids, new_below); got {type(self.matcher).__name__}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "discovery_"):
            raise RuntimeError("this ReasonDiscoverer is not fitted yet; call fit first")


def distinct_examples(texts: Iterable[str], limit: int) -> list[str]:
    """The first `limit` texts that differ other than in case and spacing, each cut at EXAMPLE_CHARS."""
    seen: set[str] = set()
    chosen: list[str] = []
    for text in texts:
        key = " ".join(text.lower().split())
        if key not in seen:
            seen.add(key)
            chosen.append(text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 3] + "...")
        if len(chosen) == limit:
            break
    return chosen


def _as_texts(texts: Sequence[str]) -> list[str]:
    texts = list(texts)
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{position}] is {type(text).__name__}, not text")
    return texts
