"""The review file (`clusters.yaml`) that `discover` writes and a person edits before `label`.

Per cluster, discovery writes what a reviewer needs to judge it (size, share, keywords, typical
answers, languages, the proposed taxonomy entry) and a decision pre-filled from the proposal:

    - id: 3
      name: too expensive / price / budget     # edit: a short name; for `new`, the new sub-reason's name
      category: pricing                        # edit: product, pricing, support, market, other, or drop
      sub_reason: too_expensive                # edit: a sub-reason of that category, new, or empty (category only)
      merge_into: null                         # edit: another cluster's id, to label both the same way

Checking the edited file names the cluster id, the field and the line of every mistake: an
unknown category or sub-reason, a cluster listed twice, a cluster mapped twice (its own
category/sub_reason and a different one through `merge_into`), a `merge_into` that names no
cluster or loops, a cluster that is in assignments.csv but missing from the file.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ..atomic import write_bytes_atomically
from ..config_files import dotted, read_yaml, validate
from ..errors import ConfigError
from ..taxonomy import CATEGORIES, Taxonomy
from .prototypes import NEW

REVIEW_FILE = "clusters.yaml"
ASSIGNMENTS_FILE = "assignments.csv"
REPORT_FILE = "report.html"
FORMAT_VERSION = 1
DROP = "drop"

HEADER = """\
# Review file written by `reason-classifier discover`. Edit the decision of each cluster, then run
#   reason-classifier label {folder} -o labelled.csv
# Per cluster, only these fields are read:
#   name        a short name for the group; for sub_reason `new`, the new sub-reason's name
#   category    product, pricing, support, market, other, or `drop` (leave these answers out)
#   sub_reason  a sub-reason of that category (labels/taxonomy.yaml), `new`, or empty for the category alone
#               (training needs a sub-reason on every row: `new` and empty ones are for adding to the taxonomy first)
#   merge_into  another cluster's id: this cluster's answers get that cluster's decision
#               (then leave category and sub_reason empty, or equal to the other cluster's)
# Everything else (size, keywords, examples, proposed, ...) is information for you.
"""


class ReviewError(ConfigError):
    """The edited review file is invalid; every message names the cluster id, the field and the line."""


class Proposed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: str
    sub_reason: str
    similarity: float
    nearest_sub_reason: str


class ClusterEntry(BaseModel):
    """One cluster of the review file: information written by discovery, and the decision a person edits."""

    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=0)
    name: str = ""
    category: str | None = None
    sub_reason: str | None = None
    merge_into: int | None = None
    size: int = Field(default=0, ge=0)
    share: float = 0.0
    keywords: list[str] = Field(default_factory=list)
    languages: dict[str, int] = Field(default_factory=dict)
    examples: list[str] = Field(default_factory=list)
    proposed: Proposed | None = None


class UnassignedEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = 0
    share: float = 0.0
    examples: list[str] = Field(default_factory=list)


class ReviewFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = FORMAT_VERSION
    input: str
    text_column: str
    encoder: str
    taxonomy: str
    seed: int
    rows: int
    answers: int
    invalid_rows: int
    summary: dict[str, Any] = Field(default_factory=dict)
    unassigned: UnassignedEntry = Field(default_factory=UnassignedEntry)
    clusters: list[ClusterEntry]

    def to_yaml(self, folder: str = "DIR") -> str:
        body = yaml.safe_dump(self.model_dump(), allow_unicode=True, sort_keys=False, width=110)
        return HEADER.format(folder=folder) + body

    def write(self, folder: Path) -> Path:
        path = Path(folder) / REVIEW_FILE
        write_bytes_atomically(path, self.to_yaml(str(folder)).encode("utf-8"))
        return path


@dataclass(frozen=True)
class Decision:
    """What `label` does with one cluster's answers, after merges are followed."""

    cluster: int
    final: int  # the cluster whose decision applies (itself unless merged)
    name: str
    category: str | None  # None: dropped
    sub_reason: str | None
    new_sub_reason: str | None  # the proposed id, when sub_reason was `new`

    @property
    def dropped(self) -> bool:
        return self.category is None


def read_review_file(folder: Path) -> tuple[ReviewFile, dict[tuple, int]]:
    """Parse and type-check `folder/clusters.yaml`; raises ReviewError naming cluster id, field and line."""
    path = Path(folder) / REVIEW_FILE
    document = read_yaml(
        path,
        error=ReviewError,
        what="the review file",
        expected="a mapping with 'clusters' at the top (was the file emptied?)",
    )
    review = validate(ReviewFile, document, error=ReviewError, what="review file", name=partial(_name, document.data))
    return review, document.lines


