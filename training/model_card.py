"""The model card: the README.md of a model folder, in the Hugging Face model-card style."""

from __future__ import annotations

import json

from reason_classifier.taxonomy import CATEGORIES


def model_card(name: str, encoder: str, abstain_below: float, training: dict, metrics: dict) -> str:
    languages = sorted(
        {lang for m in metrics.values() if isinstance(m, dict) for lang in m.get("per_language", {})} - {"unknown"}
    )
    lines = [
        "---",
        "library_name: reason-classifier",
        "pipeline_tag: text-classification",
        f"language: [{', '.join(languages)}]",
        "tags: [churn, exit-survey, cancellation-reasons]",
        "---",
        f"# {name}",
        "",
        "Classifies free-text answers of cancellation (exit) surveys into a churn reason: "
        f"{', '.join(CATEGORIES[:-1])}, or `other` when it cannot tell, with a sub-reason under each category.",
        "",
        "## Model",
        f"- Encoder: `{training.get('config', {}).get('encoder', encoder)}`"
        + (
            f", its dense and convolution layers fine-tuned for {training['config']['fine_tune_epochs']} epochs on "
            "the training data "
            "(embedding table frozen; shipped in `encoder/`)"
            if training.get("encoder_fine_tuned")
            else " (frozen)"
        )
        + (
            f", with IDF-weighted, hashed character 2–4-grams (weight {training['config']['char_ngram_weight']:g}) "
            "beside its embedding"
            if training.get("config", {}).get("char_ngram_weight")
            else ""
        )
        + ", followed by one logistic-regression head over the sub-reasons; "
        "a category's probability is the sum of its sub-reasons'.",
        f"- Calibration: temperature {training.get('calibration', {}).get('temperature', 1.0):.3f} fitted on "
        "out-of-fold "
        "predictions (expected calibration error "
        f"{training.get('calibration', {}).get('ece_cv_before', float('nan')):.3f} "
        f"before, {training.get('calibration', {}).get('ece_cv_after', float('nan')):.3f} after, cross-validated).",
        f"- Abstention: a category confidence below {abstain_below:.2f} becomes `other` "
        "(threshold chosen by cross-validation on the training data).",
        f"- Training rows: {training.get('rows')} ({json.dumps(training.get('rows_per_category', {}))}).",
        f"- Training data fingerprint: `{training.get('data_fingerprint', '')[:16]}`; sources: "
        + ", ".join(f"`{s}`" for s in training.get("sources", [])),
        "",
        "## Evaluation (held out: never used for training or tuning)",
        "",
        "| data | rows | accuracy | macro-F1 | coverage |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for result in metrics.values():
        if isinstance(result, dict) and "macro_f1" in result:
            lines.append(
                f"| {result['data']} | {result['rows']} | {result['accuracy']:.3f} | {result['macro_f1']:.3f} | "
                f"{result['coverage']:.3f} |"
            )
    for result in metrics.values():
        if isinstance(result, dict) and result.get("per_language"):
            lines += [
                "",
                f"Per language on {result['data']}:",
                "",
                "| language | rows | macro-F1 |",
                "| --- | ---: | ---: |",
            ]
            lines += [f"| {lang} | {m['rows']} | {m['macro_f1']:.3f} |" for lang, m in result["per_language"].items()]
    lines += [
        "",
        "## Limitations",
        "- The training corpus is written exit-survey text, not real customer answers; real answers are shorter, "
        "noisier "
        "and more domain-specific. Measure on your own labelled answers before relying on the numbers above.",
        "- Languages outside the encoder's 16 are not supported.",
        "",
    ]
    return "\n".join(lines)
