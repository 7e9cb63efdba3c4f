"""The reason classifier: an answer in, a category, a sub-reason and an honest confidence out."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .answers import DEFAULT_MAX_CHARS, check_answer
from .char_ngrams import CharNgrams
from .config import Settings
from .encoders import Encoder, load_encoder
from .errors import ModelFolderError, ReasonClassifierError
from .heads import LinearHead
from .language import LanguageDetector, default_detector
from .model_folder import ENCODER_FOLDER, ModelConfig, ModelFiles, read_model_folder, write_model_folder
from .taxonomy import ABSTAIN_CATEGORY, CATEGORIES, Taxonomy
from .transformer_scorer import TRANSFORMER_FOLDER, TransformerScorer

FAST = "fast"
"""A model name: the default model without its transformer (several times faster, weaker on real customers' text)."""


@dataclass(frozen=True)
class Prediction:
    """One classified answer.

    `confidence` is the model's probability that `category` is right. When the model abstains
    (no category reaches the threshold) the category is `other`, `abstained` is true and
    `confidence` is the probability that the best guess would have been wrong. Rows that could
    not be classified at all (empty, not text, too long) carry `error` and no confidence.
    """

    category: str
    sub_reason: str | None
    confidence: float | None
    sub_reason_confidence: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    abstained: bool = False
    language: str | None = None
    error: str | None = None


@contextmanager
def _as_folder_error(folder: Path, what: str) -> Iterator[None]:
    """Any failure reading part of a model folder (a damaged .npz whose checksum was updated, a missing key) as the
    project's error, naming the folder and the part."""
    try:
        yield
    except ReasonClassifierError:
        raise
    except Exception as error:
        raise ModelFolderError(
            f"model folder {folder}: {what} cannot be read: {type(error).__name__}: {error}"
        ) from error


class ReasonClassifier:
    """Encoder (+ hashed character n-grams) and one linear head over the taxonomy's sub-reasons; `load()` gives the
    shipped default.

    A category's probability is the sum of its sub-reasons' probabilities, so the sub-reason can
    never contradict the category. A model may also carry a fine-tuned transformer
    (`transformer`): its sub-reason probabilities are averaged with the head's, with weight
    `transformer_weight`; loaded as `fast`, a model leaves it out and uses the head alone, with
    the abstention threshold that was chosen for the head alone.
    """

    def __init__(
        self,
        encoder: Encoder,
        taxonomy: Taxonomy,
        head: LinearHead,
        abstain_below: float = 0.5,
        max_chars: int = DEFAULT_MAX_CHARS,
        language_detector: LanguageDetector | None = None,
        config: ModelConfig | None = None,
        char_ngrams: CharNgrams | None = None,
        transformer: TransformerScorer | None = None,
        transformer_weight: float = 0.0,
    ) -> None:
        if not 0.0 <= transformer_weight <= 1.0:
            raise ValueError(f"transformer_weight must be between 0 and 1, got {transformer_weight!r}")
        self.transformer = transformer.reorder(taxonomy.sub_reason_names) if transformer is not None else None
        self.transformer_weight = transformer_weight if transformer is not None else 0.0
        self.encoder = encoder
        self.char_ngrams = char_ngrams
        self.taxonomy = taxonomy
        self.head = head.reorder(taxonomy.sub_reason_names)
        self.abstain_below = abstain_below
        self.max_chars = max_chars
        self.language_detector = language_detector
        self.config = config or ModelConfig(name="unsaved", encoder=encoder.name, abstain_below=abstain_below)
        n_grams = char_ngrams.n_features if char_ngrams else 0
        if encoder.dimension + n_grams != self.head.dimension:
            raise ValueError(
                f"encoder {encoder.name} gives {encoder.dimension}-dimensional embeddings and the character n-grams "
                f"{n_grams} columns; the head expects {self.head.dimension} in all"
            )
        # For each category, the columns of its sub-reasons in the head's output.
        self._sub_reason_columns = {
            c: np.array([self.taxonomy.sub_reason_names.index(s) for s in taxonomy.categories[c].sub_reasons])
            for c in CATEGORIES
        }
        self._category_matrix = taxonomy.category_matrix()

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        threads: int = 2,
        max_chars: int = DEFAULT_MAX_CHARS,
        detect_language: bool = True,
        fast: bool = False,
        encoder: str | Path | None = None,
    ) -> ReasonClassifier:
        """A classifier from a model folder (None or "default" = the default model shipped in the package, "fast" = it
        without its transformer). `encoder` (a name or folder) replaces the folder's own encoder; it is the only way
        to use an encoder outside the model folder. Every failure to load is a ReasonClassifierError."""
        if str(path) == FAST:
            path, fast = None, True
        elif str(path) == "default":
            path = None
        files: ModelFiles = read_model_folder(path, encoder=encoder)
        carried = files.config.transformer or {}  # {} when the folder has no transformer
        transformer, weight, abstain_below = None, 0.0, files.config.abstain_below
        with _as_folder_error(files.path, "the transformer settings or files"):
            if carried and fast:
                abstain_below = carried["head_alone_abstain_below"]
            elif carried:
                transformer = TransformerScorer.load(files.path / carried["folder"], threads=threads)
                weight = carried["weight"]
        with _as_folder_error(files.path, f"the encoder {files.encoder_path}"):
            loaded_encoder = load_encoder(files.encoder_path, threads=threads)
        return cls(
            encoder=loaded_encoder,
            taxonomy=files.taxonomy,
            head=files.head,
            abstain_below=abstain_below,
            max_chars=max_chars,
            language_detector=default_detector() if detect_language else None,
            config=files.config,
            char_ngrams=files.char_ngrams,
            transformer=transformer,
            transformer_weight=weight,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, model: str | Path | None = None, encoder: str | Path | None = None
    ) -> ReasonClassifier:
        """The classifier the run-time settings describe (`Settings()`, i.e. the environment, when None): every
        command and the service load their model through here, so a `REASON_CLASSIFIER_*` setting means the same
        everywhere. `model` (a command's --model) takes the place of `settings.model` when given; `encoder` is
        `load`'s."""
        settings = (settings or Settings()).choosing_model(model)
        return cls.load(
            settings.model,
            threads=settings.threads,
            max_chars=settings.max_chars,
            detect_language=settings.detect_language,
            encoder=encoder,
        )

    def save(self, path: str | Path, metrics: dict | None = None, card: str = "") -> Path:
        """Write a model folder that `load` reads back into an identical classifier."""
        self.config.abstain_below = self.abstain_below
        encoder_folder = getattr(self.encoder, "folder", None)
        extra_files: dict[str, Path] = {}
        if encoder_folder is not None:
            self.config.encoder = ENCODER_FOLDER
            extra_files[ENCODER_FOLDER] = encoder_folder
        with tempfile.TemporaryDirectory(prefix="reason-classifier-transformer-") as staged:
            if self.transformer is not None:
                extra_files[TRANSFORMER_FOLDER] = self.transformer.save(Path(staged) / TRANSFORMER_FOLDER)
                self.config.transformer = {
                    **(self.config.transformer or {}),
                    "folder": TRANSFORMER_FOLDER,
                    "weight": self.transformer_weight,
                }
            return write_model_folder(
                path,
                self.config,
                self.taxonomy.to_yaml(),
                self.head,
                metrics,
                card,
                extra_files=extra_files or None,
                char_ngrams=self.char_ngrams,
            )

    @property
    def classes_(self) -> tuple[str, ...]:
        return CATEGORIES

    @property
    def version(self) -> str:
        """Name and head checksum; `+fast` when a model that carries a transformer is read without it."""
        reading = "+fast" if self.config.transformer and self.transformer is None else ""
        return f"{self.config.name}@{self.config.checksums.get('head.npz', 'unsaved')[:12]}{reading}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dimension) embeddings of `texts`."""
        return self.encoder.encode(texts)

    def features(self, texts: Sequence[str]) -> tuple[np.ndarray | sp.csr_matrix, ...]:
        """What the head reads, as column blocks side by side: the embeddings, then the hashed n-grams if the model uses
        them."""
        embeddings = self.embed(texts)
        return (embeddings, self.char_ngrams.transform(texts)) if self.char_ngrams else (embeddings,)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 5) category probabilities, columns in `classes_` order. Every text must be classifiable."""
        return self._probabilities(self._checked(texts))[0]

    def predict(self, texts: Sequence[object]) -> list[Prediction]:
        """One prediction per input, in order; unclassifiable inputs get `category='other'` and an `error`."""
        problems = [check_answer(text, self.max_chars) for text in texts]
        valid = [i for i, problem in enumerate(problems) if problem is None]
        valid_texts: list[str] = [texts[i] for i in valid]  # type: ignore[misc]
        category_p, sub_reason_p = self._probabilities(valid_texts)
        predictions: list[Prediction] = [
            Prediction(category=ABSTAIN_CATEGORY, sub_reason=None, confidence=None, error=problem)
            for problem in problems
        ]
        languages = self._languages(valid_texts)
        for row, i in enumerate(valid):
            predictions[i] = self._decide(category_p[row], sub_reason_p[row], languages[row])
        return predictions

    def _checked(self, texts: Sequence[object]) -> list[str]:
        for i, text in enumerate(texts):
            problem = check_answer(text, self.max_chars)
            if problem:
                raise ValueError(f"text {i}: {problem}")
        return list(texts)  # type: ignore[arg-type]

    def _probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(categories, sub-reasons) probabilities, the first summed from the second."""
        if not texts:
            return np.zeros((0, len(CATEGORIES))), np.zeros((0, len(self.taxonomy.sub_reason_names)))
        unique = list(dict.fromkeys(texts))  # exports repeat answers a lot: each distinct text is read once
        sub_reasons = self.head.predict_proba(*self.features(unique))
        if self.transformer is not None and self.transformer_weight > 0:
            w = self.transformer_weight
            sub_reasons = (1 - w) * sub_reasons + w * self.transformer.predict_proba(unique)
        if len(unique) != len(texts):
            row_of = {text: row for row, text in enumerate(unique)}
            sub_reasons = sub_reasons[[row_of[text] for text in texts]]
        return sub_reasons @ self._category_matrix, sub_reasons

    def _languages(self, texts: Sequence[str]) -> list[str | None]:
        if self.language_detector is None:
            return [None] * len(texts)
        return self.language_detector.detect_many(texts)

    def _decide(self, category_p: np.ndarray, sub_reason_p: np.ndarray, language: str | None) -> Prediction:
        best = int(category_p.argmax())
        category = CATEGORIES[best]
        confidence = float(category_p[best])
        abstained = category != ABSTAIN_CATEGORY and confidence < self.abstain_below
        if abstained:
            category, confidence = ABSTAIN_CATEGORY, 1.0 - confidence
        columns = self._sub_reason_columns[category]
        within = sub_reason_p[columns]
        within = within / max(within.sum(), 1e-12)
        pick = int(within.argmax())
        return Prediction(
            category=category,
            sub_reason=self.taxonomy.sub_reason_names[columns[pick]],
            confidence=round(confidence, 4),
            sub_reason_confidence=round(float(within[pick]), 4),
            scores={c: round(float(p), 4) for c, p in zip(CATEGORIES, category_p, strict=True)},
            abstained=abstained,
            language=language,
        )
