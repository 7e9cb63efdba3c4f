"""The head's character n-grams: scikit-learn's hashing, row by row, at the configured weight."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer

from reason_classifier.char_ngrams import CharNgrams

TEXTS = ["The price went up again", "", "  ", "za drogo, nie dziala", "价格太高了", "Preis zu hoch!!! 😀", "a"]


def test_same_numbers_as_scikit_learns_hashing_vectorizer_times_the_weight():
    ngrams = CharNgrams(weight=3.0, ngram_range=(2, 4), n_features=2**18)
    reference = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=2**18,
                                  alternate_sign=False, norm="l2").transform(TEXTS) * 3.0
    got = ngrams.transform(TEXTS)
    assert got.shape == (len(TEXTS), 2**18) and got.dtype == np.float32
    np.testing.assert_allclose(got.toarray()[:, reference.indices], reference.toarray()[:, reference.indices], rtol=1e-6)
    assert got.nnz == reference.nnz
    lengths = np.sqrt(np.asarray(got.multiply(got).sum(axis=1))).ravel()
    np.testing.assert_allclose(lengths, [3.0 if reference[i].nnz else 0.0 for i in range(len(TEXTS))], rtol=1e-6)


def test_no_texts_give_no_rows_and_the_config_round_trips():
    ngrams = CharNgrams(weight=2.0, ngram_range=(1, 3), n_features=1024)
    assert ngrams.transform([]).shape == (0, 1024)
    assert CharNgrams.from_dict(ngrams.to_dict()) == ngrams


@pytest.mark.parametrize("bad", [{"weight": 0}, {"ngram_range": (3, 2)}, {"n_features": 0}])
def test_bad_settings_are_refused_with_the_value(bad):
    with pytest.raises(ValueError, match="char n-grams need"):
        CharNgrams(**bad)
