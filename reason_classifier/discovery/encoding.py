"""The encoder stage: from answers to L2-normalisable embeddings, each distinct answer embedded once.

The stage is an encoder name or folder (`load_encoder`), "default" (the shipped model's encoder),
an object with `encode(texts)` (this project's encoders, a sentence-transformers model), or a
scikit-learn transformer (`make_pipeline(TfidfVectorizer(), TruncatedSVD(100))`), which is fitted
on the answers being discovered and then transforms them and the taxonomy's seed answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..encoders import USE_MULTILINGUAL, Encoder, load_encoder
from ..progress import ProgressCallback, ProgressEvent

DEFAULT_ENCODER = "default"
"""The shipped model's encoder: USE multilingual with its dense layers fine-tuned on labels/train. Measured in
bench/discovery.py on answers it was never trained on (labels/heldout): category purity 0.87 against 0.70 for the
base USE, sub-reason purity 0.69 against 0.40, the proposed sub-reason right for 94 % of the clusters against 67 %.
On 3,000 airline complaints whose reasons the taxonomy lacks (late flight, lost luggage, ...) it separates them about
as well as the base encoder (ARI 0.16 against 0.17, purity 0.61 against 0.59), so it does not hide new reasons."""

NEW_BELOW = {DEFAULT_ENCODER: 0.55, USE_MULTILINGUAL: 0.45}
"""Per encoder, the cosine under which a cluster is proposed `new`, from a leave-one-sub-reason-out test on
labels/heldout (each cluster scored once with its majority sub-reason's prototype and once without it): 0.55 with the
default encoder keeps 85-100 % of known reasons and flags 85-87 % of removed ones as new; the base USE has no good
threshold (0.45: 65-85 % kept, 38-59 % flagged)."""

ENCODE_BATCH = 1024


def resolve_encoder(spec: str) -> str:
    """'default' is the shipped model's fine-tuned encoder folder; anything else is passed to load_encoder."""
    if spec == DEFAULT_ENCODER:
        from ..model_folder import DEFAULT_MODEL_PATH

        return str(DEFAULT_MODEL_PATH / "encoder")
    return spec


class TransformerEncoder:
    """A scikit-learn transformer as an encoder: `fit` on the answers, then `encode` = dense `transform`."""

    def __init__(self, transformer: Any) -> None:
        self.transformer = transformer
        self.name = type(transformer).__name__
        self.dimension = 0

    def fit(self, texts: Sequence[str]) -> TransformerEncoder:
        self.transformer.fit(list(texts))
        self.dimension = int(self.encode(list(texts[:1]) or [""]).shape[1])
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.transformer.transform(list(texts))
        dense = vectors.toarray() if hasattr(vectors, "toarray") else vectors
        return np.asarray(dense, dtype=np.float32)


def as_encoder(stage: Any) -> Encoder | TransformerEncoder:
    """The encoder a stage specification stands for (see the module's docstring)."""
    if isinstance(stage, str):
        return load_encoder(resolve_encoder(stage))
    if hasattr(stage, "encode"):
        return stage
    if hasattr(stage, "transform"):
        return TransformerEncoder(stage)
    raise ValueError(
        f"encoder must be a name, a folder, or have encode(texts) or transform(texts); got {type(stage).__name__}"
    )


def encoder_name(stage: Any) -> str:
    """What a review file records as the encoder: the name or folder given, else the encoder's own name."""
    if isinstance(stage, str):
        return stage
    return str(getattr(stage, "name", None) or type(stage).__name__)


def distinct(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(each distinct text once, in order of first appearance; the position of every text among them)."""
    positions: dict[str, int] = {}
    for text in texts:
        positions.setdefault(text, len(positions))
    return list(positions), np.array([positions[text] for text in texts], dtype=np.int64)


def embed(
    encoder: Encoder | TransformerEncoder,
    texts: Sequence[str],
    batch_size: int = ENCODE_BATCH,
    on_progress: ProgressCallback | None = None,
) -> np.ndarray:
    """(len(texts), dimension) float32 embeddings, encoded in batches (a scikit-learn transformer is fitted first)."""
    if isinstance(encoder, TransformerEncoder):
        encoder.fit(texts)
    vectors: np.ndarray | None = None
    for start in range(0, len(texts), batch_size):
        batch = np.asarray(encoder.encode(texts[start : start + batch_size]), dtype=np.float32)
        if vectors is None:
            vectors = np.zeros((len(texts), batch.shape[1]), dtype=np.float32)
        vectors[start : start + batch_size] = batch
        if on_progress:
            on_progress(ProgressEvent("embedding answers", min(start + batch_size, len(texts)), len(texts)))
    if vectors is None:
        return np.zeros((0, int(getattr(encoder, "dimension", 0) or 0)), dtype=np.float32)
    return vectors
