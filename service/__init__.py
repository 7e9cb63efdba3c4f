"""The HTTP service of reason-classifier: `create_app()` builds the FastAPI app; `reason-classifier serve` runs it."""

from .app import create_app
from .settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
