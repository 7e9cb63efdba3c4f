"""Tagging many survey exports on Ray Data, with the same rows out as `tag_file` gives one file at a time.

Why it is shaped this way:
- Each input file is read by the project's own readers (`survey_files.open_reader`), so a CSV cell stays a string, a
  ragged CSV line or a line that is not JSON stays a flagged row, exactly as on one machine; Ray's own CSV/JSON readers
  infer types and reject such lines.
- A Ray row is a whole chunk, pickled: Ray converts pandas columns to Arrow between stages (object columns become
  Arrow strings or Ray's own object type), which would change the types `tag` keeps; an opaque chunk comes out as it
  went in, dtypes, missing keys and all.
- Tagging is `map_batches` over a fixed pool of actors (`ActorPoolStrategy`), each loading the model once and
  tagging each chunk with `tagging.tag_chunk`, the function `tag_file` uses. Reading is fused into the same actors
  (same CPU request), so an actor reads the file it tags: files are the unit of parallelism.
- The driver writes one output per input file with the project's writers, atomically, in the input's order: Ray keeps
  the order (`preserve_order`), and every chunk carries its file and first row, which the driver checks, so a lost or
  reordered chunk stops the run instead of writing a different file. The driver's writing is this design's limit at
  scale (see docs/scale.md); the model's work is spread.

Ray is an optional dependency (`pip install "reason-classifier[ray]"`), imported only when a run starts.
"""

from __future__ import annotations

import glob
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .answers import DEFAULT_MAX_CHARS
from .classifier import ReasonClassifier
from .config import DEFAULT_CHUNK_ROWS, Settings
from .errors import InputError, ReasonClassifierError
from .survey_files import SurveyFormat, SurveyReader, SurveyWriter, detect_format, open_reader, open_writer
from .tagging import TagSummary, tag_chunk, write_tagged

# Ray's rows are whole chunks: the file's index, the chunk's first row (1-based) and row count, and the pickled chunk.
FILE, FIRST_ROW, ROWS, DATA = "file", "first_row", "rows", "data"

# Formats a folder is searched for; other files in it (a _SUCCESS marker, a README) are not exports.
_READABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".parquet", ".pq", ".xlsx", ".xlsm")
_OUTPUT_SUFFIXES = {SurveyFormat.PARQUET: ".parquet", SurveyFormat.CSV: ".csv", SurveyFormat.JSONL: ".jsonl"}


class RayUnavailableError(ReasonClassifierError):
    """Ray is not installed, or the cluster at --address could not be joined."""


@dataclass(frozen=True)
class RayTagOptions:
    """How the files are read and the model loaded; the same fields as the local `tag` command's options."""

    text_column: str
    model: str | None = None
    input_format: str | None = None
    output_format: str = "parquet"
    encoding: str = "utf-8-sig"
    sheet: str | None = None
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    max_chars: int = DEFAULT_MAX_CHARS
    detect_language: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, text_column: str, **reading: Any) -> RayTagOptions:
        """The options of a run whose actors load the model `settings` describe, as the local engine does;
        `reading`: the other fields (input_format, output_format, encoding, sheet)."""
        return cls(
            text_column=text_column,
            model=settings.model,
            chunk_rows=settings.chunk_rows,
            max_chars=settings.max_chars,
            detect_language=settings.detect_language,
            **reading,
        )

    def actor_settings(self) -> Settings:
        """The run-time settings an actor loads its model with (`ReasonClassifier.from_settings`), with one BLAS
        thread: the pool is the parallelism; more threads per actor oversubscribe the cores."""
        return Settings(
            model=self.model,
            threads=1,
            max_chars=self.max_chars,
            chunk_rows=self.chunk_rows,
            detect_language=self.detect_language,
        )


@dataclass
class RayTagSummary:
    """What a Ray tagging run did: the totals as `tag` reports them, one output per input, and Ray's own overheads."""

    summary: TagSummary
    outputs: dict[str, Path] = field(default_factory=dict)
    workers: int = 0
    ray_start_seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            **self.summary.as_dict(),
            "output": None,
            "outputs": {source: str(path) for source, path in self.outputs.items()},
            "workers": self.workers,
            "ray_start_seconds": round(self.ray_start_seconds, 3),
        }


