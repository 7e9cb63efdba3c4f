"""Deciding whether a raw value from an export or a request is an answer the model can classify.

Every entry point (batch files, the Python API, the service) goes through `check_answer`, so a
row that cannot be classified gets the same explanation wherever it came from.
"""

from __future__ import annotations

import math

DEFAULT_MAX_CHARS = 5000


class _Missing:
    """Marks a field a row does not have at all (a JSON object without the key), unlike an empty one."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING = _Missing()


def check_answer(value: object, max_chars: int = DEFAULT_MAX_CHARS) -> str | None:
    """None if `value` is classifiable text, else the reason it is not, phrased for the person reading the output."""
    if value is MISSING:
        return "no answer field in this row"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "empty answer"
    if not isinstance(value, str):
        return f"answer is not text ({type(value).__name__}: {value!r:.40})"
    if not value.strip():
        return "empty answer" if not value else "answer is only whitespace"
    if len(value) > max_chars:
        return f"answer too long ({len(value)} characters, limit {max_chars})"
    return None
