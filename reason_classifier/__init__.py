"""reason-classifier: churn and cancellation survey answers in, reasons a business can act on out."""

from .classifier import Prediction, ReasonClassifier
from .encoders import Encoder, load_encoder
from .errors import EncoderError, InputError, ModelFolderError, ReasonClassifierError, TaxonomyError
from .taxonomy import CATEGORIES, Taxonomy

__version__ = "0.1.0"

__all__ = [
    "CATEGORIES",
    "Encoder",
    "EncoderError",
    "InputError",
    "ModelFolderError",
    "Prediction",
    "ReasonClassifier",
    "ReasonClassifierError",
    "Taxonomy",
    "TaxonomyError",
    "load_encoder",
]
