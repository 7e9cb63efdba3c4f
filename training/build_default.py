"""Rebuild the default model shipped in `reason_classifier/default_model` from the project's own corpus.

    python -m reason_classifier.training.build_default [--stage transformer|head|combine|all] [--work FOLDER]

Trains on `labels/train/` plus the taxonomy's seed examples, measures on `labels/heldout/`
(never trained or tuned on), and writes the folder with its metrics and model card. The real
development sets in `../shared/data` are research-licensed: they are measured on in `bench/`,
never trained on here.

Three stages, each saving into `--work`, so the long ones can run apart (or side by side) and
the last one be repeated cheaply:
- `transformer`: multilingual-e5-small fine-tuned on the rows outside the calibration split;
- `head`: the fast encoder and head, as `train` makes them, with out-of-fold scores for every row;
- `combine`: the transformer weighed beside the head on the calibration split, then saved as one model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from reason_classifier.classifier import ReasonClassifier
from reason_classifier.errors import InputError
from reason_classifier.heads import LinearHead, softmax
from reason_classifier.model_folder import DEFAULT_MODEL_PATH
from reason_classifier.multilingual_e5 import MultilingualE5Encoder
from reason_classifier.taxonomy import Taxonomy
from reason_classifier.transformer_scorer import TRANSFORMER_HEAD_FILE, TransformerScorer

from .config import TrainingConfig
from .corpus import HELDOUT_PATH, TAXONOMY_PATH, TRAIN_PATH, LabelledSet, read_labelled, taxonomy_examples
from .ensemble import calibration_split, weigh
from .evaluate import evaluate
from .model_card import model_card
from .train import train_evaluate_save, train_with_out_of_fold

DEFAULT_NAME = "reason-classifier-default"
TRANSFORMER_WORK, HEAD_WORK, OUT_OF_FOLD = "transformer", "head_model", "head_out_of_fold.npy"


def build(output: Path = DEFAULT_MODEL_PATH, config: TrainingConfig | None = None) -> dict:
    """The fast model alone (no transformer), as `reason-classifier train` makes one."""
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    _, metrics = train_evaluate_save(
        read_labelled(TRAIN_PATH, taxonomy),
        read_labelled(HELDOUT_PATH, taxonomy),
        "labels/heldout",
        taxonomy,
        output,
        config,
        name=DEFAULT_NAME,
    )
    return metrics


def transformer_stage(
    work: Path, config: TrainingConfig, epochs: float, time_limit: float | None, threads: int
) -> None:
    from .finetune_me5 import fine_tune_me5

    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    data = read_labelled(TRAIN_PATH, taxonomy) + taxonomy_examples(taxonomy)
    fit, _ = calibration_split(data.categories, seed=config.seed)
    names = taxonomy.sub_reason_names
    classes = _sub_reason_indices(data, names)
    started = time.monotonic()
    model = fine_tune_me5(
        [data.texts[i] for i in fit],
        classes[fit],
        len(names),
        epochs=epochs,
        seed=config.seed,
        threads=threads,
        time_limit=time_limit,
        on_step=lambda step, total, loss: print(
            f"transformer step {step}/{total} loss {loss:.4f} {time.monotonic() - started:.0f}s", flush=True
        ),
    )
    folder = model.save(work / TRANSFORMER_WORK)
    head = LinearHead(
        tuple(names), model.layer.weight.detach().numpy() * model.scale, model.layer.bias.detach().numpy()
    )
    head.save(folder / TRANSFORMER_HEAD_FILE)
    (folder / "run.json").write_text(
        json.dumps(
            {
                "fit_rows": len(fit),
                "epochs": epochs,
                "seconds": time.monotonic() - started,
                "data_fingerprint": data.fingerprint(),
            },
            indent=2,
        )
    )


def head_stage(work: Path, config: TrainingConfig, threads: int) -> None:
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    started = time.monotonic()
    classifier, summary, out_of_fold = train_with_out_of_fold(
        read_labelled(TRAIN_PATH, taxonomy),
        taxonomy,
        config,
        name=DEFAULT_NAME,
        threads=threads,
        on_progress=lambda event: print(
            f"head {event.stage} {event.done}/{event.total} {event.loss} {time.monotonic() - started:.0f}s", flush=True
        ),
    )
    classifier.save(work / HEAD_WORK)
    np.save(work / OUT_OF_FOLD, out_of_fold)


def combine_stage(work: Path, output: Path, config: TrainingConfig, weight: float | None, threads: int) -> dict:
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    data = read_labelled(TRAIN_PATH, taxonomy) + taxonomy_examples(taxonomy)
    _, kept = calibration_split(data.categories, seed=config.seed)
    fast = ReasonClassifier.load(work / HEAD_WORK, threads=threads)
    out_of_fold = np.load(work / OUT_OF_FOLD)
    scorer = TransformerScorer.load(work / TRANSFORMER_WORK, threads=threads).reorder(taxonomy.sub_reason_names)
    names = taxonomy.sub_reason_names
    truth = _sub_reason_indices(data, names)[kept]
    head_probabilities = softmax(out_of_fold[kept] / fast.head.temperature)
    weighing = weigh(head_probabilities, scorer.logits([data.texts[i] for i in kept]), truth, taxonomy, weight)
    scorer = TransformerScorer(scorer.encoder, scorer.head.with_temperature(weighing["transformer_temperature"]))
    fast.config.transformer = {"head_alone_abstain_below": fast.abstain_below, "weighing": weighing}
    fast.config.training["transformer"] = json.loads((work / TRANSFORMER_WORK / "run.json").read_text())
    classifier = ReasonClassifier(
        fast.encoder,
        taxonomy,
        fast.head,
        weighing["abstain_below"],
        language_detector=fast.language_detector,
        config=fast.config,
        char_ngrams=fast.char_ngrams,
        transformer=scorer,
        transformer_weight=weighing["weight"],
    )
    classifier.config.name = DEFAULT_NAME
    heldout = read_labelled(HELDOUT_PATH, taxonomy)
    metrics = {"heldout": evaluate(classifier, heldout, "labels/heldout")}
    card = model_card(
        DEFAULT_NAME,
        f"{fast.encoder.name} + {MultilingualE5Encoder.__name__}",
        classifier.abstain_below,
        classifier.config.training,
        metrics,
    )
    classifier.save(output, metrics=metrics, card=card)
    return {"weighing": weighing, "heldout_macro_f1": metrics["heldout"]["macro_f1"]}


def _sub_reason_indices(data: LabelledSet, names: list[str]) -> np.ndarray:
    """Each row's sub-reason as a column of the taxonomy's sub-reasons; every row needs one."""
    missing = [i for i, sub_reason in enumerate(data.sub_reasons) if sub_reason is None]
    if missing:
        raise InputError(f"{len(missing)} training row(s) have no sub_reason (first: {data.texts[missing[0]]!r})")
    return np.array([names.index(sub_reason) for sub_reason in data.sub_reasons if sub_reason is not None])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--stage", choices=("transformer", "head", "combine", "all"), default="all")
    parser.add_argument("--work", type=Path, default=Path("build/default"), help="where the stages keep what they made")
    parser.add_argument("--epochs", type=float, default=1.0, help="passes of the transformer's fine-tuning")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds after which its fine-tuning stops")
    parser.add_argument(
        "--weight", type=float, default=None, help="the transformer's weight (default: chosen on the calibration split)"
    )
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args()
    config = TrainingConfig()
    arguments.work.mkdir(parents=True, exist_ok=True)
    if arguments.stage in ("transformer", "all"):
        transformer_stage(arguments.work, config, arguments.epochs, arguments.time_limit, arguments.threads)
    if arguments.stage in ("head", "all"):
        head_stage(arguments.work, config, arguments.threads)
    if arguments.stage in ("combine", "all"):
        print(
            json.dumps(
                combine_stage(arguments.work, arguments.output, config, arguments.weight, arguments.threads), indent=2
            )
        )


if __name__ == "__main__":
    main()
