"""Discovery: from a survey export with no labels to clusters a person can review and name.

`discover` reads every row of the export (CSV, TSV, JSONL, Parquet, Excel, through the same
readers as `tag`), embeds each distinct answer once, clusters the answers
(`reason_classifier.clustering.AnswerClusterer`), describes every cluster (keywords, the answers
nearest its centre, languages, the nearest taxonomy sub-reason or `new`) and writes to a folder:

- `clusters.yaml`: the review file (`training.review_file`), edited by a person, read by `label`;
- `assignments.csv`: every input row in its original order with its original columns, plus
  `cluster` (-1 = unassigned, empty for a row that could not be read), `cluster_status`
  (clustered, assigned, unassigned or invalid), `cluster_similarity`, `language` and `error`;
- `report.html`: the same clusters on one self-contained page with a 2-D map (`training.discovery_report`).

Rows that cannot be clustered (empty answer, not text, too long, a malformed CSV line) are kept
and flagged with `cluster_status=invalid` and an `error`, never dropped.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reason_classifier.answers import DEFAULT_MAX_CHARS, check_answer
from reason_classifier.clustering import ASSIGNED, CLUSTERED, NOT_ASSIGNED, UNASSIGNED, AnswerClusterer
from reason_classifier.encoders import USE_MULTILINGUAL, load_encoder
from reason_classifier.errors import InputError
from reason_classifier.keywords import cluster_keywords
from reason_classifier.progress import ProgressCallback, ProgressEvent
from reason_classifier.prototypes import DEFAULT_NEW_BELOW, TaxonomyPrototypes
from reason_classifier.survey_files import SurveyFormat, detect_format, open_reader, open_writer
from reason_classifier.taxonomy import Taxonomy

from .corpus import default_taxonomy_path
from .review_file import ASSIGNMENTS_FILE, REPORT_FILE, ClusterEntry, Proposed, ReviewFile, UnassignedEntry

DEFAULT_DISCOVERY_ENCODER = "default"
"""The shipped model's encoder: USE multilingual with its dense layers fine-tuned on labels/train. Measured in
bench/discovery.py on answers it was never trained on (labels/heldout): category purity 0.87 against 0.70 for the
base USE, sub-reason purity 0.69 against 0.40, the proposed sub-reason right for 94 % of the clusters against 67 %.
On 3,000 airline complaints whose reasons the taxonomy lacks (late flight, lost luggage, ...) it separates them about
as well as the base encoder (ARI 0.16 against 0.17, purity 0.61 against 0.59), so it does not hide new reasons."""

NEW_BELOW = {"default": 0.55, USE_MULTILINGUAL: 0.45}
"""Per encoder, the cosine under which a cluster is proposed `new`, from a leave-one-sub-reason-out test on
labels/heldout (each cluster scored once with its majority sub-reason's prototype and once without it): 0.55 with the
default encoder keeps 85-100 % of known reasons and flags 85-87 % of removed ones as new; the base USE has no good
threshold (0.45: 65-85 % kept, 38-59 % flagged)."""


def resolve_encoder(spec: str) -> str:
    """'default' is the shipped model's fine-tuned encoder folder; anything else is passed to load_encoder."""
    if spec == "default":
        from reason_classifier.model_folder import DEFAULT_MODEL_PATH

        return str(DEFAULT_MODEL_PATH / "encoder")
    return spec


ADDED_COLUMNS = ("cluster", "cluster_status", "cluster_similarity", "language", "error")
INVALID = "invalid"
ENCODE_BATCH = 1024


@dataclass
class DiscoveryOptions:
    """Every knob of discovery, with its default.

    encoder: "default" (the shipped model's fine-tuned multilingual encoder, see DEFAULT_DISCOVERY_ENCODER), or
        an encoder name or folder for `load_encoder` ("use-multilingual-v3", "all-MiniLM-L6-v2", ...). Both shipped
        multilingual encoders cluster a mixed-language export by meaning, not by language.
    min_cluster_size / max_sample / seed / assign_spread: passed to `AnswerClusterer`
        (None = automatic min_cluster_size).
    new_below: a cluster whose centre is less similar than this to every sub-reason is proposed `new`
        (None: NEW_BELOW of the encoder, else prototypes.DEFAULT_NEW_BELOW).
    examples: typical answers shown per cluster (those nearest its centre, distinct).
    keywords: keywords shown per cluster.
    map_points: at most this many answers are drawn on the report's map (a seeded sample).
    taxonomy: taxonomy file for the proposals (default: labels/taxonomy.yaml).
    max_chars: longer answers are flagged, not clustered.
    """

    encoder: str = DEFAULT_DISCOVERY_ENCODER
    min_cluster_size: int | None = None
    max_sample: int = 10_000
    seed: int = 0
    assign_spread: float = 2.0
    new_below: float | None = None
    examples: int = 8
    keywords: int = 10
    map_points: int = 5_000
    taxonomy: str | None = None
    max_chars: int = DEFAULT_MAX_CHARS

    def __post_init__(self) -> None:
        if self.min_cluster_size is not None and self.min_cluster_size < 2:
            raise ValueError(f"min_cluster_size must be at least 2, got {self.min_cluster_size!r}")
        if self.max_sample < 10:
            raise ValueError(f"max_sample must be at least 10, got {self.max_sample!r}")
        if not 1 <= self.examples <= 50:
            raise ValueError(f"examples must be between 1 and 50, got {self.examples!r}")
        if self.new_below is not None and not -1.0 <= self.new_below <= 1.0:
            raise ValueError(f"new_below is a cosine, between -1 and 1; got {self.new_below!r}")


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
    options: DiscoveryOptions | None = None,
    input_format: str | None = None,
    encoding: str = "utf-8-sig",
    sheet: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> DiscoveryResult:
    """Embed, cluster and describe every answer of the export; write the review file, assignments and report."""
    options = options or DiscoveryOptions()
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
    taxonomy = Taxonomy.load(options.taxonomy or default_taxonomy_path())
    table, problems = read_export(input_path, text_column, detect_format(input_path, input_format), encoding, sheet)
    n = len(table)
    errors: list[str] = [""] * n
    texts: list[str | None] = [None] * n
    for row, value in enumerate(table[text_column].tolist()):
        message = problems.get(row) or check_answer(_plain(value), options.max_chars)
        if message:
            errors[row] = message
        else:
            texts[row] = str(value).strip()
    valid = np.array([t is not None for t in texts], dtype=bool)
    rows = np.flatnonzero(valid)
    lap("read")

    answer_texts = [text for text in texts if text is not None]  # the valid rows' texts, in the order of `rows`
    distinct: dict[str, int] = {}
    for text in answer_texts:
        distinct.setdefault(text, len(distinct))
    unique_texts = list(distinct)
    encoder = load_encoder(resolve_encoder(options.encoder))
    new_below = (
        options.new_below if options.new_below is not None else NEW_BELOW.get(options.encoder, DEFAULT_NEW_BELOW)
    )
    vectors = np.zeros((len(unique_texts), encoder.dimension), dtype=np.float32)
    for start in range(0, len(unique_texts), ENCODE_BATCH):
        vectors[start : start + ENCODE_BATCH] = encoder.encode(unique_texts[start : start + ENCODE_BATCH])
        report(ProgressEvent("embedding answers", min(start + ENCODE_BATCH, len(unique_texts)), len(unique_texts)))
    which = np.array([distinct[text] for text in answer_texts], dtype=np.int64)
    embeddings = vectors[which]
    lap("embed")

    report(ProgressEvent("clustering", 0, 1))
    clusterer = AnswerClusterer(
        min_cluster_size=options.min_cluster_size,
        max_sample=options.max_sample,
        assign_spread=options.assign_spread,
        random_state=options.seed,
    )
    labels = clusterer.fit_predict(embeddings) if len(rows) else np.zeros(0, dtype=np.int64)
    if not len(rows):
        clusterer.fit(np.zeros((0, encoder.dimension), dtype=np.float32))
    lap("cluster")

    report(ProgressEvent("describing clusters", 0, 1))
    from reason_classifier.language import default_detector

    detector = default_detector()
    unique_languages = detector.detect_many(unique_texts)
    languages = [unique_languages[i] or "" for i in which]
    lap("languages")
    keywords = cluster_keywords(answer_texts, labels.tolist(), top_n=options.keywords)
    prototypes = TaxonomyPrototypes(taxonomy, encoder)
    proposals = prototypes.propose(clusterer.centroids_, new_below=new_below)
    clusters = []
    for cluster in range(clusterer.n_clusters_):
        members = np.flatnonzero(labels == cluster)
        order = members[np.argsort(-clusterer.similarity_[members], kind="stable")]
        proposal = proposals[cluster]
        words = keywords.get(cluster, [])
        clusters.append(
            ClusterEntry(
                id=cluster,
                name=" / ".join(words[:3]) or f"cluster {cluster}",
                category=proposal.category,
                sub_reason=proposal.sub_reason,
                merge_into=None,
                size=len(members),
                share=round(len(members) / max(len(rows), 1), 4),
                keywords=words,
                languages=dict(Counter(languages[i] or "unknown" for i in members).most_common()),
                examples=_distinct_texts((answer_texts[i] for i in order), options.examples),
                proposed=Proposed(**asdict(proposal)),
            )
        )
    unassigned = np.flatnonzero(labels == UNASSIGNED)
    rng = np.random.default_rng(options.seed)
    summary = {
        **clusterer.summary(),
        "rows": n,
        "answers": int(len(rows)),
        "distinct_answers": len(unique_texts),
        "invalid_rows": int(n - len(rows)),
        "unassigned_share": round(len(unassigned) / max(len(rows), 1), 4),
        "new_below": new_below,
        "assign_spread": options.assign_spread,
    }
    review = ReviewFile(
        input=str(input_path),
        text_column=text_column,
        encoder=options.encoder,
        taxonomy=str(Path(options.taxonomy) if options.taxonomy else default_taxonomy_path()),
        seed=options.seed,
        rows=n,
        answers=int(len(rows)),
        invalid_rows=int(n - len(rows)),
        summary=summary,
        unassigned=UnassignedEntry(
            size=len(unassigned),
            share=summary["unassigned_share"],
            examples=_distinct_texts((answer_texts[i] for i in rng.permutation(unassigned)), options.examples),
        ),
        clusters=clusters,
    )
    lap("describe")

    report(ProgressEvent("writing", 0, 1))
    folder.mkdir(parents=True, exist_ok=True)
    files = {"review": review.write(folder)}
    files["assignments"] = _write_assignments(
        folder / ASSIGNMENTS_FILE, table, rows, labels, clusterer, languages, errors
    )
    lap("write")

    from .discovery_report import write_discovery_report

    report(ProgressEvent("drawing the map", 0, 1))
    files["report"] = write_discovery_report(
        folder / REPORT_FILE,
        review,
        embeddings,
        labels,
        answer_texts,
        languages,
        max_points=options.map_points,
        seed=options.seed,
    )
    lap("report")
    return DiscoveryResult(folder, review, timings, files, embeddings, labels, rows)


def _write_assignments(
    path: Path,
    table: pd.DataFrame,
    rows: np.ndarray,
    labels: np.ndarray,
    clusterer: AnswerClusterer,
    languages: list[str],
    errors: list[str],
) -> Path:
    n = len(table)
    cluster = np.full(n, "", dtype=object)
    status = np.full(n, INVALID, dtype=object)
    similarity = np.full(n, "", dtype=object)
    language = np.full(n, "", dtype=object)
    cluster[rows] = [str(int(c)) for c in labels]
    status[rows] = clusterer.membership_ if len(rows) else []
    similarity[rows] = [f"{s:.3f}" for s in clusterer.similarity_] if len(rows) else []
    language[rows] = languages
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


def _distinct_texts(texts, limit: int) -> list[str]:
    seen: set[str] = set()
    chosen: list[str] = []
    for text in texts:
        key = " ".join(text.lower().split())
        if key not in seen:
            seen.add(key)
            chosen.append(text if len(text) <= 300 else text[:297] + "...")
        if len(chosen) == limit:
            break
    return chosen


def _plain(value: object) -> object:
    """Arrow-backed scalars and pandas' NA as plain Python values, so check_answer sees text or a missing value."""
    if value is pd.NA:
        return None
    return value.as_py() if hasattr(value, "as_py") else value


STATUSES = (CLUSTERED, ASSIGNED, NOT_ASSIGNED, INVALID)
