"""The Python API: consistency and persistence on the tiny test model; languages and abstention on the shipped one
(slow)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from reason_classifier.classifier import ReasonClassifier
from reason_classifier.errors import ModelFolderError
from reason_classifier.taxonomy import CATEGORIES

# One plain answer per category and language (written for this test, not taken from labels/).
ANSWERS = {
    "en": {
        "product": "The reporting module keeps crashing and we lose our work.",
        "pricing": "It costs far too much for what we get.",
        "support": "Your support team took two weeks to answer a simple ticket.",
        "market": "Our company is shutting down at the end of the month.",
    },
    "zh-Hans": {
        "product": "软件经常崩溃，数据还丢了。",
        "pricing": "价格太高了，性价比很低。",
        "support": "客服好几天都不回复，问题也没解决。",
        "market": "我们换成了竞争对手的产品，他们更便宜。",
    },
    "zh-Hant": {
        "product": "系統一直當機，根本沒辦法用。",
        "pricing": "月費太貴了，負擔不起。",
        "support": "客服態度很差，問題一直沒有處理。",
        "market": "公司預算被砍，只好停用所有訂閱。",
    },
    "pl": {
        "product": "Aplikacja ciągle się zawiesza i gubi dane.",
        "pricing": "Za drogo jak na to, co oferujecie.",
        "support": "Obsługa klienta w ogóle nie odpowiada na maile.",
        "market": "Przeszliśmy do konkurencji, która ma lepszą ofertę.",
    },
}
CASES = [(lang, category, text) for lang, answers in ANSWERS.items() for category, text in answers.items()]


@pytest.mark.slow
@pytest.mark.parametrize(("language", "category", "text"), CASES, ids=[f"{language}-{c}" for language, c, _ in CASES])
def test_predicts_each_category_in_english_chinese_and_polish(classifier, language, category, text):
    prediction = classifier.predict([text])[0]
    assert prediction.category == category, prediction
    assert prediction.language == language
    assert classifier.taxonomy.category_of(prediction.sub_reason) == category
    assert 0 < prediction.confidence <= 1 and prediction.error is None


def test_scores_are_a_distribution_and_sub_reason_never_contradicts_category(tiny_classifier):
    texts = [text for _, _, text in CASES] + ["hmm", "asdfghjkl", "price", "ok thanks bye"]
    for prediction in tiny_classifier.predict(texts):
        assert list(prediction.scores) == list(CATEGORIES)
        assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=1e-3)
        assert tiny_classifier.taxonomy.category_of(prediction.sub_reason) == prediction.category
        assert 0 <= prediction.sub_reason_confidence <= 1


@pytest.mark.slow
@pytest.mark.parametrize("text", ["asdfghjkl qwerty", "n/a", "😀", "12345", "-", "nice weather today"])
def test_abstains_on_non_answers(classifier, text):
    assert classifier.predict([text])[0].category == "other"


def test_unclassifiable_inputs_are_flagged_in_place(tiny_classifier):
    predictions = tiny_classifier.predict(["too expensive", "", None, 42, "x" * (tiny_classifier.max_chars + 1), "   "])
    assert [p.error for p in predictions] == [
        None,
        "empty answer",
        "empty answer",
        "answer is not text (int: 42)",
        f"answer too long ({tiny_classifier.max_chars + 1} characters, limit {tiny_classifier.max_chars})",
        "answer is only whitespace",
    ]
    assert all(p.category == "other" and p.confidence is None for p in predictions[1:])
    with pytest.raises(ValueError, match="text 1: empty answer"):
        tiny_classifier.predict_proba(["fine", ""])


def test_duplicates_are_encoded_once_and_answered_identically(tiny_classifier):
    probabilities = tiny_classifier.predict_proba(["too expensive", "support is slow", "too expensive"])
    assert probabilities.shape == (3, len(CATEGORIES))
    np.testing.assert_array_equal(probabilities[0], probabilities[2])


@pytest.mark.parametrize("model", ["tiny_classifier", pytest.param("classifier", marks=pytest.mark.slow)])
def test_save_and_load_give_identical_predictions(model, request, tmp_path):
    classifier = request.getfixturevalue(model)  # the shipped model also saves its encoder and transformer
    classifier.save(tmp_path / "copy")
    again = ReasonClassifier.load(tmp_path / "copy")
    texts = [text for _, _, text in CASES]
    np.testing.assert_allclose(again.predict_proba(texts), classifier.predict_proba(texts), rtol=1e-6)
    assert again.abstain_below == classifier.abstain_below


@pytest.fixture()
def model_copy(tiny_model, tmp_path):
    return shutil.copytree(tiny_model, tmp_path / "model")


def test_missing_file_is_named(model_copy):
    (model_copy / "head.npz").unlink()
    with pytest.raises(ModelFolderError, match="incomplete: missing head.npz"):
        ReasonClassifier.load(model_copy)


def test_damaged_weights_fail_the_checksum(model_copy):
    data = bytearray((model_copy / "head.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_copy / "head.npz").write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match="head.npz does not match the checksum"):
        ReasonClassifier.load(model_copy)


def test_other_format_version_is_refused(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    config["format_version"] = 99
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ModelFolderError, match="format version 99; this version of reason-classifier reads versions 1, 2"
    ):
        ReasonClassifier.load(model_copy)


def test_broken_config_and_missing_folder(model_copy, tmp_path):
    (model_copy / "config.json").write_text("{broken")
    with pytest.raises(ModelFolderError, match="config.json is not valid JSON"):
        ReasonClassifier.load(model_copy)
    with pytest.raises(ModelFolderError, match="does not exist"):
        ReasonClassifier.load(tmp_path / "nowhere")


def test_from_settings_reads_the_environment_and_a_named_model_takes_the_place_of_its_model(
    monkeypatch, tmp_path, tiny_model
):
    monkeypatch.setenv("REASON_CLASSIFIER_MAX_CHARS", "40")
    monkeypatch.setenv("REASON_CLASSIFIER_DETECT_LANGUAGE", "false")
    monkeypatch.setenv("REASON_CLASSIFIER_MODEL", str(tmp_path / "missing"))
    classifier = ReasonClassifier.from_settings(model=tiny_model)
    assert classifier.max_chars == 40 and classifier.language_detector is None and classifier.version.startswith("tiny")
    assert classifier.predict(["x" * 41])[0].error == "answer too long (41 characters, limit 40)"
    with pytest.raises(ModelFolderError, match="missing"):
        ReasonClassifier.from_settings()


def test_ray_actors_load_their_model_through_the_same_settings_as_the_local_engine(monkeypatch, tiny_model):
    from reason_classifier.config import Settings
    from reason_classifier.ray_tagging import ChunkTagger, RayTagOptions

    monkeypatch.setenv("REASON_CLASSIFIER_MAX_CHARS", "40")
    monkeypatch.setenv("REASON_CLASSIFIER_DETECT_LANGUAGE", "false")
    monkeypatch.setenv("REASON_CLASSIFIER_MODEL", str(tiny_model))
    settings = Settings()
    assert settings.choosing_model(None) is settings and settings.choosing_model("fast").model == "fast"
    options = RayTagOptions.from_settings(settings, "answer", output_format="jsonl")
    assert (options.model, options.max_chars, options.detect_language) == (str(tiny_model), 40, False)
    assert options.output_format == "jsonl" and options.chunk_rows == settings.chunk_rows
    # An actor may run on another machine with another environment: it loads what the options say.
    monkeypatch.setenv("REASON_CLASSIFIER_MAX_CHARS", "99")
    monkeypatch.delenv("REASON_CLASSIFIER_MODEL")
    assert options.actor_settings() == Settings(
        model=str(tiny_model), threads=1, max_chars=40, chunk_rows=settings.chunk_rows, detect_language=False
    )
    actor = ChunkTagger(options, []).classifier
    assert actor.max_chars == 40 and actor.language_detector is None and actor.version.startswith("tiny")
