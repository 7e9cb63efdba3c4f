"""The shipped models the benchmarks compare side by side: the new default, `fast` and the previous default.

    default           the default model shipped in the package (`ReasonClassifier.load()`)
    fast              the same folder without its transformer (`ReasonClassifier.load("fast")`)
    previous-default  the default as it was before the multilingual transformer (issue #14): the folder
                      `reason_classifier/default_model` at commit 0f94aa8, taken from git with
                      `git archive 0f94aa8 reason_classifier/default_model`, or a copy given with `--previous PATH`

`shipped_models(names, previous)` is a context manager that yields, for each name, what to pass to
`ReasonClassifier.load` (or to a worker process: "default", "fast" or a folder path), and removes the
extracted previous default afterwards. Nothing here imports the library, so a launcher that only starts
worker processes stays small (its peak RSS is a floor for theirs).
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
PREVIOUS_DEFAULT_COMMIT = "0f94aa8"
PREVIOUS_DEFAULT_PATH = "reason_classifier/default_model"
DEFAULT, FAST, PREVIOUS_DEFAULT = "default", "fast", "previous-default"
SHIPPED_MODELS = (DEFAULT, FAST, PREVIOUS_DEFAULT)
"""In the order the benchmarks show them; "default" and "fast" are names `ReasonClassifier.load` knows."""
DESCRIPTIONS = {
    DEFAULT: "shipped default (ReasonClassifier.load())",
    FAST: "shipped default without its transformer (ReasonClassifier.load('fast'))",
    PREVIOUS_DEFAULT: f"previous default ({PREVIOUS_DEFAULT_PATH} at {PREVIOUS_DEFAULT_COMMIT})",
}


class PreviousDefaultError(RuntimeError):
    """The previous default model folder could be neither extracted from git nor read from --previous."""


def extract_previous_default(into: Path, repository: Path = REPOSITORY, commit: str = PREVIOUS_DEFAULT_COMMIT) -> Path:
    """`git -C repository archive commit reason_classifier/default_model | tar -x -C into`; returns the model folder."""
    hint = f"pass --previous PATH to a copy of {PREVIOUS_DEFAULT_PATH} as it was at commit {commit}"
    try:
        archive = subprocess.run(
            ["git", "-C", str(repository), "archive", "--format=tar", commit, PREVIOUS_DEFAULT_PATH],
            capture_output=True,
            check=False,
        )
    except OSError as error:  # no git on this machine
        raise PreviousDefaultError(f"cannot run git to extract the previous default ({error}); {hint}") from None
    if archive.returncode != 0:
        reason = archive.stderr.decode(errors="replace").strip() or f"exit {archive.returncode}"
        raise PreviousDefaultError(
            f"git archive {commit} {PREVIOUS_DEFAULT_PATH} failed in {repository} ({reason}); {hint}"
        )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    folder = into / PREVIOUS_DEFAULT_PATH
    if not (folder / "config.json").is_file():
        raise PreviousDefaultError(f"git archive {commit} gave no model folder at {PREVIOUS_DEFAULT_PATH}; {hint}")
    return folder


def commit_id(repository: Path = REPOSITORY, commit: str = PREVIOUS_DEFAULT_COMMIT) -> str | None:
    found = subprocess.run(
        ["git", "-C", str(repository), "rev-parse", "--verify", f"{commit}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return (found.stdout.strip() or None) if found.returncode == 0 else None


@contextmanager
def previous_default_folder(previous: Path | None = None) -> Iterator[tuple[Path, dict]]:
    """(folder, provenance) of the previous default: `previous` if given, else extracted from git into a temporary
    folder."""
    if previous is not None:
        if not (Path(previous) / "config.json").is_file():
            raise PreviousDefaultError(f"--previous {previous}: not a model folder (no config.json there)")
        yield Path(previous), {"source": str(Path(previous).resolve())}
        return
    with tempfile.TemporaryDirectory(prefix="previous-default-") as temporary:
        folder = extract_previous_default(Path(temporary))
        yield (
            folder,
            {
                "source": f"git archive {PREVIOUS_DEFAULT_COMMIT} {PREVIOUS_DEFAULT_PATH}",
                "commit": commit_id() or PREVIOUS_DEFAULT_COMMIT,
            },
        )


@contextmanager
def shipped_models(names: Sequence[str], previous: Path | None = None) -> Iterator[dict[str, dict]]:
    """For each of `names` (of SHIPPED_MODELS): {"load": what ReasonClassifier.load takes, "model": a description,
    ...}."""
    unknown = [name for name in names if name not in SHIPPED_MODELS]
    if unknown:
        raise ValueError(f"not a shipped model: {', '.join(unknown)}; choose from {', '.join(SHIPPED_MODELS)}")
    models = {name: {"load": name, "model": DESCRIPTIONS[name]} for name in names if name != PREVIOUS_DEFAULT}
    if PREVIOUS_DEFAULT not in names:
        yield models
        return
    with previous_default_folder(previous) as (folder, provenance):
        models[PREVIOUS_DEFAULT] = {"load": str(folder), "model": DESCRIPTIONS[PREVIOUS_DEFAULT], **provenance}
        yield {name: models[name] for name in names}
