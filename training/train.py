"""Training a reason classifier: fine-tuned encoder, a logistic head over sub-reasons, abstention chosen by
cross-validation."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from reason_classifier.char_ngrams import CharNgrams
from reason_classifier.classifier import ReasonClassifier
from reason_classifier.diacritics import strip_diacritics
from reason_classifier.encoders import USE_MULTILINGUAL, Encoder, load_encoder
from reason_classifier.errors import InputError
from reason_classifier.heads import LinearHead
from reason_classifier.language import default_detector
from reason_classifier.model_folder import ModelConfig
from reason_classifier.progress import ProgressCallback, ProgressEvent
from reason_classifier.taxonomy import ABSTAIN_CATEGORY, CATEGORIES, Taxonomy

from .calibration import category_probabilities, expected_calibration_error, fit_temperature
from .config import TrainingConfig
from .corpus import LabelledSet, default_taxonomy_path, read_labelled, split_heldout, taxonomy_examples
from .evaluate import evaluate
from .finetune_use import TorchUSE, fine_tune
from .model_card import model_card

THRESHOLD_GRID = np.round(np.arange(0.0, 0.81, 0.05), 2)
ENCODING_BATCH = 1024
"""Answers encoded between two progress reports."""


def fit_head(
    embeddings: np.ndarray | sp.spmatrix, labels: Sequence[str], classes: Sequence[str], config: TrainingConfig
) -> LinearHead:
    """A logistic head over `classes`; a class with no training row gets weights that never win."""
    present = sorted(set(labels))
    coef = np.zeros((len(classes), embeddings.shape[1]), dtype=np.float32)
    intercept = np.full(len(classes), -30.0, dtype=np.float32)
    if len(present) == 1:  # scikit-learn refuses a single class; make it always win
        intercept[list(classes).index(present[0])] = 0.0
        return LinearHead(tuple(classes), coef, intercept)
    model = LogisticRegression(
        C=config.regularisation,
        class_weight="balanced" if config.balanced else None,
        max_iter=3000,
        random_state=config.seed,
    )
    model.fit(embeddings, list(labels))
    learned_coef, learned_intercept = model.coef_, model.intercept_
    if len(present) == 2:  # scikit-learn keeps one row for two classes: spread it as a two-way softmax
        learned_coef = np.vstack([-model.coef_[0] / 2, model.coef_[0] / 2])
        learned_intercept = np.array([-model.intercept_[0] / 2, model.intercept_[0] / 2])
    for row, name in enumerate(model.classes_):
        coef[list(classes).index(name)] = learned_coef[row]
        intercept[list(classes).index(name)] = learned_intercept[row]
    return LinearHead(tuple(classes), coef, intercept)


EmbedAfterFitting = Callable[[np.ndarray], np.ndarray]
"""embed(train_rows) -> the head's input for every row (embeddings, then any n-grams), from an encoder that
has seen (been fine-tuned on) only `train_rows`."""


def cross_validated_logits(
    embed: EmbedAfterFitting,
    sub_reasons: Sequence[str],
    taxonomy: Taxonomy,
    config: TrainingConfig,
    on_progress: ProgressCallback | None = None,
    copied_from: np.ndarray | None = None,
) -> np.ndarray:
    """Out-of-fold head scores for every training row: what the model says about answers it has not seen.

    When the encoder is fine-tuned, each fold fine-tunes its own copy on the fold's training rows,
    so the scores are as honest as for frozen embeddings. Rows after the answers are copies of the
    answers `copied_from` names; a copy is fitted only in the folds that fit its original.
    """
    copied_from = np.zeros(0, dtype=int) if copied_from is None else copied_from
    labels = np.array(sub_reasons)
    answers = len(labels) - len(copied_from)
    n_folds = min(config.folds, _smallest_class(labels[:answers]))
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=config.seed)
    logits = np.zeros((answers, len(taxonomy.sub_reason_names)))
    truth = np.array([taxonomy.sub_reason_names.index(s) for s in labels[:answers]])
    for fold, (train_rows, test_rows) in enumerate(folds.split(np.zeros(answers), labels[:answers]), 1):
        fitted_rows = np.concatenate([train_rows, answers + np.flatnonzero(np.isin(copied_from, train_rows))])
        embeddings = embed(fitted_rows)
        head = fit_head(embeddings[fitted_rows], labels[fitted_rows], taxonomy.sub_reason_names, config)
        logits[test_rows] = head.logits(embeddings[test_rows])
        if on_progress:
            probabilities = head.predict_proba(embeddings[test_rows])[np.arange(len(test_rows)), truth[test_rows]]
            loss = float(-np.log(np.clip(probabilities, 1e-12, None)).mean())
            on_progress(ProgressEvent("cross-validation", fold, n_folds, loss))
    return logits


def diacritic_free_copies(texts: Sequence[str], share: float, seed: int) -> tuple[np.ndarray, list[str]]:
    """(the row each copy comes from, the copies): a seeded `share` of the answers that change without their
    diacritics."""
    random = np.random.default_rng(seed)
    rows, copies = [], []
    for row, text in enumerate(texts):
        plain = strip_diacritics(text)
        if plain != text and random.random() < share:
            rows.append(row)
            copies.append(plain)
    return np.array(rows, dtype=int), copies


def calibrate(logits: np.ndarray, categories: Sequence[str], taxonomy: Taxonomy, config: TrainingConfig) -> dict:
    """Temperature and abstention threshold from out-of-fold scores, with the curves that justify them."""
    matrix = taxonomy.category_matrix()
    truth = np.array([CATEGORIES.index(c) for c in categories])
    temperature = fit_temperature(logits, matrix, truth) if config.calibrate else 1.0
    before = category_probabilities(logits, matrix)
    after = category_probabilities(logits, matrix, temperature)
    best = after.argmax(axis=1)
    top = after.max(axis=1)
    names = np.array(CATEGORIES)
    curve = abstention_curve(after, truth)
    abstain_below = config.abstain_below if config.abstain_below is not None else best_threshold(curve)
    return {
        "temperature": temperature,
        "abstain_below": abstain_below,
        "ece_cv_before": expected_calibration_error(before.max(axis=1), before.argmax(axis=1) == truth),
        "ece_cv_after": expected_calibration_error(top, best == truth),
        "macro_f1_cv": float(f1_score(names[truth], names[best], average="macro")),
        "abstention_curve_cv": curve,
    }


def abstention_curve(categories: np.ndarray, truth: np.ndarray) -> list[dict[str, Any]]:
    """For each threshold of THRESHOLD_GRID: macro-F1 (over the categories `truth` has), coverage and accuracy when
    answers whose best category `categories` (n, 5) is below it become `other`."""
    names = np.array(CATEGORIES)
    best, top = categories.argmax(axis=1), categories.max(axis=1)
    labels = sorted(set(names[truth]))
    curve: list[dict[str, Any]] = []
    for threshold in THRESHOLD_GRID:
        predicted = np.where((top < threshold) & (names[best] != ABSTAIN_CATEGORY), ABSTAIN_CATEGORY, names[best])
        covered = predicted != ABSTAIN_CATEGORY
        curve.append(
            {
                "threshold": float(threshold),
                "macro_f1": float(f1_score(names[truth], predicted, average="macro", labels=labels)),
                "coverage": float(covered.mean()),
                "accuracy_when_covered": float((predicted[covered] == names[truth][covered]).mean())
                if covered.any()
                else None,
            }
        )
    return curve


def best_threshold(curve: list[dict[str, Any]]) -> float:
    """The threshold with the best macro-F1 to three decimals; of equals, the highest (it abstains most honestly)."""
    return float(max(curve, key=lambda point: (round(point["macro_f1"], 3), point["threshold"]))["threshold"])


def train(
    data: LabelledSet,
    taxonomy: Taxonomy,
    config: TrainingConfig | None = None,
    name: str = "reason-classifier",
    threads: int = 2,
    on_progress: ProgressCallback | None = None,
) -> tuple[ReasonClassifier, dict]:
    """A classifier fitted on `data` (plus the taxonomy's seed examples if configured), and what was learnt about it."""
    classifier, summary, _ = train_with_out_of_fold(data, taxonomy, config, name, threads, on_progress)
    return classifier, summary


def train_with_out_of_fold(
    data: LabelledSet,
    taxonomy: Taxonomy,
    config: TrainingConfig | None = None,
    name: str = "reason-classifier",
    threads: int = 2,
    on_progress: ProgressCallback | None = None,
) -> tuple[ReasonClassifier, dict, np.ndarray]:
    """As `train`, and the head's out-of-fold sub-reason logits for every row of `data` (seeds included, in order),
    from which a second model's weight beside this one can be chosen honestly."""
    config = config or TrainingConfig()
    if config.use_taxonomy_examples:
        data = data + taxonomy_examples(taxonomy)
    unlabelled = [i for i, s in enumerate(data.sub_reasons) if s is None]
    if unlabelled:
        raise InputError(
            f"{len(unlabelled)} training row(s) have a category but no sub_reason (first: "
            f"{data.texts[unlabelled[0]]!r}); "
            "every row needs one, since a category's probability is the sum of its sub-reasons'"
        )
    sub_reasons: list[str] = data.sub_reasons  # type: ignore[assignment]
    copied_from, copies = diacritic_free_copies(data.texts, config.diacritic_free_copies, config.seed)
    texts = list(data.texts) + copies  # every row the head is fitted on; the encoder is fine-tuned on the answers
    fitted_sub_reasons = sub_reasons + [sub_reasons[row] for row in copied_from]
    char_ngrams, ngrams = None, None
    if (
        config.char_ngram_weight > 0
    ):  # hashed once, shared by every fold; IDF from the answers as written (labels unused)
        unfitted = CharNgrams(weight=config.char_ngram_weight)
        counts = unfitted.count(texts)
        char_ngrams = unfitted.fit_counts(counts[: len(data)])
        ngrams = char_ngrams.weigh(counts)

    def features(embeddings: np.ndarray) -> np.ndarray | sp.csr_matrix:
        return embeddings if ngrams is None else sp.hstack([sp.csr_matrix(embeddings), ngrams], format="csr")

    fine_tuning = config.fine_tune_epochs > 0 and config.encoder == USE_MULTILINGUAL
    report = on_progress or (lambda event: None)
    if fine_tuning:
        classes = np.array([taxonomy.sub_reason_names.index(s) for s in sub_reasons])

        def tuned(rows: np.ndarray, stage: str) -> TorchUSE:
            return fine_tune(
                [data.texts[i] for i in rows],
                classes[rows],
                len(taxonomy.sub_reason_names),
                config.fine_tune_epochs,
                config.fine_tune_learning_rate,
                config.batch_size,
                seed=config.seed,
                threads=threads,
                on_batch=lambda epoch, epochs, done, rows, loss: report(
                    ProgressEvent(f"{stage}: fine-tuning epoch {epoch}/{epochs}", done, rows, loss, "training loss")
                ),
            )

        # The encoder is fine-tuned on the answers as written: fine-tuned on the copies as well, it clustered
        # held-out writing rounds less purely by sub-reason (docs/model-history.md), and discovery reads this encoder.
        folds_done = 0

        def embed(rows: np.ndarray) -> np.ndarray:
            nonlocal folds_done
            folds_done += 1
            stage = f"cross-validation fold {folds_done}"
            model = tuned(rows[rows < len(data)], stage)
            return features(
                embed_with(model, texts, lambda done: report(ProgressEvent(f"{stage}: encoding", done, len(texts))))
            )

        logits = cross_validated_logits(embed, fitted_sub_reasons, taxonomy, config, on_progress, copied_from)
        encoder = load_encoder(str(tuned(np.arange(len(data)), "final model").save(_scratch_folder())), threads=threads)
        # from the stored weights, exactly as they will be served
        head_input = features(encode_reporting(encoder, texts, "final model: encoding", report))
    else:
        encoder = load_encoder(config.encoder, threads=threads)
        head_input = features(encode_reporting(encoder, texts, "encoding", report))
        logits = cross_validated_logits(
            lambda rows: head_input, fitted_sub_reasons, taxonomy, config, on_progress, copied_from
        )
    report(ProgressEvent("calibrating", 0, 1))
    calibration = calibrate(logits, data.categories, taxonomy, config)
    report(ProgressEvent("calibrating", 1, 1))
    report(ProgressEvent("fitting the head", 0, 1))
    head = fit_head(head_input, fitted_sub_reasons, taxonomy.sub_reason_names, config).with_temperature(
        calibration["temperature"]
    )
    report(ProgressEvent("fitting the head", 1, 1))
    abstain_below = calibration["abstain_below"]
    training_summary = {
        "config": config.to_dict(),
        "encoder_fine_tuned": fine_tuning,
        "rows": len(data),
        "diacritic_free_copies": len(copies),
        "rows_per_category": data.counts(),
        "categories": list(CATEGORIES),
        "sub_reasons": taxonomy.sub_reason_names,
        "data_fingerprint": data.fingerprint(),
        "sources": list(data.sources),
        "calibration": calibration,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    model_config = ModelConfig(
        name=name, encoder=config.encoder, abstain_below=abstain_below, training=training_summary
    )
    classifier = ReasonClassifier(
        encoder,
        taxonomy,
        head,
        abstain_below,
        language_detector=default_detector(),
        config=model_config,
        char_ngrams=char_ngrams,
    )
    return classifier, training_summary, logits


def train_evaluate_save(
    data: LabelledSet,
    heldout: LabelledSet,
    heldout_name: str,
    taxonomy: Taxonomy,
    output: Path,
    config: TrainingConfig | None = None,
    name: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[ReasonClassifier, dict]:
    """Train on `data`, measure on `heldout` (never trained on), write the model folder with its metrics and card."""
    name = name or output.name
    classifier, summary = train(data, taxonomy, config, name=name, on_progress=on_progress)
    metrics = {"heldout": evaluate(classifier, heldout, heldout_name)}
    classifier.save(
        output,
        metrics=metrics,
        card=model_card(name, classifier.encoder.name, classifier.abstain_below, summary, metrics),
    )
    return classifier, metrics


def train_from_files(
    data: Sequence[str | Path],
    output: str | Path,
    config: TrainingConfig | None = None,
    *,
    taxonomy: str | Path | None = None,
    heldout: Sequence[str | Path] | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[ReasonClassifier, dict]:
    """Train a model folder from labelled CSV files (or folders of them) and measure it on answers it was not
    trained on: the `heldout` files, or else 20% of `data` set aside before training (seeded by `config.seed`), so
    that a model always comes with an honest score. `taxonomy` defaults to labels/taxonomy.yaml."""
    config = config or TrainingConfig()
    schema = Taxonomy.load(taxonomy or default_taxonomy_path())
    labelled = read_labelled(data, schema)
    if heldout:
        test, test_name = read_labelled(heldout, schema), ", ".join(map(str, heldout))
    else:
        labelled, test = split_heldout(labelled, seed=config.seed)
        test_name = f"20% of {', '.join(map(str, data))} held out (seed {config.seed})"
    return train_evaluate_save(labelled, test, test_name, schema, Path(output), config, on_progress=on_progress)


def embed_with(
    model: TorchUSE, texts: Sequence[str], on_batch: Callable[[int], None] | None = None, batch_size: int = 256
) -> np.ndarray:
    """Embeddings of `texts` from a fine-tuned model; `on_batch(texts_done)` after each batch."""
    parts = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            parts.append(model(model.tokenize(texts[start : start + batch_size])).numpy())
            if on_batch:
                on_batch(min(start + batch_size, len(texts)))
    return np.vstack(parts)


def encode_reporting(encoder: Encoder, texts: Sequence[str], stage: str, report: ProgressCallback) -> np.ndarray:
    """`encoder.encode(texts)` in batches, reporting the answers done after each: encoding thousands of answers
    takes a minute, which a bar at 0/? for the whole of it does not explain."""
    parts = []
    for start in range(0, len(texts), ENCODING_BATCH):
        parts.append(encoder.encode(texts[start : start + ENCODING_BATCH]))
        report(ProgressEvent(stage, min(start + ENCODING_BATCH, len(texts)), len(texts)))
    return np.vstack(parts) if parts else encoder.encode(texts)


def _scratch_folder() -> Path:
    """A folder for the fine-tuned encoder until the classifier is saved (which copies it into the model folder)."""
    folder = Path(tempfile.mkdtemp(prefix="reason-classifier-encoder-"))
    folder.chmod(0o755)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _smallest_class(labels: np.ndarray) -> int:
    _, counts = np.unique(labels, return_counts=True)
    return int(max(2, counts.min()))
