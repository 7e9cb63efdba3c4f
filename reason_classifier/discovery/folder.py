"""Discovery of a survey export: from a file with no labels to a folder a person reviews.

`discover` reads every row of the export (CSV, TSV, JSONL, Parquet, Excel, through the same
readers as `tag`), runs a `ReasonDiscoverer` on the answers and writes to a folder:

- `clusters.yaml`: the review file (`review_file`), edited by a person, read by `label`;
- `assignments.csv`: every input row in its original order with its original columns, plus
  `cluster` (-1 = unassigned, empty for a row that could not be read), `cluster_status`
  (clustered, assigned, unassigned or invalid), `cluster_similarity`, `language` and `error`;
- `report.html`: the same clusters on one self-contained page with a 2-D map (`report`).

Rows that cannot be clustered (empty answer, not text, too long, a malformed CSV line) are kept
and flagged with `cluster_status=invalid` and an `error`, never dropped.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..answers import DEFAULT_MAX_CHARS, check_answer
from ..errors import InputError
from ..progress import ProgressCallback, ProgressEvent
from ..survey_files import SurveyFormat, detect_format, open_reader, open_writer
from .discoverer import Discovery, ReasonDiscoverer
from .report import write_discovery_report
from .review_file import ASSIGNMENTS_FILE, REPORT_FILE, ClusterEntry, Proposed, ReviewFile, UnassignedEntry

ADDED_COLUMNS = ("cluster", "cluster_status", "cluster_similarity", "language", "error")
INVALID = "invalid"


@dataclass
class DiscoveryResult:
    folder: Path
    review: ReviewFile
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    embeddings: np.ndarray | None = None  # of the clustered answers (rows without an error), in row order
    labels: np.ndarray | None = None  # their cluster, -1 = unassigned
    rows: np.ndarray | None = None  # their positions in the export

    def as_dict(self) -> dict:
        return {
            "folder": str(self.folder),
            "files": {k: str(v) for k, v in self.files.items()},
            "timings": self.timings,
            "summary": self.review.summary,
            "clusters": [
                c.model_dump(include={"id", "name", "size", "share", "category", "sub_reason"})
                for c in self.review.clusters
            ],
        }


def read_export(
    path: Path, text_column: str, fmt: SurveyFormat | None = None, encoding: str = "utf-8-sig", sheet: str | None = None
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Every row of the export in order (original values kept) and the problems of malformed rows (row → message)."""
    fmt = fmt or detect_format(path)
    tables, problems = [], {}
    with open_reader(path, fmt, encoding=encoding, sheet=sheet) as reader:
        reader.require_column(text_column)
        offset = 0
        for chunk in reader.chunks():
            tables.append(chunk.table.reset_index(drop=True))
            problems.update({offset + row: message for row, message in chunk.problems.items()})
            offset += len(chunk.table)
    table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    if text_column not in table.columns:
        raise InputError(f"{path}: no column {text_column!r}; the columns are: {', '.join(map(repr, table.columns))}")
    clash = [c for c in ADDED_COLUMNS if c in table.columns]
    if clash:
        raise InputError(
            f"{path}: the input already has column(s) {', '.join(clash)}, which discovery adds; rename them first"
        )
    return table, problems