def resolve_decisions(
    review: ReviewFile, taxonomy: Taxonomy, known_clusters: set[int], lines: dict[tuple, int], path: Path
) -> dict[int, Decision]:
    """Every cluster's decision after merges; checks the edits against the taxonomy and the clusters discovery found."""
    problems: list[str] = []
    entries: dict[int, ClusterEntry] = {}
    index_of: dict[int, int] = {}

    def problem(index: int, field: str | None, message: str) -> None:
        loc = ("clusters", index, field) if field else ("clusters", index)
        cluster = review.clusters[index].id
        line = lines.get(loc) or lines.get(("clusters", index))
        problems.append(f"{path}{f', line {line}' if line else ''}: cluster {cluster}: {field or 'id'}: {message}")

    for index, entry in enumerate(review.clusters):
        if entry.id in entries:
            problem(
                index,
                "id",
                f"cluster {entry.id} is listed twice (entries {index_of[entry.id] + 1} and {index + 1}); "
                "keep one entry per cluster and use merge_into to combine clusters",
            )
            continue
        entries[entry.id] = entry
        index_of[entry.id] = index
        if entry.id not in known_clusters:
            problem(
                index,
                "id",
                f"no cluster {entry.id} in {ASSIGNMENTS_FILE}; the clusters are {_ranges(sorted(known_clusters))}",
            )
    missing = sorted(known_clusters - set(entries))
    if missing:
        problems.append(
            f"{path}: cluster(s) {_ranges(missing)} are in {ASSIGNMENTS_FILE} but not in the review file; "
            "to leave their answers out, keep them with category: drop"
        )

    own: dict[int, tuple[str | None, str | None, str | None]] = {}
    for cluster, entry in entries.items():
        index = index_of[cluster]
        if entry.merge_into is not None:
            if entry.merge_into == cluster:
                problem(index, "merge_into", "a cluster cannot merge into itself")
            elif entry.merge_into not in entries:
                problem(index, "merge_into", f"no cluster {entry.merge_into} in the review file")
            if entry.category is None and entry.sub_reason is None:
                continue
        checked = _check_mapping(entry, taxonomy, lambda field, message, i=index: problem(i, field, message))
        if checked is not None:
            own[cluster] = checked

    decisions: dict[int, Decision] = {}
    if not problems:
        for cluster, entry in entries.items():
            chain, current = [cluster], entry
            while current.merge_into is not None:
                if current.merge_into in chain:
                    loop = " → ".join(map(str, [*chain, current.merge_into]))
                    problem(
                        index_of[cluster], "merge_into", f"merges loop ({loop}); one cluster of them must be mapped"
                    )
                    break
                chain.append(current.merge_into)
                current = entries[current.merge_into]
            else:
                final = chain[-1]
                if final not in own:
                    problem(index_of[final], "category", f"missing; choose one of {', '.join(CATEGORIES)} or {DROP}")
                    continue
                mapping = own[final]
                if cluster != final and cluster in own and own[cluster] != mapping:
                    problem(
                        index_of[cluster],
                        "merge_into",
                        f"cluster {cluster} is mapped twice: to {_show(own[cluster])} by its own category/sub_reason "
                        f"and to {_show(mapping)} through merge_into {entry.merge_into}; empty its category and "
                        "sub_reason (or make them match)",
                    )
                    continue
                category, sub_reason, new = mapping
                decisions[cluster] = Decision(cluster, final, entries[final].name, category, sub_reason, new)
    if problems:
        raise ReviewError("the review file has mistakes:\n  " + "\n  ".join(problems))
    return decisions


def new_sub_reason_id(name: str) -> str:
    """'Offline mode!' → 'offline_mode': the identifier a new sub-reason gets from its cluster's name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    return slug if re.match(r"^[a-z][a-z0-9_]*$", slug or "") else ""


def _check_mapping(
    entry: ClusterEntry, taxonomy: Taxonomy, problem
) -> tuple[str | None, str | None, str | None] | None:
    category, sub_reason = entry.category, entry.sub_reason
    if category is None:
        problem("category", f"missing; choose one of {', '.join(CATEGORIES)} or {DROP} (or set merge_into)")
        return None
    category = category.strip()
    if category == DROP:
        return (None, None, None)
    if category not in taxonomy.categories:
        problem("category", f"unknown category {category!r}; expected one of {', '.join(CATEGORIES)} or {DROP}")
        return None
    if sub_reason is None or not sub_reason.strip():
        return (category, None, None)
    sub_reason = sub_reason.strip()
    known = taxonomy.categories[category].sub_reasons
    if sub_reason == NEW:
        new_id = new_sub_reason_id(entry.name)
        if not new_id:
            problem("name", f"a new sub-reason needs a name that starts with a letter (got {entry.name!r})")
            return None
        if new_id in known:  # already added to the taxonomy since discovery ran
            return (category, new_id, None)
        try:
            other = taxonomy.category_of(new_id)
        except KeyError:
            return (category, None, new_id)
        problem("name", f"the new sub-reason {new_id!r} already exists under category {other!r}, not {category!r}")
        return None
    if sub_reason not in known:
        try:
            where = f"; it belongs to category {taxonomy.category_of(sub_reason)!r}"
        except KeyError:
            where = ""
        problem(
            "sub_reason",
            f"{sub_reason!r} is not a sub-reason of {category!r}{where}; expected one of "
            f"{', '.join(known)}, {NEW}, or empty",
        )
        return None
    return (category, sub_reason, None)


def _show(mapping: tuple[str | None, str | None, str | None]) -> str:
    category, sub_reason, new = mapping
    if category is None:
        return DROP
    return f"{category}/{sub_reason or (f'new:{new}' if new else '(category only)')}"


def _ranges(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:20]))
    return shown + (f" and {len(numbers) - 20} more" if len(numbers) > 20 else "") if numbers else "(none)"


def _name(data: Any, loc: tuple) -> str:
    """A problem's place as a reviewer finds it: `cluster 7: category` rather than `clusters.3.category`."""
    if len(loc) >= 2 and loc[0] == "clusters" and isinstance(loc[1], int):
        entry = (data.get("clusters") or [None])[loc[1]] if isinstance(data.get("clusters"), list) else None
        cluster = entry.get("id") if isinstance(entry, dict) else None
        field = ".".join(map(str, loc[2:])) or "(entry)"
        return f"cluster {cluster if cluster is not None else f'entry {loc[1] + 1}'}: {field}"
    return dotted(loc)
