"""Keywords that describe each cluster of answers, in whatever languages the answers are written.

Class-based TF-IDF (the BERTopic idea): all answers of a cluster are one document; a term scores
high when it is frequent in that cluster and rare across the others,
    score(t, c) = tf(t, c) / words(c) × log(1 + average words per cluster / frequency of t overall).

Tokens are found without a language model, so one function serves a mixed export:
- Chinese and Japanese have no spaces: runs of Han/kana characters become overlapping character
  bigrams (一个月 → 一个, 个月); a run of one character stays itself. Bigrams that contain a
  function character (的, 了, 是, …) are dropped.
- Other scripts are split into words, lower-cased; digits-only tokens are dropped.
- Inflection (Polish aplikacja/aplikacji/aplikację, English price/prices) is handled by counting
  words under their first five letters, then showing the form written most often in the cluster.
- Stop words: a short English list kept here (the ISO list drops words such as "problem",
  "value" and "free" that matter in churn answers) and the `stopwordsiso` lists for every other
  language, less a few words that carry a reason ("cher" is French for expensive).

The keywords stage of the discoverer is anything with `fit_transform(texts, labels)` returning
each label's keywords: `ClusterKeywords` (the default, the above), or `VectorizerKeywords` over any
scikit-learn vectorizer (BERTopic's `vectorizer_model`: `CountVectorizer(ngram_range=(1, 2))`, ...).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

STEM_LENGTH = 5

_NO_SPACE_SCRIPT = (
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
)
_LETTER = rf"[^\W\d_{_NO_SPACE_SCRIPT}]"
_TOKEN = re.compile(rf"([{_NO_SPACE_SCRIPT}]+)|({_LETTER}(?:{_LETTER}|\d|['’-](?={_LETTER}))*)", re.UNICODE)
_FUNCTION_CHARACTERS = set("的了是我你他她它们們在和就也都这這那吗嗎吧呢啊个個得地着著与與及或被把给給")

_ENGLISH = set(
    """a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
    few for from further had hadn't has hasn't have haven't having he her here hers herself him himself his how i i'm
    i've if in into is isn't it it's its itself just let's me more most my myself no nor not now of off on once only
    or other our ours ourselves out over own same she should shouldn't so some such than that that's the their theirs
    them themselves then there there's these they they're this those through to too under until up us very was wasn't
    we we're we've were weren't what when where which while who whom why will with won't would wouldn't you you're
    you've your yours yourself yourselves im ive dont didnt doesnt cant wont isnt wasnt thats theres youre etc really
    also got get gets even still one lot lots much many thing things bit see went ever since yet back way well
    anyway actually maybe though""".split()  # noqa: SIM905 - a word list reads as text, not as 200 quoted items
)
_KEEP = {
    "cher",
    "chère",
    "chers",
    "chères",
    "problème",
    "problèmes",
    "problema",
    "problemas",
    "problem",
    "problemy",
    "teuer",
    "caro",
    "cara",
    "drogo",
    "drogi",
    "drogie",
    "preis",
    "precio",
    "prix",
    "cena",
    "soporte",
    "support",
    "service",
    "servicio",
    "serwis",
    "obsługa",
    "kunden",
    "cliente",
    "client",
    "klient",
    "fehler",
    "error",
    "erreur",
    "błąd",
    "lento",
    "lent",
    "langsam",
    "wolno",
    "valeur",
    "valor",
    "wert",
    "gratis",
    "gratuit",
    "kostenlos",
    "darmowy",
}
_LANGUAGES = (
    "pl",
    "de",
    "es",
    "fr",
    "it",
    "pt",
    "nl",
    "sv",
    "da",
    "no",
    "fi",
    "cs",
    "sk",
    "ru",
    "uk",
    "tr",
    "zh",
    "ja",
    "ko",
)


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """English (kept here) plus the stopwordsiso lists of the other languages customers write in."""
    words = set(_ENGLISH)
    try:
        import stopwordsiso

        for language in _LANGUAGES:
            if stopwordsiso.has_lang(language):
                words |= {w.lower() for w in stopwordsiso.stopwords(language)}
    except ImportError:  # keywords still work, with English stop words only
        pass
    return frozenset(words - _KEEP)


def tokenize(text: str) -> list[tuple[str, str]]:
    """(key, surface form) pairs of `text`: stop words removed, words keyed by their first letters, CJK as bigrams."""
    stops = stop_words()
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(unicodedata.normalize("NFKC", text)):
        run, word = match.group(1), match.group(2)
        if run:
            grams = [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
            for gram in grams:
                if gram in stops or any(char in _FUNCTION_CHARACTERS for char in gram):
                    continue
                tokens.append((gram, gram))
        else:
            word = word.lower().replace("’", "'").removesuffix("'s")
            if len(word) < 2 or word in stops:
                continue
            tokens.append((word[:STEM_LENGTH] if len(word) > STEM_LENGTH else word, word))
    return tokens


def cluster_keywords(texts: Sequence[str], labels: Sequence[int] | np.ndarray, top_n: int = 10) -> dict[int, list[str]]:
    """The `top_n` most distinctive terms of every label in `labels` (noise, -1, included), best first.

    A term must occur in at least two answers of a cluster of five or more, so one long answer
    cannot fill a cluster's keywords. Raises ValueError when texts and labels differ in length.
    """
    if len(texts) != len(labels):
        raise ValueError(f"texts and labels differ in length ({len(texts)} and {len(labels)})")
    counts: dict[int, Counter] = defaultdict(Counter)
    answers_with: dict[int, Counter] = defaultdict(Counter)
    surfaces: dict[int, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    sizes: Counter = Counter()
    for text, label in zip(texts, labels, strict=True):
        label = int(label)
        sizes[label] += 1
        tokens = tokenize(text) if isinstance(text, str) else []
        for key, surface in tokens:
            counts[label][key] += 1
            surfaces[label][key][surface] += 1
        answers_with[label].update({key for key, _ in tokens})
    totals: Counter[str] = Counter()
    for counter in counts.values():
        totals.update(counter)
    words_per_cluster = {label: sum(counter.values()) for label, counter in counts.items()}
    average = sum(words_per_cluster.values()) / max(len(sizes), 1)

    keywords: dict[int, list[str]] = {}
    for label in sizes:
        counter = counts.get(label, Counter())
        if not counter:
            keywords[label] = []
            continue
        min_answers = 2 if sizes[label] >= 5 else 1
        scored = [
            (count / words_per_cluster[label] * math.log(1 + average / totals[key]), key)
            for key, count in counter.items()
            if answers_with[label][key] >= min_answers
        ]
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        keywords[label] = _distinct(surfaces[label][key].most_common(1)[0][0] for _, key in scored)[:top_n]
    return keywords


def _distinct(words: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(words))


class ClusterKeywords:
    """The default keywords stage: `cluster_keywords` with `top_n` keywords per cluster."""

    def __init__(self, top_n: int = 10) -> None:
        self.top_n = top_n

    def fit(self, texts: Sequence[str], labels: Sequence[int] | np.ndarray) -> ClusterKeywords:
        self.keywords_ = cluster_keywords(texts, labels, top_n=self.top_n)
        return self

    def fit_transform(self, texts: Sequence[str], labels: Sequence[int] | np.ndarray) -> dict[int, list[str]]:
        return self.fit(texts, labels).keywords_


class VectorizerKeywords:
    """Keywords from a scikit-learn vectorizer's terms, ranked by the same class-based TF-IDF.

    For exports in one language where a ready tokenizer, n-grams or a stop-word list serve better:
    `VectorizerKeywords(CountVectorizer(stop_words="english", ngram_range=(1, 2)))`. Terms absent
    from a cluster are never its keywords.
    """

    def __init__(self, vectorizer: Any, top_n: int = 10) -> None:
        self.vectorizer = vectorizer
        self.top_n = top_n

    def fit(self, texts: Sequence[str], labels: Sequence[int] | np.ndarray) -> VectorizerKeywords:
        if len(texts) != len(labels):
            raise ValueError(f"texts and labels differ in length ({len(texts)} and {len(labels)})")
        labels = np.asarray(labels, dtype=np.int64)
        self.keywords_: dict[int, list[str]] = {}
        if not len(texts):
            return self
        counts = self.vectorizer.fit_transform(list(texts))
        terms = np.asarray(self.vectorizer.get_feature_names_out())
        ids = list(dict.fromkeys(labels.tolist()))
        per_cluster = np.vstack([np.asarray(counts[labels == label].sum(axis=0)).ravel() for label in ids])
        words = per_cluster.sum(axis=1, keepdims=True)
        totals = per_cluster.sum(axis=0)
        average = words.sum() / len(ids)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = per_cluster / np.maximum(words, 1) * np.log(1 + average / np.maximum(totals, 1))
        for row, label in enumerate(ids):
            present = np.flatnonzero(per_cluster[row] > 0)
            order = present[np.lexsort((terms[present], -scores[row, present]))]
            self.keywords_[label] = [str(t) for t in terms[order[: self.top_n]]]
        return self

    def fit_transform(self, texts: Sequence[str], labels: Sequence[int] | np.ndarray) -> dict[int, list[str]]:
        return self.fit(texts, labels).keywords_
