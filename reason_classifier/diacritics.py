"""Answers read the same with or without their diacritics.

Customers type on phones and foreign keyboards: "nie dziala" for "nie działa", "tres cher" for
"très cher", "Kundigung" for "Kündigung", and a model that only ever read diacritics misreads
them (measured in docs/model-history.md).
The character n-grams therefore read answers without diacritics, and the head is also fitted
on diacritic-free copies of training answers (their embeddings differ from the originals').
"""

from __future__ import annotations

import unicodedata

_NOT_DECOMPOSED = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE"}
)
"""Letters that carry a diacritic-like stroke or ligature but have no Unicode decomposition."""


def strip_diacritics(text: str) -> str:
    """`text` with accents, cedillas, ogoneks and strokes removed; scripts without them (Chinese) are unchanged.

    Canonical decomposition only (NFD), so full-width forms and other compatibility characters are kept.
    """
    decomposed = unicodedata.normalize("NFD", text.translate(_NOT_DECOMPOSED))
    if decomposed.isascii():
        return decomposed
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))
