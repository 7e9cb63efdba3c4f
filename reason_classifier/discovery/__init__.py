"""Discovery: candidate reasons found in answers nobody has labelled, reviewed by a person, turned into labels.

    from reason_classifier.discovery import ReasonDiscoverer
    discovery = ReasonDiscoverer(seed=0).fit_transform(answers)     # clusters, a label per answer, ...

    from reason_classifier.discovery import discover, label
    discover("export.csv", "answer", "discovery/")                  # clusters.yaml, assignments.csv, report.html
    label("discovery/", "labelled.csv")                             # after a person edited clusters.yaml

`ReasonDiscoverer` (discoverer.py) is composed of stages: the encoder (encoding.py), the reducer
(reduction.py) and clusterer (density.py) inside `AnswerClusterer` (clustering.py), the keywords
(keywords.py) and the taxonomy matcher (prototypes.py). `discover` (folder.py) runs it on a survey
export and writes the review file (review_file.py), the assignments and the report (report.py);
`label` (labelling.py) applies the reviewed file. Emerging reasons in trends use the same discoverer.
Names are imported on first use, so importing one stage does not import pandas or plotly.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Assignments": "discoverer",
    "DiscoveredCluster": "discoverer",
    "Discovery": "discoverer",
    "ReasonDiscoverer": "discoverer",
    "UnassignedAnswers": "discoverer",
    "AnswerClusterer": "clustering",
    "UNASSIGNED": "clustering",
    "DensityClusterer": "density",
    "NeighbourUMAP": "reduction",
    "ClusterKeywords": "keywords",
    "VectorizerKeywords": "keywords",
    "cluster_keywords": "keywords",
    "NEW": "prototypes",
    "Proposal": "prototypes",
    "TaxonomyPrototypes": "prototypes",
    "DiscoveryResult": "folder",
    "discover": "folder",
    "LabelSummary": "labelling",
    "label": "labelling",
    "ReviewError": "review_file",
    "ReviewFile": "review_file",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
