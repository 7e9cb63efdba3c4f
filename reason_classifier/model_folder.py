"""The on-disk format of a trained model: one folder a person can copy, read and check.

    config.json     format version, encoder, abstention threshold, checksums, training summary
    head.npz        the linear head over the sub-reasons (embedding, then hashed character n-grams if any)
    char_ngrams.npz the n-grams' IDF weights, when the model reads IDF-weighted n-grams
    taxonomy.yaml   the taxonomy the model was trained on (a snapshot)
    metrics.json    held-out quality, with the data it was measured on
    README.md       the model card
    encoder/        the fine-tuned encoder, when the model has one
    transformer/    the fine-tuned multilingual transformer's changed layers and linear layer, when the model has one

Reading verifies that every file is there and unchanged (checksums), and that the format
version is one this code reads, so a half-copied or hand-edited folder fails with a clear
message instead of predicting nonsense.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .char_ngrams import CharNgrams
from .errors import ModelFolderError, TaxonomyError
from .heads import LinearHead
from .resources import package_path
from .taxonomy import Taxonomy

FORMAT_VERSION = 5
READABLE_FORMAT_VERSIONS = (1, 2, 3, 4, 5)
"""Version 2 added `char_ngrams` (None in version 1 folders); version 3 their sublinear counts and
IDF (`char_ngrams.npz`); version 4 their reading without diacritics; version 5 a fine-tuned transformer
(`transformer/`) whose probabilities are averaged with the head's. Older folders still read and
predict as they did."""
CONFIG_FILE = "config.json"
HEAD_FILE = "head.npz"
CHAR_NGRAMS_FILE = "char_ngrams.npz"
TAXONOMY_FILE = "taxonomy.yaml"
METRICS_FILE = "metrics.json"
CARD_FILE = "README.md"
ENCODER_FOLDER = "encoder"
REQUIRED_FILES = (CONFIG_FILE, HEAD_FILE, TAXONOMY_FILE)
UNCHECKED_FILES = (CONFIG_FILE, METRICS_FILE, CARD_FILE)
"""Every other file of the folder (weights, taxonomy, encoder) is covered by a checksum in config.json."""

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


def read_model_folder(path: str | Path | None = None) -> ModelFiles:
    path = Path(path) if path is not None else DEFAULT_MODEL_PATH
    if not path.is_dir():
        raise ModelFolderError(f"model folder {path} does not exist or is not a folder")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ModelFolderError(f"model folder {path} is incomplete: missing {', '.join(missing)}")
    config = _read_config(path)
    missing = [name for name in config.checksums if not (path / name).is_file()]
    if missing:
        raise ModelFolderError(f"model folder {path} is incomplete: missing {', '.join(missing)}")
    for name, expected in config.checksums.items():
        if expected != file_sha256(path / name):
            raise ModelFolderError(
                f"model folder {path}: {name} does not match the checksum in {CONFIG_FILE} "
                "(the file was changed or damaged after training; retrain or copy the folder again)"
            )
    try:
        taxonomy = Taxonomy.load(path / TAXONOMY_FILE)
    except TaxonomyError as error:
        raise ModelFolderError(f"model folder {path}: {error}") from error
    try:
        head = LinearHead.load(path / HEAD_FILE)
    except (KeyError, ValueError, OSError) as error:
        raise ModelFolderError(f"model folder {path}: {HEAD_FILE} cannot be read: {error}") from error
    if sorted(head.classes) != sorted(taxonomy.sub_reason_names):
        raise ModelFolderError(
            f"model folder {path}: the head's classes {list(head.classes)} do not match the taxonomy's sub-reasons"
        )
    metrics_file = path / METRICS_FILE
    metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
    local_encoder = path / config.encoder
    encoder_path = str(local_encoder) if local_encoder.exists() else config.encoder
    return ModelFiles(config, taxonomy, head, metrics, encoder_path, _read_char_ngrams(path, config), path)


def _read_char_ngrams(path: Path, config: ModelConfig) -> CharNgrams | None:
    if not config.char_ngrams:
        return None
    idf = None
    if (path / CHAR_NGRAMS_FILE).is_file():
        try:
            with np.load(path / CHAR_NGRAMS_FILE, allow_pickle=False) as arrays:
                idf = arrays["idf"]
        except (KeyError, ValueError, OSError) as error:
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
    return sorted(
        str(file.relative_to(folder))
        for file in folder.rglob("*")
        if file.is_file() and str(file.relative_to(folder)) not in UNCHECKED_FILES
    )


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
