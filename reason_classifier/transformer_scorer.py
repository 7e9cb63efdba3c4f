"""The fine-tuned multilingual transformer's own reading of an answer: sub-reason probabilities from its linear layer.

The default model weighs this beside the fast encoder's head: the transformer reads real
customers' text (reviews, tweets, languages outside the fast encoder's sixteen) far better, the
fast head reads our corpus's style and exact wordings better, and their average beats both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelFolderError
from .heads import LinearHead
from .multilingual_e5 import FINE_TUNED_ME5_FILE, MultilingualE5Encoder

TRANSFORMER_FOLDER = "transformer"
TRANSFORMER_HEAD_FILE = "head.npz"


@dataclass
class TransformerScorer:
    """multilingual-e5-small with fine-tuned layers, and a calibrated linear layer over its unit-length embeddings."""

    encoder: MultilingualE5Encoder
    head: LinearHead

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, sub-reasons) probabilities, columns in `head.classes` order."""
        return self.head.predict_proba(self.encoder.encode(texts))

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return self.head.logits(self.encoder.encode(texts))

    def reorder(self, classes: Sequence[str]) -> TransformerScorer:
        return TransformerScorer(self.encoder, self.head.reorder(classes))

    def save(self, folder: str | Path) -> Path:
        """Write the head beside the fine-tuned layers already in the encoder's folder (training wrote them there)."""
        folder = Path(folder)
        if self.encoder.folder is None or not (self.encoder.folder / FINE_TUNED_ME5_FILE).is_file():
            raise ModelFolderError("a transformer scorer is saved from the folder of its fine-tuned layers")
        if self.encoder.folder.resolve() != folder.resolve():
            import shutil

            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.encoder.folder / FINE_TUNED_ME5_FILE, folder / FINE_TUNED_ME5_FILE)
        self.head.save(folder / TRANSFORMER_HEAD_FILE)
        return folder

    @classmethod
    def load(cls, folder: str | Path, threads: int = 2) -> TransformerScorer:
        folder = Path(folder)
        try:
            head = LinearHead.load(folder / TRANSFORMER_HEAD_FILE)
        except (KeyError, ValueError, OSError) as error:
            raise ModelFolderError(f"{folder / TRANSFORMER_HEAD_FILE} cannot be read: {error}") from error
        return cls(MultilingualE5Encoder(threads=threads, fine_tuned=folder), head)
