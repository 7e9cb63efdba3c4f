"""Model folders someone hands over: every file checked, nothing read from outside the folder, every failure the
project's error (issue 15, item 16). These read folders without loading an encoder, so they are fast."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from reason_classifier.classifier import ReasonClassifier
from reason_classifier.errors import ModelFolderError, ReasonClassifierError
from reason_classifier.model_folder import (
    CHECKSUMS_FILE,
    DEFAULT_MODEL_PATH,
    read_model_folder,
    write_checksums,
)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_MODEL_PATH, tmp_path / "model"))


def edit_config(folder: Path, **changes: object) -> None:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def as_written_before_format_6(folder: Path) -> None:
    (folder / CHECKSUMS_FILE).unlink()
    edit_config(folder, format_version=5)


def test_the_shipped_folder_is_sealed_and_sha256sum_agrees(folder):
    assert read_model_folder(folder).config.format_version == 6
    checked = subprocess.run(["sha256sum", "-c", CHECKSUMS_FILE], cwd=folder, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "config.json: OK" in checked.stdout and "head.npz: OK" in checked.stdout


def test_an_edited_abstention_threshold_is_refused(folder):
    edit_config(folder, abstain_below=0.01)
    with pytest.raises(ModelFolderError, match=r"config.json does not match the checksum in SHA256SUMS"):
        read_model_folder(folder)


def test_emptied_or_removed_checksums_are_refused(folder):
    (folder / CHECKSUMS_FILE).write_text("")
    with pytest.raises(ModelFolderError, match=r"README.md, char_ngrams.npz, config.json.* are not covered"):
        read_model_folder(folder)
    (folder / CHECKSUMS_FILE).unlink()
    with pytest.raises(ModelFolderError, match=r"incomplete: missing SHA256SUMS"):
        read_model_folder(folder)


def test_a_file_added_after_training_is_refused(folder):
    (folder / "extra.npz").write_bytes(b"")
    with pytest.raises(ModelFolderError, match=r"extra.npz is not covered by SHA256SUMS"):
        read_model_folder(folder)


def test_folders_from_before_format_6_still_read_but_emptied_checksums_are_refused(folder):
    as_written_before_format_6(folder)
    assert read_model_folder(folder).config.format_version == 5
    edit_config(folder, checksums={})
    with pytest.raises(ModelFolderError, match=r"char_ngrams.npz, encoder/use_dense.npz, head.npz.* have no checksum"):
        read_model_folder(folder)


def test_an_encoder_outside_the_folder_is_refused_unless_named_explicitly(folder, tmp_path):
    elsewhere = Path(shutil.copytree(folder / "encoder", tmp_path / "elsewhere"))
    for named in (str(elsewhere), "../elsewhere"):
        edit_config(folder, encoder=named)
        write_checksums(folder)  # a consistent folder: the checksums are not what protects here
        with pytest.raises(ModelFolderError, match=rf"names the encoder '{named}', which is not inside the folder"):
            read_model_folder(folder)
    assert read_model_folder(folder, encoder=elsewhere).encoder_path == str(elsewhere)


def test_a_transformer_folder_outside_the_model_folder_is_refused(folder):
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    edit_config(folder, transformer={**config["transformer"], "folder": "/etc"})
    write_checksums(folder)
    with pytest.raises(ModelFolderError, match=r"names the transformer '/etc', which is not inside the folder"):
        read_model_folder(folder)


@pytest.mark.parametrize(
    ("damaged", "fast"),
    [("head.npz", True), ("char_ngrams.npz", True), ("encoder/use_dense.npz", True), ("transformer/head.npz", False)],
)
def test_a_corrupt_npz_with_a_matching_checksum_is_a_model_folder_error(folder, damaged, fast):
    (folder / damaged).write_bytes(b"PK\x03\x04 this is not a zip archive")
    write_checksums(folder)
    with pytest.raises(ModelFolderError, match=rf"{damaged.split('/')[0]}.*cannot be read"):
        ReasonClassifier.load(folder, detect_language=False, fast=fast)


def test_every_load_failure_is_the_projects_error(folder, tmp_path):
    (folder / "metrics.json").write_text("{not json")
    write_checksums(folder)
    with pytest.raises(ReasonClassifierError, match="metrics.json is not valid JSON"):
        read_model_folder(folder)
    (folder / CHECKSUMS_FILE).write_text("not a checksum line\n")
    with pytest.raises(ReasonClassifierError, match="SHA256SUMS, line 1 is not"):
        read_model_folder(folder)
