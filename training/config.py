"""Every knob of training in one typed config, saved inside the model folder it produced."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from reason_classifier.encoders import USE_MULTILINGUAL


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
    seed (int, 0): seed of every random choice, so a run is reproducible.
    """

    encoder: str = USE_MULTILINGUAL
    regularisation: float = 4.0
    balanced: bool = True
    abstain_below: float | None = None
    folds: int = 5
    calibrate: bool = True
    use_taxonomy_examples: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.regularisation > 0:
            raise ValueError(f"regularisation must be positive, got {self.regularisation!r}")
        if self.abstain_below is not None and not 0 <= self.abstain_below < 1:
            raise ValueError(f"abstain_below must be in [0, 1), got {self.abstain_below!r}")
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
