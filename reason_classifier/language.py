"""Which language an answer is written in, for per-language reports and routing.

Survey answers are short, and a language identifier guessing among 140 languages labels
"Zu teuer" as Acehnese. Restricting it to languages customers plausibly write in, and saying
nothing below a minimum confidence, gives fewer but trustworthy labels. Chinese is split into
Simplified and Traditional by counting characters that exist in only one of the two scripts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache

LIKELY_LANGUAGES: tuple[str, ...] = (
    "en", "zh", "pl", "de", "es", "fr", "it", "pt", "nl", "ru", "uk", "cs", "sk", "sv", "da", "no",
    "fi", "tr", "ar", "he", "ja", "ko", "th", "vi", "id", "hu", "ro", "el", "bg", "hr", "sr",
)
MIN_CONFIDENCE = 0.3

# Frequent characters whose form differs between the scripts (e.g. 们/們, 这/這).
_SIMPLIFIED_ONLY = set("们这个来说时会对么后还没钱费价贵务体问题应为们开关门样员买卖让给过从发现实简单错误场东车长网络币级单据总终")
_TRADITIONAL_ONLY = set("們這個來說時會對麼後還沒錢費價貴務體問題應為們開關門樣員買賣讓給過從發現實簡單錯誤場東車長網絡幣級單據總終")


class LanguageDetector:
    """Thread-safe wrapper of py3langid, restricted to `languages`."""

    def __init__(self, languages: Sequence[str] = LIKELY_LANGUAGES, min_confidence: float = MIN_CONFIDENCE) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self._identifier.set_languages(list(languages))
        self._min_confidence = min_confidence
        self._lock = threading.Lock()

    def detect(self, text: str) -> str | None:
        """A BCP-47 tag ('en', 'pl', 'zh-Hans', 'zh-Hant'), or None when the text gives too little evidence."""
        with self._lock:
            language, confidence = self._identifier.classify(text)
        if confidence < self._min_confidence:
            return None
        if language == "zh":
            return chinese_script(text)
        return language

    def detect_many(self, texts: Sequence[str]) -> list[str | None]:
        return [self.detect(text) for text in texts]


def chinese_script(text: str) -> str:
    simplified = sum(char in _SIMPLIFIED_ONLY for char in text)
    traditional = sum(char in _TRADITIONAL_ONLY for char in text)
    return "zh-Hant" if traditional > simplified else "zh-Hans"


@lru_cache(maxsize=1)
def default_detector() -> LanguageDetector:
    return LanguageDetector()
