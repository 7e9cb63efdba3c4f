"""Run-time settings of the library, in one place: defaults that work offline, overridable by environment.

Every setting reads `REASON_CLASSIFIER_<NAME>` from the environment (e.g. `REASON_CLASSIFIER_MODEL`
to point every command and the service at another model folder).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .answers import DEFAULT_MAX_CHARS

DEFAULT_CHUNK_ROWS = 2048


class Settings(BaseSettings):
    """model: a model folder (None = the default shipped in the package); threads: CPU threads for encoding;
    max_chars: longer answers are flagged, not classified; chunk_rows: rows per chunk when tagging files;
    detect_language: add the detected language to every prediction."""

    model_config = SettingsConfigDict(env_prefix="REASON_CLASSIFIER_", extra="ignore")

    model: str | None = None
    threads: int = Field(default=2, ge=1)
    max_chars: int = Field(default=DEFAULT_MAX_CHARS, ge=1)
    chunk_rows: int = Field(default=DEFAULT_CHUNK_ROWS, ge=1)
    detect_language: bool = True

    def choosing_model(self, model: str | Path | None) -> Settings:
        """These settings with a command's --model in place of theirs when one is given: the one rule for which
        model folder a run loads, local or on Ray."""
        return self if model is None else self.model_copy(update={"model": str(model)})
