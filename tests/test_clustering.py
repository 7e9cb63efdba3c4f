"""The discovery library: AnswerClusterer, cluster_keywords, TaxonomyPrototypes."""

from __future__ import annotations

import numpy as np
import pytest

from reason_classifier.discovery.clustering import ASSIGNED, CLUSTERED, UNASSIGNED, AnswerClusterer
from reason_classifier.discovery.density import default_min_cluster_size
from reason_classifier.discovery.keywords import cluster_keywords, tokenize


def blobs(
    sizes: list[int], dim: int = 32, spread: float = 0.15, seed: int = 0, outliers: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    rows, truth = [], []
    for label, (centre, size) in enumerate(zip(centres, sizes, strict=True)):
        rows.append(centre + spread * np.linalg.norm(centre) / np.sqrt(dim) * rng.normal(size=(size, dim)))
        truth += [label] * size
    if outliers:
        rows.append(rng.normal(size=(outliers, dim)))
        truth += [-1] * outliers
    X = np.vstack(rows).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True), np.array(truth)


def test_finds_separated_groups_and_is_reproducible():
    X, truth = blobs([120, 80, 60])
    first = AnswerClusterer(random_state=3).fit(X)
    assert first.n_clusters_ == 3
    assert first.labels_.shape == (len(X),)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(truth, first.labels_) > 0.95
    assert np.allclose(np.linalg.norm(first.centroids_, axis=1), 1.0, atol=1e-5)
    again = AnswerClusterer(random_state=3).fit_predict(X)
    assert np.array_equal(again, first.labels_)
    # clusters are numbered by size, largest first
    sizes = np.bincount(first.labels_[first.labels_ >= 0])
    assert list(sizes) == sorted(sizes, reverse=True)


def test_noise_is_assigned_when_close_and_counted_when_not():
    X, truth = blobs([150, 150], outliers=8, seed=1)  # fewer than min_cluster_size (9)
    clusterer = AnswerClusterer(random_state=0).fit(X)
    summary = clusterer.summary()
    assert summary["clustered"] + summary["noise_assigned"] + summary["unassigned"] == len(X)
    assert clusterer.n_unassigned_ == int((clusterer.labels_ == UNASSIGNED).sum())
    # random outliers are far from both groups: most of them stay unassigned, none silently dropped
    assert (clusterer.labels_[truth == -1] == UNASSIGNED).mean() > 0.8
    assert set(clusterer.membership_) <= {CLUSTERED, ASSIGNED, "unassigned"}
    # assign everything when asked to
    everything = AnswerClusterer(assign_spread=float("inf"), random_state=0).fit(X)
    assert everything.n_unassigned_ == 0


def test_large_input_clusters_a_sample_and_assigns_the_rest():
    X, truth = blobs([700, 500, 300], seed=2)
    clusterer = AnswerClusterer(max_sample=400, random_state=0).fit(X)
    assert clusterer.sample_size_ == 400
    assert len(clusterer.labels_) == len(X)
    assert clusterer.summary()["out_of_sample_assigned"] > 900
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(truth, clusterer.labels_) > 0.9


def test_predict_uses_the_clusters_and_refuses_far_rows():
    X, _ = blobs([100, 100], seed=4)
    clusterer = AnswerClusterer(random_state=0).fit(X)
    assert np.array_equal(clusterer.predict(clusterer.centroids_), np.arange(clusterer.n_clusters_))
    far = -clusterer.centroids_.sum(axis=0, keepdims=True)
    assert clusterer.predict(far / np.linalg.norm(far))[0] == UNASSIGNED
    assert clusterer.transform(X[:3]).shape == (3, clusterer.n_clusters_)


def test_tiny_inputs_and_bad_parameters():
    X, _ = blobs([3], seed=5)
    tiny = AnswerClusterer().fit(X)
    assert tiny.n_clusters_ == 0 and list(tiny.labels_) == [UNASSIGNED] * 3 and tiny.n_unassigned_ == 3
    assert list(tiny.predict(X)) == [UNASSIGNED] * 3
    with pytest.raises(ValueError, match="min_cluster_size"):
        AnswerClusterer(min_cluster_size=1).fit(X)
    with pytest.raises(ValueError, match="2-D"):
        AnswerClusterer().fit(np.zeros(5))
    with pytest.raises(RuntimeError, match="not fitted"):
        AnswerClusterer().predict(X)
    assert default_min_cluster_size(200) == 7 and default_min_cluster_size(10_000) == 50


def test_keywords_per_cluster_in_several_languages():
    texts = [
        "too expensive for us",
        "the price is too expensive",
        "prices went up, too expensive",
        "Aplikacja ciągle się zawiesza",
        "aplikacji nie da się używać, zawiesza się",
        "aplikację usunęliśmy, bo się zawieszała",
        "客服回复太慢了",
        "客服一直不回复",
        "联系客服没有回复",
    ]
    labels = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    keywords = cluster_keywords(texts, labels, top_n=3)
    assert "expensive" in keywords[0]
    assert keywords[1][0].startswith("aplikac") or keywords[1][0].startswith("zawiesz")
    assert "客服" in keywords[2] and "回复" in keywords[2]
    assert all("the" not in words and "się" not in words for words in keywords.values())
    with pytest.raises(ValueError, match="length"):
        cluster_keywords(texts, labels[:-1])


def test_tokenize_splits_chinese_and_keeps_meaningful_words():
    tokens = [surface for _, surface in tokenize("app很难用 trop cher, the problem")]
    assert tokens == ["app", "很难", "难用", "trop", "cher", "problem"] or "cher" in tokens
    assert "the" not in tokens


def test_prototypes_propose_the_nearest_sub_reason_or_new():
    from reason_classifier.discovery.prototypes import NEW, TaxonomyPrototypes
    from reason_classifier.encoders import USE_MULTILINGUAL, load_encoder
    from reason_classifier.taxonomy import Taxonomy

    taxonomy = Taxonomy.load()
    encoder = load_encoder(USE_MULTILINGUAL)
    prototypes = TaxonomyPrototypes(taxonomy, encoder)
    assert prototypes.vectors.shape == (len(taxonomy.sub_reason_names), encoder.dimension)
    answers = encoder.encode(
        ["Way too expensive for what it does", "Abonament jest za drogi, nie stać nas na to", "客服一直不回复我的邮件"]
    )
    assert prototypes.similarity(answers).shape == (3, len(prototypes.sub_reasons))
    names, scores = prototypes.nearest(answers)
    assert [taxonomy.category_of(n) for n in names] == ["pricing", "pricing", "support"]
    assert scores.shape == (3,)
    proposals = prototypes.propose(answers, new_below=1.01)
    assert all(p.sub_reason == NEW and p.nearest_sub_reason for p in proposals)
    with pytest.raises(ValueError, match="encoder"):
        prototypes.similarity(np.zeros((1, 7)))
