"""Training end to end on tiny data, the shipped corpus's hygiene, and the default model's provenance."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from reason_classifier.char_ngrams import CharNgrams
from reason_classifier.classifier import ReasonClassifier
from reason_classifier.errors import InputError
from reason_classifier.model_folder import DEFAULT_MODEL_PATH, read_model_folder
from reason_classifier.progress import ProgressEvent
from reason_classifier.taxonomy import Taxonomy
from reason_classifier.training.config import TrainingConfig
from reason_classifier.training.corpus import HELDOUT_PATH, TAXONOMY_PATH, default_training_set, read_labelled
from reason_classifier.training.train import cross_validated_logits, diacritic_free_copies, train

TINY = [
    ("way too expensive", "pricing", "too_expensive"),
    ("the price is too high for us", "pricing", "too_expensive"),
    ("they doubled the price", "pricing", "price_increase"),
    ("the app crashes all the time", "product", "bugs_performance"),
    ("it is so slow and buggy", "product", "bugs_performance"),
    ("support never replies", "support", "slow_response"),
    ("nobody answered my ticket for weeks", "support", "slow_response"),
    ("we moved to a competitor", "market", "switched_competitor"),
    ("our company closed", "market", "needs_changed"),
    ("asdf", "other", "unclear"),
    ("n/a", "other", "unclear"),
]


def write_labelled(path, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "category", "sub_reason", "lang"])
        writer.writerows([(*row, "en") for row in rows])


def assert_every_stage_reported_with_counts(events: list[ProgressEvent], rows: int) -> None:
    """Issue 15: a bar stood at `training 0/?` for the first minute, and fine-tuning spoke once an epoch."""
    assert all(event.total is not None and 0 <= event.done <= event.total for event in events)
    tuning = [e for e in events if e.stage == "cross-validation fold 1: fine-tuning epoch 1/2"]
    assert len(tuning) > 1 and [e.done for e in tuning] == sorted(e.done for e in tuning)
    assert tuning[-1].done == tuning[-1].total and {e.loss_name for e in tuning} == {"training loss"}
    assert all(e.loss is not None and e.loss > 0 for e in tuning)
    assert ProgressEvent("cross-validation fold 2: encoding", rows, rows) in events
    assert ProgressEvent("final model: encoding", rows, rows) in events
    folds = [e for e in events if e.stage == "cross-validation"]
    assert [(e.done, e.total, e.loss_name) for e in folds] == [(1, 2, "validation loss"), (2, 2, "validation loss")]
    assert [e.stage for e in events[-4:]] == ["calibrating", "calibrating", "fitting the head", "fitting the head"]
    assert events[-1] == ProgressEvent("fitting the head", 1, 1)


@pytest.mark.slow  # fine-tunes the multilingual encoder and fits 2^18 n-gram columns: a minute
def test_train_on_a_tiny_set_saves_a_folder_that_loads_and_predicts_identically(tmp_path):
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    write_labelled(tmp_path / "tiny.csv", TINY)
    data = read_labelled(tmp_path / "tiny.csv", taxonomy)
    config = TrainingConfig(use_taxonomy_examples=False, folds=2, abstain_below=0.3, batch_size=4)
    events: list[ProgressEvent] = []
    classifier, summary = train(data, taxonomy, config, name="tiny", on_progress=events.append)
    assert summary["rows"] == len(TINY) and summary["config"]["abstain_below"] == 0.3
    assert_every_stage_reported_with_counts(events, rows=len(TINY))  # English answers: no diacritic-free copies
    classifier.save(tmp_path / "model")
    loaded = ReasonClassifier.load(tmp_path / "model")
    texts = ["too pricey", "it keeps crashing", "no reply from support"]
    np.testing.assert_allclose(loaded.predict_proba(texts), classifier.predict_proba(texts), rtol=1e-6)
    assert [p.category for p in loaded.predict(texts)] == [p.category for p in classifier.predict(texts)]
    assert loaded.config.training["data_fingerprint"] == data.fingerprint()
    assert loaded.config.training["encoder_fine_tuned"] and (tmp_path / "model" / "encoder" / "use_dense.npz").is_file()
    assert loaded.char_ngrams == classifier.char_ngrams and loaded.head.dimension == 512 + loaded.char_ngrams.n_features
    assert loaded.char_ngrams.idf is not None and (tmp_path / "model" / "char_ngrams.npz").is_file()


def test_a_format_2_folder_reads_raw_ngram_counts_without_idf_as_it_was_written(tmp_path):
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    write_labelled(tmp_path / "tiny.csv", TINY)
    data = read_labelled(tmp_path / "tiny.csv", taxonomy)
    classifier, _ = train(
        data, taxonomy, TrainingConfig(use_taxonomy_examples=False, folds=2, fine_tune_epochs=0), name="v3"
    )
    classifier.save(tmp_path / "model")
    settings = json.loads((tmp_path / "model" / "config.json").read_text())
    del (
        settings["char_ngrams"]["sublinear_tf"],
        settings["char_ngrams"]["fold_diacritics"],
        settings["checksums"]["char_ngrams.npz"],
    )
    settings["format_version"] = 2
    (tmp_path / "model" / "config.json").write_text(json.dumps(settings))
    (tmp_path / "model" / "SHA256SUMS").unlink()  # as written before format 6
    (tmp_path / "model" / "char_ngrams.npz").unlink()
    loaded = ReasonClassifier.load(tmp_path / "model")
    as_written_ngrams = CharNgrams(weight=classifier.char_ngrams.weight, sublinear_tf=False, fold_diacritics=False)
    assert loaded.char_ngrams == as_written_ngrams
    as_written = ReasonClassifier(
        classifier.encoder, taxonomy, classifier.head, classifier.abstain_below, char_ngrams=as_written_ngrams
    )
    texts = ["too pricey", "it keeps crashing"]
    np.testing.assert_allclose(loaded.predict_proba(texts), as_written.predict_proba(texts), rtol=1e-6)


def test_without_char_ngrams_the_head_reads_the_embedding_alone_and_old_folders_still_load(tmp_path):
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    write_labelled(tmp_path / "tiny.csv", TINY)
    data = read_labelled(tmp_path / "tiny.csv", taxonomy)
    config = TrainingConfig(use_taxonomy_examples=False, folds=2, fine_tune_epochs=0, char_ngram_weight=0)
    classifier, _ = train(data, taxonomy, config, name="plain")
    assert classifier.char_ngrams is None and classifier.head.dimension == 512
    classifier.save(tmp_path / "model")
    settings = json.loads((tmp_path / "model" / "config.json").read_text())
    assert settings["char_ngrams"] is None
    del settings["char_ngrams"]
    settings["format_version"] = 1  # as written before n-grams existed
    (tmp_path / "model" / "config.json").write_text(json.dumps(settings))
    (tmp_path / "model" / "SHA256SUMS").unlink()
    texts = ["too pricey", "it keeps crashing"]
    np.testing.assert_allclose(
        ReasonClassifier.load(tmp_path / "model").predict_proba(texts), classifier.predict_proba(texts), rtol=1e-6
    )


@pytest.mark.slow  # trains the default recipe twice
def test_training_is_reproducible(tmp_path):
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    write_labelled(tmp_path / "tiny.csv", TINY)
    data = read_labelled(tmp_path / "tiny.csv", taxonomy)
    config = TrainingConfig(use_taxonomy_examples=False, folds=2)
    first, _ = train(data, taxonomy, config)
    second, _ = train(data, taxonomy, config)
    np.testing.assert_array_equal(first.head.coef, second.head.coef)
    assert first.abstain_below == second.abstain_below


def test_bad_labels_name_the_file_and_row(tmp_path):
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    write_labelled(tmp_path / "bad.csv", [TINY[0], ("it is slow", "product", "slow_response")])
    with pytest.raises(InputError, match=r"bad.csv, row 2: sub-reason 'slow_response' is not under category 'product'"):
        read_labelled(tmp_path / "bad.csv", taxonomy)
    write_labelled(tmp_path / "bad.csv", [("hello", "feelings", "")])
    with pytest.raises(InputError, match=r"row 1: unknown category 'feelings'"):
        read_labelled(tmp_path / "bad.csv", taxonomy)


def test_invalid_training_options_are_refused_with_the_value():
    with pytest.raises(ValueError, match="regularisation must be positive, got -1"):
        TrainingConfig(regularisation=-1)
    with pytest.raises(ValueError, match=r"diacritic_free_copies must be a share in \[0, 1\], got 1.5"):
        TrainingConfig(diacritic_free_copies=1.5)
    with pytest.raises(ValueError, match="unknown training option"):
        TrainingConfig.from_dict({"learning_rate": 0.1})


def _normalised(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum()) or text.strip()


def test_heldout_answers_never_appear_in_training_data():
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    seen = {_normalised(t) for t in default_training_set(taxonomy).texts}
    leaked = [t for t in read_labelled(HELDOUT_PATH, taxonomy).texts if _normalised(t) in seen]
    assert leaked == []


def test_shipped_default_model_was_built_from_the_current_corpus_and_taxonomy():
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    shipped = read_model_folder(DEFAULT_MODEL_PATH)  # its files, checked, without loading the encoders
    assert shipped.taxonomy == taxonomy, (
        "labels/taxonomy.yaml changed: run python -m reason_classifier.training.build_default"
    )
    expected = default_training_set(taxonomy).fingerprint()
    assert shipped.config.training["data_fingerprint"] == expected, "labels/train changed: rebuild the default model"


@pytest.mark.slow
def test_shipped_default_model_meets_the_quality_targets_on_the_heldout_split():
    """A regression guard: the held-out split is never trained or tuned on, so this can only fail if the model got
    worse."""
    from reason_classifier.training.evaluate import evaluate

    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    metrics = evaluate(ReasonClassifier.load(), read_labelled(HELDOUT_PATH, taxonomy), "labels/heldout")
    assert metrics["macro_f1"] >= 0.92
    english = metrics["per_language"]["en"]["macro_f1"]
    # A language with under 150 held-out answers (the eight of round k have 60 to 76) moves by a point or two per
    # answer, so it is held to 10 points; the languages with about 200 answers are held to 5.
    behind = {
        lang: m["macro_f1"]
        for lang, m in metrics["per_language"].items()
        if m["macro_f1"] < english - (0.05 if m["rows"] >= 150 else 0.10)
    }
    assert not behind, f"languages too far below English ({english:.3f}): {behind}"
    assert metrics["calibration"]["ece"] <= 0.05


def test_torch_port_of_the_multilingual_encoder_matches_the_numpy_one(tmp_path):
    import torch

    from reason_classifier.encoders import USE_MULTILINGUAL, load_encoder
    from reason_classifier.training.finetune_use import TorchUSE

    texts = ["too expensive", "客服一直不回覆，等了兩個禮拜", "Aplikacja ciągle się zawiesza", "a"]
    port = TorchUSE()
    with torch.no_grad():
        ported = port(port.tokenize(texts)).numpy()
    np.testing.assert_allclose(ported, load_encoder(USE_MULTILINGUAL).encode(texts), atol=1e-5)
    with torch.no_grad():
        port.weights["d3"].mul_(0.5)  # any change must reach the numpy backend through the saved folder
        changed = port(port.tokenize(texts)).numpy()
    served = load_encoder(str(port.save(tmp_path / "encoder"))).encode(texts)
    np.testing.assert_allclose(served, changed, atol=2e-3)


def test_diacritic_free_copies_are_seeded_and_only_of_answers_that_change():
    texts = ["za drogo", "aplikacja nie działa", "très cher", "太贵了", "Kündigung", "ça plante"]
    rows, copies = diacritic_free_copies(texts, 1.0, seed=0)
    assert rows.tolist() == [1, 2, 4, 5] and copies == ["aplikacja nie dziala", "tres cher", "Kundigung", "ca plante"]
    half = diacritic_free_copies(texts, 0.5, seed=3)
    assert half[0].tolist() == diacritic_free_copies(texts, 0.5, seed=3)[0].tolist()
    assert set(half[0]) <= set(rows) and diacritic_free_copies(texts, 0.0, seed=0)[1] == []


def test_a_copy_is_fitted_only_in_the_folds_that_fit_its_original():
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    answers = [text for text, _, _ in TINY] * 2
    labels = [sub for _, _, sub in TINY] * 2
    copied_from = np.array([0, 3, 5, 12])
    seen = []

    def embed(rows: np.ndarray) -> np.ndarray:
        seen.append(rows)
        return np.eye(len(answers) + len(copied_from))

    logits = cross_validated_logits(
        embed, labels + [labels[row] for row in copied_from], taxonomy, TrainingConfig(folds=2), copied_from=copied_from
    )
    assert logits.shape == (len(answers), len(taxonomy.sub_reason_names)) and len(seen) == 2
    for rows in seen:
        originals, copies = rows[rows < len(answers)], rows[rows >= len(answers)] - len(answers)
        assert sorted(copies) == [i for i, row in enumerate(copied_from) if row in originals]
    assert sorted(np.concatenate([rows[rows < len(answers)] for rows in seen])) == list(range(len(answers)))


def test_training_config_file_with_overrides_and_its_mistakes_named_with_file_and_line(tmp_path):
    from reason_classifier.errors import ConfigError

    good = tmp_path / "train.yaml"
    good.write_text("folds: 3\nseed: 7\n", encoding="utf-8")
    config = TrainingConfig.load(good, encoder="all-MiniLM-L6-v2", seed=None)
    assert (config.folds, config.seed, config.encoder) == (3, 7, "all-MiniLM-L6-v2")
    assert TrainingConfig.load() == TrainingConfig()
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("folds: 3\nfold: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown\.yaml, line 2: fold: unknown training option"):
        TrainingConfig.load(unknown)
    bad = tmp_path / "bad.json"
    bad.write_text('{"folds": 1}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.json: folds must be at least 2"):
        TrainingConfig.load(bad)