def discover(
    input_path: str | Path,
    text_column: str,
    output_dir: str | Path,
    discoverer: ReasonDiscoverer | None = None,
    *,
    map_points: int = 5_000,
    max_chars: int = DEFAULT_MAX_CHARS,
    input_format: str | None = None,
    encoding: str = "utf-8-sig",
    sheet: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> DiscoveryResult:
    """Discover the reasons in every answer of the export (`discoverer`, default: `ReasonDiscoverer()`); write the
    review file, the assignments and the report (at most `map_points` answers on its map). Answers longer than
    `max_chars` are flagged, not clustered."""
    discoverer = discoverer or ReasonDiscoverer()
    input_path, folder = Path(input_path), Path(output_dir)
    report = on_progress or (lambda event: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder")
    table, problems = read_export(input_path, text_column, detect_format(input_path, input_format), encoding, sheet)
    n = len(table)
    errors: list[str] = [""] * n
    texts: list[str | None] = [None] * n
    for row, value in enumerate(table[text_column].tolist()):
        message = problems.get(row) or check_answer(_plain(value), max_chars)
        if message:
            errors[row] = message
        else:
            texts[row] = str(value).strip()
    rows = np.flatnonzero(np.array([t is not None for t in texts], dtype=bool))
    answer_texts = [text for text in texts if text is not None]  # the valid rows' texts, in the order of `rows`
    lap("read")

    discovery = discoverer.fit_transform(answer_texts, on_progress=report)
    timings.update(discoverer.timings_)
    clock = time.perf_counter()
    review = _review_file(discovery, discoverer, input_path, text_column, n)
    lap("describe")

    report(ProgressEvent("writing", 0, 1))
    folder.mkdir(parents=True, exist_ok=True)
    files = {"review": review.write(folder)}
    files["assignments"] = _write_assignments(folder / ASSIGNMENTS_FILE, table, rows, discovery, errors)
    lap("write")

    report(ProgressEvent("drawing the map", 0, 1))
    files["report"] = write_discovery_report(
        folder / REPORT_FILE,
        review,
        discovery.embeddings,
        discovery.labels,
        answer_texts,
        discovery.languages,
        max_points=map_points,
        seed=discoverer.seed,
    )
    lap("report")
    return DiscoveryResult(folder, review, timings, files, discovery.embeddings, discovery.labels, rows)


def _review_file(
    discovery: Discovery, discoverer: ReasonDiscoverer, input_path: Path, text_column: str, rows: int
) -> ReviewFile:
    answers = len(discovery.labels)
    found = discovery.summary
    summary = {
        **discoverer.clusterer_.summary(),
        "rows": rows,
        "answers": answers,
        "distinct_answers": found["distinct_answers"],
        "invalid_rows": rows - answers,
        "unassigned_share": found["unassigned_share"],
        "new_below": found["new_below"],
        "assign_spread": found["assign_spread"],
    }
    clusters = [
        ClusterEntry(
            id=c.id,
            name=c.name,
            category=c.proposal.category if c.proposal else None,
            sub_reason=c.proposal.sub_reason if c.proposal else None,
            merge_into=None,
            size=c.size,
            share=c.share,
            keywords=c.keywords,
            languages=c.languages,
            examples=c.examples,
            proposed=Proposed(**asdict(c.proposal)) if c.proposal else None,
        )
        for c in discovery.clusters
    ]
    return ReviewFile(
        input=str(input_path),
        text_column=text_column,
        encoder=discoverer.encoder_name,
        taxonomy=discoverer.taxonomy_path,
        seed=discoverer.seed,
        rows=rows,
        answers=answers,
        invalid_rows=rows - answers,
        summary=summary,
        unassigned=UnassignedEntry(
            size=discovery.unassigned.size, share=discovery.unassigned.share, examples=discovery.unassigned.examples
        ),
        clusters=clusters,
    )


def _write_assignments(
    path: Path, table: pd.DataFrame, rows: np.ndarray, discovery: Discovery, errors: list[str]
) -> Path:
    n = len(table)
    cluster = np.full(n, "", dtype=object)
    status = np.full(n, INVALID, dtype=object)
    similarity = np.full(n, "", dtype=object)
    language = np.full(n, "", dtype=object)
    cluster[rows] = [str(int(c)) for c in discovery.labels]
    status[rows] = discovery.membership if len(rows) else []
    similarity[rows] = [f"{s:.3f}" for s in discovery.similarity] if len(rows) else []
    language[rows] = discovery.languages
    out = table.copy()
    out["cluster"], out["cluster_status"], out["cluster_similarity"] = cluster, status, similarity
    out["language"], out["error"] = language, errors
    writer = open_writer(path, SurveyFormat.CSV)
    try:
        for start in range(0, max(n, 1), 4096):
            writer.write(out.iloc[start : start + 4096])
    except BaseException:
        writer.abort()
        raise
    return writer.commit()


def _plain(value: object) -> object:
    """Arrow-backed scalars and pandas' NA as plain Python values, so check_answer sees text or a missing value."""
    if value is pd.NA:
        return None
    return value.as_py() if hasattr(value, "as_py") else value
