"""The head's character n-grams: scikit-learn's hashing and TF-IDF, row by row, at the configured weight."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

from reason_classifier.char_ngrams import CharNgrams

TEXTS = [
    "The price went up again",
    "",
    "  ",
    "za drogo, nie dziala",
    "价格太高了",
    "Preis zu hoch!!! 😀",
    "a",
    "aaaa aaaa aaaa",
]


def hashed(texts: list[str], norm: str | None) -> object:
    return HashingVectorizer(
        analyzer="char_wb", ngram_range=(2, 4), n_features=2**18, alternate_sign=False, norm=norm
    ).transform(texts)


def row_lengths(matrix) -> np.ndarray:
    return np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1))).ravel()


def test_without_idf_the_numbers_are_scikit_learns_hashing_vectorizer_times_the_weight():
    ngrams = CharNgrams(weight=3.0, ngram_range=(2, 4), n_features=2**18, sublinear_tf=False, fold_diacritics=False)
    reference = hashed(TEXTS, "l2") * 3.0
    got = ngrams.transform(TEXTS)
    assert got.shape == (len(TEXTS), 2**18) and got.dtype == np.float32 and got.nnz == reference.nnz
    np.testing.assert_allclose(
        got.toarray()[:, reference.indices], reference.toarray()[:, reference.indices], rtol=1e-6
    )
    np.testing.assert_allclose(
        row_lengths(got), [3.0 if reference[i].nnz else 0.0 for i in range(len(TEXTS))], rtol=1e-6
    )


def test_with_idf_the_numbers_are_scikit_learns_tfidf_of_the_hashed_counts():
    training = [
        "refund please",
        "the app crashes",
        "the price is too high",
        "too expensive for me",
        "support never answered",
    ]
    ngrams = CharNgrams(weight=4.0).fit(training)
    reference = TfidfTransformer(sublinear_tf=True).fit(hashed(training, None))
    unseen = np.bincount(hashed(training, None).indices, minlength=2**18) == 0
    np.testing.assert_allclose(ngrams.idf[~unseen], reference.idf_[~unseen], rtol=1e-6)
    assert np.all(ngrams.idf[unseen] == ngrams.idf.max())  # never-seen n-grams count as the rarest
    expected = reference.transform(hashed(TEXTS, None)) * 4.0
    got = ngrams.transform(TEXTS)
    np.testing.assert_allclose(got.toarray()[:, expected.indices], expected.toarray()[:, expected.indices], rtol=1e-5)
    assert got.nnz == expected.nnz


def test_rare_ngrams_outweigh_common_ones_and_repeats_are_dampened():
    ngrams = CharNgrams(weight=1.0, ngram_range=(4, 4), n_features=2**18).fit(
        ["the cat", "the dog", "the cow", "refund"]
    )
    row = ngrams.transform(["the refund"])
    the, refund = (ngrams.count([word]).indices for word in (" the", "fund"))
    assert row[0, refund[0]] > 1.5 * row[0, the[0]]
    once, thrice = ngrams.count(["abcd"]), ngrams.count(["abcd abcd abcd"])
    assert thrice.data.max() == 3 * once.data.max() and ngrams.weigh(thrice).data.max() == ngrams.weigh(once).data.max()
    assert thrice.data.max() == 3 * once.data.max()  # weigh leaves the counts as they were: training reuses them


def test_no_texts_give_no_rows_and_the_settings_round_trip():
    ngrams = CharNgrams(weight=2.0, ngram_range=(1, 3), n_features=1024).fit(["a b c", "d e"])
    assert ngrams.transform([]).shape == (0, 1024)
    assert CharNgrams.from_dict(ngrams.to_dict(), idf=ngrams.idf) == ngrams
    assert CharNgrams.from_dict(ngrams.to_dict()) != ngrams  # the IDF is part of what the head reads
    old_folder = {"weight": 3.0, "ngram_range": [2, 4], "n_features": 2**18}  # format 2: raw counts, no IDF
    assert CharNgrams.from_dict(old_folder) == CharNgrams(weight=3.0, sublinear_tf=False, fold_diacritics=False)


def test_answers_typed_without_diacritics_get_the_same_ngrams():
    folding, literal = CharNgrams().fit(TEXTS), CharNgrams(fold_diacritics=False).fit(TEXTS)
    with_marks = ["Nie działa, źle wycenione", "Très cher, résiliation", "Kündigung wegen Straße"]
    without = ["nie dziala, zle wycenione", "tres cher, resiliation", "kundigung wegen strasse"]
    assert (folding.transform(with_marks) != folding.transform(without)).nnz == 0
    assert (literal.transform(with_marks) != literal.transform(without)).nnz > 0
    untouched = ["The price went up again", "价格太高了"]
    assert (folding.count(untouched) != literal.count(untouched)).nnz == 0


@pytest.mark.parametrize(
    "bad", [{"weight": 0}, {"ngram_range": (3, 2)}, {"n_features": 0}, {"n_features": 8, "idf": np.ones(4)}]
)
def test_bad_settings_are_refused_with_the_value(bad):
    with pytest.raises(ValueError, match="char n-gram"):
        CharNgrams(**bad)
