"""`label`: apply a reviewed `clusters.yaml` to every answer, giving training data.

Every answer of a mapped cluster (clustered or assigned to it) gets that cluster's category and
sub-reason; merged clusters take the decision of the cluster they merge into; answers of dropped
clusters, unassigned answers and rows discovery could not read are left out. The output is the
training-data format `reason_classifier.training.corpus.read_labelled` reads, `text,category,sub_reason,lang,source`,
then `cluster` (the cluster the answer came from), `proposed_sub_reason` (set for clusters the
reviewer marked `new`: their answers keep the category, with an empty sub_reason until the new
sub-reason is added to the taxonomy) and the export's original columns, in the export's row order.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..survey_files import SurveyFormat, detect_format, open_reader, open_writer
from ..taxonomy import Taxonomy
from .review_file import ASSIGNMENTS_FILE, REVIEW_FILE, Decision, ReviewError, read_review_file, resolve_decisions

LABEL_COLUMNS = ("text", "category", "sub_reason", "lang", "source", "cluster", "proposed_sub_reason")


@dataclass
class NewSubReason:
    """A sub-reason a reviewer proposed (`sub_reason: new`), to be added to the taxonomy."""

    id: str
    category: str
    clusters: list[int]
    answers: int
    examples: dict[str, list[str]]

    def taxonomy_snippet(self, taxonomy: Taxonomy) -> str:
        """YAML to paste under `categories.<category>.sub_reasons` of labels/taxonomy.yaml."""
        owners = Counter(s.owner for s in taxonomy.categories[self.category].sub_reasons.values())
        lines = [
            f"      {self.id}:",
            f"        description: {self.id.replace('_', ' ').capitalize()}",
            f"        owner: {owners.most_common(1)[0][0] if owners else self.category}",
            "        voluntary: true",
            "        influenceable: true",
            "        examples:",
        ]
        for language, texts in self.examples.items():
            lines.append(f"          {language}:")
            lines += [f"            - {_yaml_string(t)}" for t in texts]
        return "\n".join(lines)


@dataclass
class LabelSummary:
    output: Path
    rows: int = 0
    labelled: int = 0
    dropped: int = 0
    unassigned: int = 0
    invalid: int = 0
    groups: list[dict] = field(default_factory=list)
    new_sub_reasons: list[NewSubReason] = field(default_factory=list)
    taxonomy: Taxonomy | None = None

    def as_dict(self) -> dict:
        return {
            "output": str(self.output),
            "rows": self.rows,
            "labelled": self.labelled,
            "dropped": self.dropped,
            "unassigned": self.unassigned,
            "invalid": self.invalid,
            "groups": self.groups,
            "new_sub_reasons": [
                {"id": s.id, "category": s.category, "clusters": s.clusters, "answers": s.answers}
                for s in self.new_sub_reasons
            ],
        }


def label(
    folder: str | Path, output: str | Path, taxonomy_path: str | Path | None = None, output_format: str | None = None
) -> LabelSummary:
    """Write the labelled answers of a reviewed discovery folder; raises ReviewError on a bad review file."""
    folder, output = Path(folder), Path(output)
    review, lines = read_review_file(folder)
    taxonomy = Taxonomy.load(taxonomy_path or review.taxonomy)
    assignments = _read_assignments(folder / ASSIGNMENTS_FILE, review.text_column)
    cluster_column = assignments["cluster"].astype(str).str.strip()
    status = assignments["cluster_status"].astype(str)
    clustered = (status == "clustered") | (status == "assigned")
    cluster_ids = pd.to_numeric(cluster_column.where(clustered), errors="coerce")
    known = {int(c) for c in cluster_ids.dropna().unique()}
    decisions = resolve_decisions(review, taxonomy, known, lines, folder / REVIEW_FILE)

    if output.resolve() == (folder / ASSIGNMENTS_FILE).resolve():
        raise InputError(f"{output}: would overwrite the discovery's own {ASSIGNMENTS_FILE}; choose another output")
    summary = LabelSummary(output=output, rows=len(assignments), taxonomy=taxonomy)
    summary.invalid = int((status == "invalid").sum())
    summary.unassigned = int((status == "unassigned").sum())
    chosen: list[int] = []
    rows_category, rows_sub, rows_new, rows_cluster = [], [], [], []
    per_group: dict[int, int] = Counter()
    new_members: dict[str, list[int]] = defaultdict(list)
    for position, cluster in enumerate(cluster_ids.tolist()):
        if cluster != cluster:  # NaN: not in a cluster
            continue
        decision: Decision = decisions[int(cluster)]
        if decision.dropped:
            summary.dropped += 1
            continue
        chosen.append(position)
        rows_category.append(decision.category)
        rows_sub.append(decision.sub_reason or "")
        rows_new.append(decision.new_sub_reason or "")
        rows_cluster.append(str(int(cluster)))
        per_group[decision.final] += 1
        if decision.new_sub_reason:
            new_members[decision.new_sub_reason].append(position)
    summary.labelled = len(chosen)

    original = [
        c
        for c in assignments.columns
        if c not in ("cluster", "cluster_status", "cluster_similarity", "language", "error")
    ]
    selected = assignments.iloc[chosen]
    out = pd.DataFrame(
        {
            "text": selected[review.text_column].astype(str).str.strip().tolist(),
            "category": rows_category,
            "sub_reason": rows_sub,
            "lang": selected["language"].astype(str).tolist(),
            "source": [f"discovery:{Path(review.input).name}"] * len(chosen),
            "cluster": rows_cluster,
            "proposed_sub_reason": rows_new,
        }
    )
    for column in original:
        if column == review.text_column and column == "text":
            continue
        name = column if column not in LABEL_COLUMNS else f"input_{column}"
        out[name] = selected[column].tolist()
    fmt = detect_format(output, output_format) if output.suffix or output_format else SurveyFormat.CSV
    writer = open_writer(output, fmt)
    try:
        writer.write(out)
    except BaseException:
        writer.abort()
        raise
    writer.commit()

    by_final = {d.final: d for d in decisions.values()}
    for final, count in sorted(per_group.items(), key=lambda item: -item[1]):
        decision = by_final[final]
        merged = sorted(d.cluster for d in decisions.values() if d.final == final and d.cluster != final)
        summary.groups.append(
            {
                "cluster": final,
                "merged": merged,
                "name": decision.name,
                "category": decision.category,
                "sub_reason": decision.sub_reason
                or (f"new: {decision.new_sub_reason}" if decision.new_sub_reason else ""),
                "answers": count,
            }
        )
    for new_id, positions in new_members.items():
        decision = next(d for d in decisions.values() if d.new_sub_reason == new_id)
        examples: dict[str, list[str]] = defaultdict(list)
        for position in positions:
            language = str(assignments.iloc[position]["language"]) or "en"
            if len(examples[language]) < 3:
                examples[language].append(str(assignments.iloc[position][review.text_column]).strip())
        clusters = sorted({d.final for d in decisions.values() if d.new_sub_reason == new_id})
        assert decision.category is not None  # a cluster with a new sub-reason is never dropped
        summary.new_sub_reasons.append(
            NewSubReason(new_id, decision.category, clusters, len(positions), dict(examples))
        )
    return summary


def _read_assignments(path: Path, text_column: str) -> pd.DataFrame:
    if not path.is_file():
        raise ReviewError(f"{path}: not found; run `reason-classifier discover` into this folder first")
    with open_reader(path, SurveyFormat.CSV) as reader:
        tables = [chunk.table for chunk in reader.chunks()]
    table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    missing = [c for c in (text_column, "cluster", "cluster_status", "language") if c not in table.columns]
    if missing:
        raise ReviewError(f"{path}: missing column(s) {', '.join(missing)}; was it written by `discover`?")
    return table


def _yaml_string(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)