def find_sources(source: str | Path | Sequence[str | Path], input_format: str | None = None) -> list[str]:
    """The export files named by a file, a folder (searched recursively), a glob or a list of these, sorted.

    Local paths are resolved here; a URI with a scheme (s3://, gs://, …) is listed through pyarrow's filesystems, which
    is how Ray Data reaches object storage, so it works where the user's Ray has the credentials.
    """
    names = [source] if isinstance(source, (str, Path)) else list(source)
    found: list[str] = []
    for name in map(str, names):
        matches = _list_remote(name) if "://" in name else _list_local(name)
        if input_format is None:
            matches = [m for m in matches if PurePosixPath(m).suffix.lower() in _READABLE_SUFFIXES]
        if not matches:
            raise InputError(f"{name}: no survey export found (files ending in {', '.join(_READABLE_SUFFIXES)})")
        found.extend(matches)
    duplicates = sorted({f for f in found if found.count(f) > 1})
    if duplicates:
        raise InputError(f"{duplicates[0]} is named more than once; each export is tagged once")
    return found


def _list_local(name: str) -> list[str]:
    if glob.has_magic(name):
        paths = [Path(p) for p in sorted(glob.glob(name, recursive=True))]
        paths = [p for p in paths if p.is_file()]
    elif Path(name).is_dir():
        paths = sorted(p for p in Path(name).rglob("*") if p.is_file())
    elif Path(name).is_file():
        paths = [Path(name)]
    else:
        raise InputError(f"{name}: no such file, folder or matching files")
    return [str(p.resolve()) for p in paths if not _hidden(p.name)]


def _list_remote(uri: str) -> list[str]:
    import pyarrow.fs as pafs

    filesystem, path = pafs.FileSystem.from_uri(uri)
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.File:
        paths = [path]
    elif info.type == pafs.FileType.Directory:
        selector = pafs.FileSelector(path, recursive=True)
        paths = sorted(i.path for i in filesystem.get_file_info(selector) if i.type == pafs.FileType.File)
    else:
        raise InputError(f"{uri}: no such file or folder")
    scheme = uri.split("://", 1)[0]
    return [f"{scheme}://{p}" for p in paths if not _hidden(PurePosixPath(p).name)]


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def output_paths(sources: Sequence[str], output_dir: str | Path, output_format: str | SurveyFormat) -> dict[str, Path]:
    """Each input's output: its path below the inputs' common folder, in `output_dir`, with the output's extension."""
    fmt = SurveyFormat(output_format)
    if fmt not in _OUTPUT_SUFFIXES:
        raise InputError(f"output format {fmt.value!r} is not written by the Ray engine; use parquet, csv or jsonl")
    bare = [s.split("://", 1)[-1] for s in sources]
    root = os.path.commonpath([str(PurePosixPath(b).parent) for b in bare]) if bare else ""
    targets: dict[str, Path] = {}
    for source, path in zip(sources, bare, strict=True):
        relative = PurePosixPath(os.path.relpath(path, root) if root else PurePosixPath(path).name)
        targets[source] = Path(output_dir, relative.with_suffix(_OUTPUT_SUFFIXES[fmt]))
    clashes = [t for t in targets.values() if list(targets.values()).count(t) > 1]
    if clashes:
        same = [s for s, t in targets.items() if t == clashes[0]]
        raise InputError(f"{' and '.join(same)} would both be written to {clashes[0]}; tag them separately")
    for source, target in targets.items():
        if "://" not in source and Path(source).resolve() == target.resolve():
            raise InputError(f"{target}: the output would overwrite the input; choose another output folder")
    return targets


