"""Fine-tuning multilingual-e5-small on the labelled answers: the transformer and a linear layer over the sub-reasons.

The 250k-row word-embedding table stays frozen: it is most of the model's size, the package
already carries it, and a step costs about half as much without its gradient. What training
changes (the twelve layers, position and type embeddings, layer norms: about 21 M parameters)
is saved in float16 beside the linear layer, and that is all a model folder ships.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from reason_classifier.multilingual_e5 import FINE_TUNED_ME5_FILE, WORD_EMBEDDINGS, E5Model, bfloat16_native, build_me5

StepReport = Callable[[int, int, float], None]
"""on_step(step, total_steps, mean loss of the last steps)."""


class TunedE5(nn.Module):
    """The transformer, mean-pooled and L2-normalised, and a linear layer over the classes (scaled cosine logits)."""

    scale = (
        16.0  # unit-length embeddings give logits in [-|w|, |w|]; a fixed scale lets the layer reach confident outputs
    )

    def __init__(self, n_classes: int, max_tokens: int = 64, threads: int = 2) -> None:
        super().__init__()
        self.e5 = E5Model(build_me5(), threads=threads, max_tokens=max_tokens)
        self.transformer = self.e5.model
        self.layer = nn.Linear(self.e5.dimension, n_classes)

    def embed(self, ids: list[list[int]]) -> torch.Tensor:
        return nn.functional.normalize(self.e5.forward(ids), dim=-1)

    def forward(self, ids: list[list[int]]) -> torch.Tensor:
        return self.layer(self.embed(ids) * self.scale)

    def changed_weights(self) -> dict[str, torch.Tensor]:
        """What training changed, in float16: every transformer weight but the frozen word-embedding table."""
        return {
            name: tensor.detach().half().contiguous()
            for name, tensor in self.transformer.state_dict().items()
            if name != WORD_EMBEDDINGS
        }

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file(self.changed_weights(), str(folder / FINE_TUNED_ME5_FILE))
        (folder / FINE_TUNED_ME5_FILE).chmod(0o644)  # safetensors writes 0600; a model folder is read by other users
        return folder


def fine_tune_me5(
    texts: Sequence[str],
    labels: Sequence[int],
    n_classes: int,
    epochs: float = 1.0,
    learning_rate: float = 3e-5,
    head_learning_rate: float = 1e-3,
    batch_size: int = 32,
    max_tokens: int = 64,
    label_smoothing: float = 0.1,
    seed: int = 0,
    threads: int = 2,
    time_limit: float | None = None,
    on_step: StepReport | None = None,
    bfloat16: bool | None = None,
) -> TunedE5:
    """The model after `epochs` passes (fractions allowed) of class-weighted cross-entropy, or fewer if `time_limit`
    (seconds) ends it.

    Batches hold answers of similar length (shuffled buckets), so padding costs little; the
    learning rate warms up over the first 6% of steps and decays linearly to zero.
    """
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    bfloat16 = bfloat16_native() if bfloat16 is None else bfloat16
    random = np.random.default_rng(seed)
    model = TunedE5(n_classes, max_tokens, threads)
    model.transformer.embeddings.word_embeddings.weight.requires_grad_(False)
    ids = model.e5.tokenizer.encode(texts)
    targets = torch.tensor(list(labels))
    counts = np.bincount(targets.numpy(), minlength=n_classes)
    class_weights = torch.tensor(len(targets) / (n_classes * np.maximum(counts, 1)), dtype=torch.float32)
    batches = _length_bucketed_batches([len(i) for i in ids], batch_size, epochs, random)
    trainable = [p for p in model.transformer.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        [{"params": trainable, "lr": learning_rate}, {"params": model.layer.parameters(), "lr": head_learning_rate}],
        weight_decay=0.01,
    )
    warmup = max(1, int(0.06 * len(batches)))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: min((step + 1) / warmup, max(0.0, (len(batches) - step) / max(1, len(batches) - warmup))),
    )
    loss_function = nn.CrossEntropyLoss(weight=class_weights, label_smoothing=label_smoothing)
    started, recent = time.monotonic(), []
    model.train()
    for step, rows in enumerate(batches, 1):
        # bfloat16 matrix products where the CPU has them natively (far faster than float32, docs/model.md); weights and
        # optimiser stay float32
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            loss = loss_function(model([ids[i] for i in rows]), targets[rows])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        recent.append(loss.item())
        if on_step and (step % 20 == 0 or step == len(batches)):
            on_step(step, len(batches), float(np.mean(recent)))
            recent = []
        if time_limit is not None and time.monotonic() - started > time_limit:
            if on_step:
                on_step(step, len(batches), float(np.mean(recent or [loss.item()])))
            break
    model.eval()
    return model


def _length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, epochs: float, random: np.random.Generator
) -> list[np.ndarray]:
    """Batches of rows of similar length, in random order; `epochs` may end part-way through a pass."""
    batches: list[np.ndarray] = []
    n = len(lengths)
    wanted = int(np.ceil(epochs * n / batch_size))
    while len(batches) < wanted:
        shuffled = random.permutation(n)
        # sort within windows of 50 batches: similar lengths together, yet every epoch differs
        window = batch_size * 50
        for start in range(0, n, window):
            chunk = shuffled[start : start + window]
            chunk = chunk[np.argsort([lengths[i] for i in chunk], kind="stable")]
            pass_batches = [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
            random.shuffle(pass_batches)
            batches.extend(pass_batches)
    return batches[:wanted]
