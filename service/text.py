"""Text that JSON allows but UTF-8 cannot hold: lone surrogates (`"\\ud800"`) are valid JSON escapes.

Such a string fails wherever it is encoded: in the model, in the database driver, in a report. The
answer text and the short fields are refused at the edge (422 naming the field); free-form
metadata is cleaned instead, since it only travels with the answer.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def unencodable_at(text: str) -> int | None:
    """The index of the first character UTF-8 cannot encode (a lone surrogate), or None."""
    found = _SURROGATE.search(text)
    return found.start() if found else None


def clean(value: Any) -> Any:
    """`value` (JSON data: dicts, lists, strings, numbers) with every lone surrogate, in keys and
    values, replaced by U+FFFD; strings without one are returned as they are."""
    if isinstance(value, str):
        return value if value.isascii() else _SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value