def check_text_column(sources: Sequence[str], options: RayTagOptions) -> None:
    """A local file without the text column stops the run before Ray starts (remote files are checked as read)."""
    for source in sources:
        if "://" not in source:
            with _open(source, options, chunk_rows=1) as reader:
                reader.require_column(options.text_column)


def read_export(batch: dict[str, Any], options: RayTagOptions) -> Iterator[dict[str, list]]:
    """Ray Data stage: one input file (a batch of one row: its index and path) as chunks, each one opaque row."""
    [index], [source] = batch["index"], batch["source"]
    try:
        with _local_copy(str(source)) as path, _open(path, options, options.chunk_rows) as reader:
            reader.require_column(options.text_column)
            for chunk in reader.chunks():
                yield {FILE: [int(index)], FIRST_ROW: [chunk.first_row], ROWS: [len(chunk.table)], DATA: [_pack(chunk)]}
    except ReasonClassifierError as error:
        yield {FILE: [int(index)], FIRST_ROW: [0], ROWS: [0], DATA: [_pack(error)]}


def _open(path: str, options: RayTagOptions, chunk_rows: int) -> SurveyReader:
    fmt = detect_format(path, options.input_format)
    return open_reader(path, fmt, chunk_rows, options.encoding, options.sheet)


def _pack(value: object) -> bytes:
    """A chunk as Ray carries it: pickled, so Ray never converts its columns (Arrow would change their types).

    The project's own errors (a file without the text column, undecodable bytes) travel the same way, in the file's
    place in the order, so the driver raises them as they are rather than as Ray's wrapping of a remote traceback.
    """
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


@contextmanager
def _local_copy(source: str) -> Iterator[str]:
    """The project's readers read local files; a file in object storage is copied beside the worker first."""
    if "://" not in source:
        yield source
        return
    import pyarrow.fs as pafs

    filesystem, path = pafs.FileSystem.from_uri(source)
    with tempfile.TemporaryDirectory(prefix="reason-classifier-ray-") as folder:
        local = os.path.join(folder, PurePosixPath(path).name)
        with filesystem.open_input_stream(path) as remote, open(local, "wb") as copy:
            shutil.copyfileobj(remote, copy, 1 << 20)
        yield local


class ChunkTagger:
    """Ray Data actor: loads the model once, then tags each chunk as `tag_file` tags it."""

    def __init__(self, options: RayTagOptions, sources: list[str]) -> None:
        started = time.perf_counter()
        self.options = options
        self.sources = sources
        self.classifier = ReasonClassifier.from_settings(options.actor_settings())
        self.model_load_seconds = time.perf_counter() - started

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        tagged = [self._tag(int(index), data) for index, data in zip(batch[FILE], batch[DATA], strict=True)]
        return {FILE: batch[FILE], FIRST_ROW: batch[FIRST_ROW], ROWS: batch[ROWS], DATA: tagged}

    def _tag(self, index: int, data: bytes) -> bytes:
        chunk = pickle.loads(data)
        if isinstance(chunk, ReasonClassifierError):
            return data
        try:
            return _pack(tag_chunk(chunk, self.classifier, self.options.text_column, self.sources[index]))
        except ReasonClassifierError as error:
            return _pack(error)


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None, object_store_bytes: int | None = None):
    """Joins the cluster at `address`, or starts a local Ray on this machine's cores that is gone afterwards.

    The dashboard is off and usage statistics are not sent (nothing leaves the machine); a local Ray keeps its session
    files in a temporary folder that is removed at the end, not in /tmp/ray where sessions pile up. An already
    initialised Ray (a user's own session) is used as it is and left running.
    """
    try:
        import ray
    except ImportError:
        raise RayUnavailableError('the Ray engine needs Ray: pip install "reason-classifier[ray]"') from None
    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    temporary = None if address else tempfile.mkdtemp(prefix="rc-ray-")
    settings: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if address:
        settings["address"] = address
    else:
        settings.update(num_cpus=num_cpus or os.cpu_count() or 1, _temp_dir=temporary)
        if object_store_bytes:
            settings["object_store_memory"] = object_store_bytes
    try:
        try:
            ray.init(**settings)
        except (ConnectionError, ray.exceptions.RayError) as error:
            hint = " (a cluster with token authentication needs RAY_AUTH_MODE=token and its token)" if address else ""
            raise RayUnavailableError(
                f"could not start or join Ray{f' at {address}' if address else ''}{hint}: {error}"
            ) from None
        yield ray
    finally:
        ray.shutdown()
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


