"""Quality of the shipped default model against simple peers, on data none of them was trained or tuned on.

    python bench/accuracy.py [--json bench/results/accuracy.json]

Data: the project's held-out split (`labels/heldout`, 7 languages, written) and, where present,
the real laptop-review complaints in `../shared/data/absa_laptops_dev.csv` (research licence:
read from there, never copied or trained on). Peers, all trained on the same `labels/train` plus
the taxonomy's seed examples:
  - zero-shot: cosine similarity to each category's descriptions (no training; the floor);
  - tfidf-logreg: character n-gram TF-IDF + logistic regression (the classic baseline);
  - default: the shipped model (frozen multilingual encoder + logistic head over sub-reasons).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reason_classifier.classifier import ReasonClassifier  # noqa: E402
from reason_classifier.encoders import load_encoder  # noqa: E402
from reason_classifier.taxonomy import CATEGORIES, LabelledExample, Taxonomy  # noqa: E402
from training.corpus import HELDOUT_PATH, TRAIN_PATH, LabelledSet, read_labelled, taxonomy_examples  # noqa: E402
from training.evaluate import score  # noqa: E402

ABSA = ROOT.parent / "shared" / "data" / "absa_laptops_dev.csv"
SEED = 0


def read_absa() -> LabelledSet | None:
    if not ABSA.is_file():
        Console(stderr=True).print(f"skipping the real laptop-review set: {ABSA} is not here")
        return None
    with open(ABSA, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    return LabelledSet(tuple(LabelledExample(r["text"], r["label"], None, r.get("lang") or "en") for r in rows), (str(ABSA),))


def zero_shot(taxonomy: Taxonomy, encoder_name: str):
    encoder = load_encoder(encoder_name)
    prototypes = []
    for category in CATEGORIES:
        content = taxonomy.categories[category]
        descriptions = [content.description, *(s.description for s in content.sub_reasons.values())]
        mean = encoder.encode(descriptions).mean(axis=0)
        prototypes.append(mean / np.linalg.norm(mean))
    prototypes = np.vstack(prototypes)
    return lambda texts: [CATEGORIES[i] for i in (encoder.encode(texts) @ prototypes.T).argmax(axis=1)]


def tfidf_logreg(train: LabelledSet):
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=1)
    model = LogisticRegression(C=10, class_weight="balanced", max_iter=3000, random_state=SEED)
    model.fit(vectorizer.fit_transform(train.texts), train.categories)
    return lambda texts: list(model.predict(vectorizer.transform(texts)))


def measure(predict, data: LabelledSet) -> dict:
    started = time.perf_counter()
    predicted = predict(data.texts)
    seconds = time.perf_counter() - started
    languages = sorted({lang or "unknown" for lang in data.languages})
    per_language = {}
    for language in languages:
        rows = [i for i, lang in enumerate(data.languages) if (lang or "unknown") == language]
        per_language[language] = score([data.categories[i] for i in rows], [predicted[i] for i in rows]).as_dict()
    return {**score(data.categories, predicted).as_dict(), "answers_per_second": round(len(data) / seconds, 1),
            "per_language": per_language}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "accuracy.json")
    arguments = parser.parse_args()

    taxonomy = Taxonomy.load()
    train = read_labelled(TRAIN_PATH, taxonomy) + taxonomy_examples(taxonomy)
    datasets = {"heldout (labels/heldout)": read_labelled(HELDOUT_PATH, taxonomy)}
    absa = read_absa()
    if absa is not None:
        datasets["absa laptops (real, en)"] = absa

    default = ReasonClassifier.load()
    models = {}
    for name, build in (
        ("zero-shot", lambda: zero_shot(taxonomy, default.encoder.name)),
        ("tfidf-logreg", lambda: tfidf_logreg(train)),
        ("default", lambda: (lambda texts: [p.category for p in default.predict(texts)])),
    ):
        started = time.perf_counter()
        models[name] = (build(), time.perf_counter() - started)

    results: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seed": SEED,
                     "python": platform.python_version(), "train_rows": len(train), "results": {}}
    table = Table(title="Category macro-F1 on data no model was trained or tuned on")
    for column in ("data", "model", "rows", "accuracy", "macro-F1", "answers/s", "worst language"):
        table.add_column(column, justify="left" if column in ("data", "model", "worst language") else "right")
    for data_name, data in datasets.items():
        for model_name, (predict, fit_seconds) in models.items():
            result = measure(predict, data)
            result["fit_seconds"] = round(fit_seconds, 2)
            results["results"].setdefault(data_name, {})[model_name] = result
            worst = min(result["per_language"].items(), key=lambda item: item[1]["macro_f1"])
            table.add_row(data_name, model_name, str(result["rows"]), f"{result['accuracy']:.3f}",
                          f"{result['macro_f1']:.3f}", f"{result['answers_per_second']:,.0f}",
                          f"{worst[0]} {worst[1]['macro_f1']:.3f}")
    Console().print(table)
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written {arguments.json}")


if __name__ == "__main__":
    main()
