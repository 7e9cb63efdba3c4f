"""ReasonDiscoverer: the composed pipeline, its default stages, and stages replaced by other estimators."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.pipeline import make_pipeline

from reason_classifier.discovery import (
    NEW,
    UNASSIGNED,
    AnswerClusterer,
    ReasonDiscoverer,
    TaxonomyPrototypes,
    VectorizerKeywords,
)
from reason_classifier.discovery.keywords import cluster_keywords
from reason_classifier.taxonomy import Taxonomy

TOPICS = {
    "price": ["the price is far too high", "price went up again", "cannot pay this price", "price too steep"],
    "support": ["support never replied", "support took weeks", "waited on support for days", "support was rude"],
    "export": ["no csv export", "export to excel is missing", "we need an export api", "export keeps failing"],
}


def answers(per_topic: int = 24) -> tuple[list[str], list[str]]:
    texts, truth = [], []
    for topic, phrases in TOPICS.items():
        for i in range(per_topic):
            texts.append(f"{phrases[i % len(phrases)]} (customer {i})")
            truth.append(topic)
    return texts, truth


def tfidf_encoder():
    return make_pipeline(TfidfVectorizer(), TruncatedSVD(n_components=12, random_state=0))


def test_every_stage_replaced_by_a_scikit_learn_estimator():
    texts, truth = answers()
    discoverer = ReasonDiscoverer(
        encoder=tfidf_encoder(),
        reducer=PCA(n_components=4, random_state=0),
        clusterer=KMeans(n_clusters=3, n_init=4, random_state=0),
        keywords=VectorizerKeywords(CountVectorizer(stop_words="english"), top_n=3),
        detect_languages=False,
    )
    discovery = discoverer.fit_transform(texts)
    assert len(discovery.clusters) == 3 and discovery.labels.shape == (len(texts),)
    for cluster in discovery.clusters:
        topics = {truth[i] for i in cluster.members}
        assert len(topics) == 1  # each cluster is one topic
        assert topics.pop() in cluster.keywords  # and its word is a keyword
        assert cluster.proposal is not None and cluster.languages == {}
        assert len(cluster.examples) <= 8 and cluster.name == " / ".join(cluster.keywords[:3])
    assert sum(c.size for c in discovery.clusters) + discovery.unassigned.size == len(texts)
    assert discovery.summary["cluster_selection"] == "KMeans" and discovery.summary["n_components"] == 4
    # new answers go to the cluster of their topic
    labels = discoverer.predict(["the price is too high for us", "support never answered"])
    by_topic = {truth[c.members[0]]: c.id for c in discovery.clusters}
    assert list(labels) == [by_topic["price"], by_topic["support"]]
    assert discoverer.transform(["export please"]).similarity.shape == (1, 3)


def test_the_default_stages_are_todays_clusterer_and_keywords():
    from reason_classifier.encoders import USE_MULTILINGUAL, load_encoder

    texts, _ = answers(30)
    encoder = load_encoder(USE_MULTILINGUAL)
    embeddings = encoder.encode(texts)
    discoverer = ReasonDiscoverer(encoder=USE_MULTILINGUAL, seed=2, detect_languages=False)
    discovery = discoverer.fit_transform(texts, embeddings=embeddings)
    alone = AnswerClusterer(random_state=2).fit(embeddings)
    assert np.array_equal(discovery.labels, alone.labels_)
    assert np.array_equal(discovery.membership, alone.membership_)
    keywords = cluster_keywords(texts, alone.labels_, top_n=10)
    assert [c.keywords for c in discovery.clusters] == [keywords[c.id] for c in discovery.clusters]
    proposals = TaxonomyPrototypes(Taxonomy.load(discoverer.taxonomy_path), encoder).propose(
        alone.centroids_, new_below=0.45
    )
    assert [c.proposal for c in discovery.clusters] == proposals  # 0.45: NEW_BELOW of this encoder
    assert discovery.summary["new_below"] == 0.45 and discoverer.encoder_name == USE_MULTILINGUAL
    # every proposal is a sub-reason of the taxonomy or `new`
    assert all(c.proposal and (c.proposal.sub_reason == NEW or c.proposal.similarity > 0) for c in discovery.clusters)


def test_passthrough_skips_the_reducer_and_bad_stages_are_named():
    texts, _ = answers()
    discovery = ReasonDiscoverer(
        encoder=tfidf_encoder(), reducer="passthrough", min_cluster_size=10, detect_languages=False
    ).fit_transform(texts)
    assert discovery.summary["n_components"] == 0 and len(discovery.clusters) >= 2
    with pytest.raises(ValueError, match="reducer must have fit_transform"):
        ReasonDiscoverer(encoder=tfidf_encoder(), reducer="umap").fit(texts)
    with pytest.raises(ValueError, match="clusterer must have fit_predict"):
        ReasonDiscoverer(encoder=tfidf_encoder(), clusterer=PCA()).fit(texts)
    with pytest.raises(ValueError, match="keywords must have fit_transform"):
        ReasonDiscoverer(encoder=tfidf_encoder(), keywords=["price"]).fit(texts)
    with pytest.raises(ValueError, match="encoder must be a name, a folder, or have encode"):
        ReasonDiscoverer(encoder=3.5).fit(texts)
    with pytest.raises(ValueError, match=r"texts\[2\] is int, not text"):
        ReasonDiscoverer(encoder=tfidf_encoder()).fit(["a", "b", 3])
    with pytest.raises(ValueError, match="one row per text"):
        ReasonDiscoverer(encoder=tfidf_encoder()).fit(texts, embeddings=np.zeros((2, 4)))
    with pytest.raises(RuntimeError, match="not fitted"):
        ReasonDiscoverer().predict(["anything"])


def test_too_few_answers_give_no_cluster_and_lose_none():
    few = ReasonDiscoverer(encoder=TfidfVectorizer(), detect_languages=False)
    discovery = few.fit_transform(["one answer", "another answer"])
    assert discovery.clusters == [] and list(discovery.labels) == [UNASSIGNED, UNASSIGNED]
    assert discovery.unassigned.size == 2 and discovery.unassigned.examples == ["one answer", "another answer"]
