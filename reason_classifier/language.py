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
    "en",
    "zh",
    "pl",
    "de",
    "es",
    "fr",
    "it",
    "pt",
    "nl",
    "ru",
    "uk",
    "cs",
    "sk",
    "sv",
    "da",
    "no",
    "fi",
    "tr",
    "ar",
    "he",
    "ja",
    "ko",
    "th",
    "vi",
    "id",
    "hu",
    "ro",
    "el",
    "bg",
    "hr",
    "sr",
)
MIN_CONFIDENCE = 0.3

# Frequent characters whose form differs between the scripts, as aligned pairs (们/們, 这/這, …).
_SIMPLIFIED = (
    "们这个来说时会对么后还没钱费价贵务体问题应为开关门样员买卖让给过从发现实简单错误场东车长网络币级单据总终"
    "预订阅话认识护顾与当机统脑电书图号处际层礼义难确议类击优达运选递边进连迟适钟银录锁闭间陆队随险杂鸡离灵"
    "页顺须领频显风飞饭馆马验发斗鱼鸟点齐齿龙业务经济觉试请谢该设计账户帐户数据输删载装线结红绿协议软硬坏换"
    "续订约费卡额扣缴户复杂难题联络态度处理慢员销售减预砍闭倒转换竞争对广告质量价值划算负担涨贵买单"
    "鲜讲两张挂讯诚气营审变暂荐较报税无旧厅谁产种认视专网吗"
)
_TRADITIONAL = (
    "們這個來說時會對麼後還沒錢費價貴務體問題應為開關門樣員買賣讓給過從發現實簡單錯誤場東車長網絡幣級單據總終"
    "預訂閱話認識護顧與當機統腦電書圖號處際層禮義難確議類擊優達運選遞邊進連遲適鐘銀錄鎖閉間陸隊隨險雜雞離靈"
    "頁順須領頻顯風飛飯館馬驗發鬥魚鳥點齊齒龍業務經濟覺試請謝該設計賬戶帳戶數據輸刪載裝線結紅綠協議軟硬壞換"
    "續訂約費卡額扣繳戶複雜難題聯絡態度處理慢員銷售減預砍閉倒轉換競爭對廣告質量價值劃算負擔漲貴買單"
    "鮮講兩張掛訊誠氣營審變暫薦較報稅無舊廳誰產種認視專網嗎"
)
# Written Cantonese (Hong Kong) is written in traditional characters.
_CANTONESE = set("嘅咗冇唔搵乜嘢啲喺嚟佢哋")
_SIMPLIFIED_ONLY = set(_SIMPLIFIED) - set(_TRADITIONAL)
_TRADITIONAL_ONLY = (set(_TRADITIONAL) - set(_SIMPLIFIED)) | _CANTONESE


class LanguageDetector:
    """Thread-safe wrapper of py3langid, restricted to `languages`."""

    def __init__(self, languages: Sequence[str] = LIKELY_LANGUAGES, min_confidence: float = MIN_CONFIDENCE) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self._identifier.set_languages(list(languages))
        self._min_confidence = min_confidence
        self._lock = threading.Lock()

    def detect(self, text: str) -> str | None:
        """A BCP-47 tag ('en', 'pl', 'zh-Hans', 'zh-Hant', 'zh'), or None when the text gives too little evidence."""
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
    """'zh-Hans' or 'zh-Hant' by the characters only one script has; plain 'zh' when the text does not tell."""
    simplified = sum(char in _SIMPLIFIED_ONLY for char in text)
    traditional = sum(char in _TRADITIONAL_ONLY for char in text)
    if simplified == traditional:
        return "zh"
    return "zh-Hant" if traditional > simplified else "zh-Hans"


@lru_cache(maxsize=1)
def default_detector() -> LanguageDetector:
    return LanguageDetector()