def tag_on_ray(
    source: str | Path | Sequence[str | Path],
    output_dir: str | Path,
    options: RayTagOptions,
    *,
    workers: int | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    object_store_bytes: int | None = None,
) -> RayTagSummary:
    """Tag every export under `source` on Ray into `output_dir`, one output per input, rows as `tag_file` writes them.

    `workers` is the number of model actors (default: one per CPU of the cluster; never more than there are files).
    Each output appears only once complete; a run that fails leaves the outputs of the
    files finished before the failure and no partial file.
    """
    sources = find_sources(source, options.input_format)
    targets = output_paths(sources, output_dir, options.output_format)
    check_text_column(sources, options)
    started = time.perf_counter()
    with ray_session(address, num_cpus, object_store_bytes) as ray:
        ray_started = time.perf_counter()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        pool = min(workers or cpus, len(sources))  # an actor tags one file at a time: more would stand idle
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        files = ray.data.from_items(
            [{"index": i, "source": s} for i, s in enumerate(sources)], override_num_blocks=len(sources)
        )
        # The same CPU request for both stages lets Ray fuse them: each actor reads the file it tags, in its own
        # process, so no extra reader processes compete with the model for cores and no rows cross the network
        # between the stages. Files are the unit of parallelism: one actor tags one file at a time.
        tagged = files.map_batches(
            read_export, fn_kwargs={"options": options}, batch_size=1, batch_format="numpy", num_cpus=1
        ).map_batches(
            ChunkTagger,
            fn_constructor_kwargs={"options": options, "sources": sources},
            batch_size=None,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=pool),
            num_cpus=1,
        )
        result = RayTagSummary(TagSummary(), workers=pool, ray_start_seconds=ray_started - started)
        _write_in_order(tagged.iter_batches(batch_size=None, batch_format="numpy"), sources, targets, result)
    result.summary.seconds = time.perf_counter() - started
    return result


def _write_in_order(
    batches: Iterator[dict[str, Any]], sources: list[str], targets: dict[str, Path], result: RayTagSummary
) -> None:
    """Write each file's chunks as they arrive, checking that they arrive whole and in order (Ray's promise)."""
    current, writer, next_row = -1, None, 1
    try:
        for batch in batches:
            for index, first_row, rows, data in zip(
                batch[FILE], batch[FIRST_ROW], batch[ROWS], batch[DATA], strict=True
            ):
                index = int(index)
                if index != current:
                    if index < current:
                        raise ReasonClassifierError(f"Ray returned rows of {sources[index]} out of order")
                    if writer is not None:
                        result.outputs[sources[current]] = writer.commit()
                    current, next_row = index, 1
                    writer = _open_target(targets[sources[index]])
                tagged = pickle.loads(data)
                if isinstance(tagged, ReasonClassifierError):
                    raise tagged
                if first_row != next_row or len(tagged) != rows:
                    raise ReasonClassifierError(
                        f"Ray returned rows {first_row}-{first_row + rows - 1} of {sources[index]} where row "
                        f"{next_row} was due; its output is not written"
                    )
                next_row += rows
                assert writer is not None
                write_tagged(writer, tagged)
                result.summary.add(tagged)
        if writer is not None:
            result.outputs[sources[current]] = writer.commit()
            writer = None
        missing = [s for s in sources if s not in result.outputs]
        if missing:
            raise ReasonClassifierError(f"Ray returned nothing for {missing[0]} ({len(missing)} file(s) not written)")
    finally:
        if writer is not None:
            writer.abort()


def _open_target(path: Path) -> SurveyWriter:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open_writer(path, detect_format(path))
