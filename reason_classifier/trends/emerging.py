"""Emerging reasons: answers of the latest period that fit no sub-reason of the taxonomy, grouped.

Discovery run on the answers far from the taxonomy: the model's `TaxonomyPrototypes` say how near
each answer is to every sub-reason, and a `ReasonDiscoverer` with the model's encoder and those
prototypes groups the far ones and names the groups. The answers embedded are bounded
(`compute_trends(..., latest_sample=N)` hands over a seeded sample of at most N answers of the
period), so the cost does not grow with the export.

The threshold: with the shipped model, half of the written held-out answers (`labels/heldout`,
all inside the taxonomy) have a cosine of 0.39 or more to their nearest sub-reason prototype,
and 85 % have 0.25 or more; real airline complaints, outside this product domain, have a median
of 0.22. Answers below 0.25 are "far"; the clustering then keeps only groups of several alike
answers, so a few odd answers do not make a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..classifier import ReasonClassifier
from ..discovery.density import default_min_cluster_size
from ..discovery.discoverer import ReasonDiscoverer
from ..discovery.prototypes import TaxonomyPrototypes
from .models import EmergingReason, EmergingReasons

if TYPE_CHECKING:
    from .aggregate import TrendReport

DEFAULT_FAR_BELOW = 0.25
MIN_FAR_ANSWERS = 10


def find_emerging_reasons(
    texts: Sequence[str],
    classifier: ReasonClassifier,
    *,
    period: str,
    answers_in_period: int,
    far_below: float = DEFAULT_FAR_BELOW,
    max_reasons: int = 8,
    examples: int = 3,
    keywords: int = 6,
    min_cluster_size: int | None = None,
    seed: int = 0,
) -> EmergingReasons:
    """Cluster the answers among `texts` whose best similarity to every sub-reason is under `far_below`.

    `texts` is the (sampled) answers of `period`; the result lists at most `max_reasons` groups,
    largest first, each with its size, keywords, nearest sub-reason and the answers nearest its centre.
    """
    if not 0 < far_below < 1:
        raise ValueError(f"far_below must be between 0 and 1, got {far_below!r}")
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    result = EmergingReasons(
        period=period, answers_in_period=answers_in_period, sampled=len(texts), far=0, threshold=far_below, reasons=[]
    )
    if sampled_note := (
        f"{len(texts):,} of {answers_in_period:,} answers were embedded (a seeded sample)."
        if len(texts) < answers_in_period
        else None
    ):
        result.note = sampled_note
    if not texts:
        return result
    embeddings = classifier.embed(texts)
    prototypes = TaxonomyPrototypes(classifier.taxonomy, classifier.encoder)
    _, best = prototypes.nearest(embeddings)
    far = np.flatnonzero(best < far_below)
    result.far = int(len(far))
    if len(far) < MIN_FAR_ANSWERS:
        return result
    far_texts = [texts[i] for i in far]
    discoverer = ReasonDiscoverer(
        encoder=classifier.encoder,
        matcher=prototypes,
        min_cluster_size=min_cluster_size or default_min_cluster_size(len(far)),
        n_keywords=keywords,
        examples=examples,
        detect_languages=False,
        seed=seed,
    )
    discovery = discoverer.fit_transform(far_texts, embeddings=embeddings[far])
    if not discovery.clusters:
        return result
    reasons = [
        EmergingReason(
            size=cluster.size,
            share_of_sample_pct=round(100.0 * cluster.size / len(texts), 2),
            keywords=cluster.keywords,
            nearest_sub_reason=cluster.proposal.nearest_sub_reason if cluster.proposal else None,
            similarity=round(float(best[far[cluster.members]].mean()), 3),
            examples=_distinct(far_texts[i] for i in cluster.members)[:examples],
        )
        for cluster in discovery.clusters
        if cluster.size
    ]
    reasons.sort(key=lambda r: -r.size)
    result.reasons = reasons[:max_reasons]
    if discovery.unassigned.size:
        result.note = " ".join(
            filter(None, [result.note, f"{discovery.unassigned.size} far answer(s) belong to no group."])
        )
    return result


def add_emerging_reasons(
    report: TrendReport, classifier: ReasonClassifier | None = None, *, model: str | Path | None = None
) -> TrendReport:
    """The report with the emerging reasons of its last period in its document (where `write_trends` shows them),
    looked for in the sample `compute_trends(..., latest_sample=N)` handed over.

    Without an answer column or a period there is nothing to look in: the document is left as it is and no model is
    loaded. `classifier` defaults to the one the run-time settings describe, with `model` in place of their model
    folder when given."""
    document = report.document
    if not document.columns.text or not document.periods:
        return report
    if classifier is None:
        classifier = ReasonClassifier.from_settings(model=model)
    document.emerging = find_emerging_reasons(
        report.latest_answers,
        classifier,
        period=document.periods[-1].period,
        answers_in_period=report.latest_answers_total,
    )
    return report


def _distinct(texts) -> list[str]:
    """Trends show a customer's answer whole, and each different answer once."""
    return list(dict.fromkeys(texts))
