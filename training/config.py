"""Every knob of training in one typed config, saved inside the model folder it produced."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from reason_classifier.config_files import read_yaml
from reason_classifier.encoders import USE_MULTILINGUAL
from reason_classifier.errors import ConfigError


@dataclass
class TrainingConfig:
    """How a model is trained.

    encoder (str, "use-multilingual-v3"): encoder name or local folder whose embeddings the heads read.
    regularisation (float, 4.0): inverse L2 strength (scikit-learn's C) of the logistic heads; higher fits harder.
    balanced (bool, True): weight classes inversely to their frequency, so rare reasons are not drowned out.
    abstain_below (float | None, None): category confidence under which the answer becomes `other`;
        None chooses it by cross-validation on the training data (never on the held-out data).
    folds (int, 5): cross-validation folds whose out-of-fold scores fit the temperature and `abstain_below`.
    calibrate (bool, True): fit a temperature so that confidence matches accuracy (temperature scaling).
    use_taxonomy_examples (bool, True): add the taxonomy's seed examples to the training data.
    char_ngram_weight (float, 4.0): weight of the IDF-weighted, hashed character n-grams read by the head
        beside the embedding (see `reason_classifier.char_ngrams`); 0 leaves them out.
    diacritic_free_copies (float, 0.5): share of the training answers with diacritics that the head also
        fits without them ("nie dziala" beside "nie działa"), as customers often type; each copy stays on its
        original's side of every cross-validation split. The encoder is fine-tuned on the answers as written.
    fine_tune_epochs (int, 2): epochs of fine-tuning the multilingual encoder's dense and convolution layers
        before the head is fitted; 0 keeps it frozen. Other encoders are always used frozen.
    fine_tune_learning_rate (float, 1e-4): AdamW learning rate of that fine-tuning.
    batch_size (int, 32): answers per fine-tuning step.
    seed (int, 0): seed of every random choice, so a run is reproducible.
    """

    encoder: str = USE_MULTILINGUAL
    regularisation: float = 4.0
    balanced: bool = True
    abstain_below: float | None = None
    folds: int = 5
    calibrate: bool = True
    use_taxonomy_examples: bool = True
    char_ngram_weight: float = 4.0
    diacritic_free_copies: float = 0.5
    fine_tune_epochs: int = 2
    fine_tune_learning_rate: float = 1e-4
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.regularisation > 0:
            raise ValueError(f"regularisation must be positive, got {self.regularisation!r}")
        if self.abstain_below is not None and not 0 <= self.abstain_below < 1:
            raise ValueError(f"abstain_below must be in [0, 1), got {self.abstain_below!r}")
        if self.fine_tune_epochs < 0 or self.batch_size < 1 or not self.fine_tune_learning_rate > 0:
            raise ValueError(
                f"fine_tune_epochs must be >= 0, batch_size >= 1 and fine_tune_learning_rate > 0; got "
                f"{self.fine_tune_epochs!r}, {self.batch_size!r}, {self.fine_tune_learning_rate!r}"
            )
        if self.char_ngram_weight < 0:
            raise ValueError(
                f"char_ngram_weight must be >= 0 (0 = no character n-grams), got {self.char_ngram_weight!r}"
            )
        if not 0 <= self.diacritic_free_copies <= 1:
            raise ValueError(f"diacritic_free_copies must be a share in [0, 1], got {self.diacritic_free_copies!r}")
        if self.folds < 2:
            raise ValueError(f"folds must be at least 2, got {self.folds!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> TrainingConfig:
        """The options of a YAML or JSON file (the defaults without one), with the `overrides` that are not None on
        top (a command's --base). A wrong option is a `ConfigError` naming the file, and the line for an unknown
        one."""
        document = (
            read_yaml(path, what="training config", expected="a mapping of option names to values", empty=True)
            if path is not None
            else None
        )
        from_file = dict(document.data) if document else {}
        known = {f.name for f in fields(cls)}
        for key in from_file:
            if key not in known and document is not None:
                raise ConfigError(
                    f"{document.where((key,))}: {key}: unknown training option; known: {', '.join(sorted(known))}"
                )
        try:
            return cls.from_dict({**from_file, **{k: v for k, v in overrides.items() if v is not None}})
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{document.source if document else 'training options'}: {error}") from None
