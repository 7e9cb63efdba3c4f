"""Labelled answers: reading them, checking them against the taxonomy, and knowing where they came from.

The format is the one `label` (discovery) writes and people edit: CSV with `text,category` and
optionally `sub_reason,lang,source`. A folder means every CSV in it. A wrong label is reported
with its file and row; training on a silently dropped or misread row would be worse.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reason_classifier.errors import InputError
from reason_classifier.taxonomy import REPOSITORY_TAXONOMY_PATH, LabelledExample, Taxonomy
from reason_classifier.taxonomy import default_taxonomy_path as default_taxonomy_path  # where training's callers look

# labels/ is the repository's data, beside this folder in a checkout; an installed package has none of it.
REPOSITORY = Path(__file__).resolve().parent.parent
TRAIN_PATH = REPOSITORY / "labels" / "train"
HELDOUT_PATH = REPOSITORY / "labels" / "heldout"
TAXONOMY_PATH = REPOSITORY_TAXONOMY_PATH
REQUIRED_COLUMNS = ("text", "category")


@dataclass(frozen=True)
class LabelledSet:
    examples: tuple[LabelledExample, ...]
    sources: tuple[str, ...]

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.examples]

    @property
    def categories(self) -> list[str]:
        return [e.category for e in self.examples]

    @property
    def sub_reasons(self) -> list[str | None]:
        return [e.sub_reason for e in self.examples]

    @property
    def languages(self) -> list[str | None]:
        return [e.language for e in self.examples]

    def __len__(self) -> int:
        return len(self.examples)

    def fingerprint(self) -> str:
        """A hash of every text and label, so a model can say exactly which data it was trained on."""
        digest = hashlib.sha256()
        for e in sorted(self.examples, key=lambda e: (e.text, e.category, e.sub_reason or "")):
            digest.update(f"{e.text}\x1f{e.category}\x1f{e.sub_reason or ''}\x1e".encode())
        return digest.hexdigest()

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.categories))

    def __add__(self, other: LabelledSet) -> LabelledSet:
        return LabelledSet(self.examples + other.examples, self.sources + other.sources)


def split_heldout(data: LabelledSet, share: float = 0.2, seed: int = 0) -> tuple[LabelledSet, LabelledSet]:
    """(train, held-out), stratified by category, for users who bring one labelled file and no held-out set."""
    from sklearn.model_selection import train_test_split

    if not 0 < share < 1:
        raise ValueError(f"the held-out share must be between 0 and 1, got {share!r}")
    indices = list(range(len(data)))
    train_rows, heldout_rows = train_test_split(indices, test_size=share, random_state=seed, stratify=data.categories)

    def pick(rows: list[int], tag: str) -> LabelledSet:
        return LabelledSet(tuple(data.examples[i] for i in sorted(rows)), tuple(f"{s} ({tag})" for s in data.sources))

    return pick(train_rows, f"{1 - share:.0%} split"), pick(heldout_rows, f"{share:.0%} held-out split, seed {seed}")


def read_labelled(paths: str | Path | Sequence[str | Path], taxonomy: Taxonomy) -> LabelledSet:
    """Every row of the CSV files (or folders of them), validated; raises InputError naming file and row."""
    files = _csv_files([paths] if isinstance(paths, (str, Path)) else paths)
    examples: list[LabelledExample] = []
    for file in files:
        examples.extend(_read_file(file, taxonomy))
    return LabelledSet(tuple(examples), tuple(_display(f) for f in files))


def taxonomy_examples(taxonomy: Taxonomy) -> LabelledSet:
    return LabelledSet(tuple(taxonomy.examples()), ("taxonomy seed examples",))


def default_training_set(taxonomy: Taxonomy) -> LabelledSet:
    """The rows the shipped default learns from (labels/train and the seeds its config adds); every peer shares
    them."""
    return read_labelled(TRAIN_PATH, taxonomy) + taxonomy_examples(taxonomy)


def _display(path: Path) -> str:
    """Paths inside the repository are recorded relative to it, so a model folder does not name a developer's disk."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPOSITORY)) if resolved.is_relative_to(REPOSITORY) else str(path)


def _csv_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(path.glob("*.csv")))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or folder of labelled data")
    if not files:
        raise InputError(f"no CSV files of labelled data in {', '.join(map(str, paths))}")
    return files


def _read_file(path: Path, taxonomy: Taxonomy) -> list[LabelledExample]:
    with open(path, encoding="utf-8-sig", newline="") as file:
        reader = csv.DictReader(file)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}; found {reader.fieldnames}")
        rows = []
        for number, row in enumerate(reader, 1):
            text, category = (row.get("text") or "").strip(), (row.get("category") or "").strip()
            sub_reason = (row.get("sub_reason") or "").strip() or None
            where = f"{path}, row {number}"
            if not text:
                raise InputError(f"{where}: empty text")
            if category not in taxonomy.categories:
                raise InputError(
                    f"{where}: unknown category {category!r}; expected one of {', '.join(taxonomy.categories)}"
                )
            if sub_reason is not None and sub_reason not in taxonomy.categories[category].sub_reasons:
                raise InputError(f"{where}: sub-reason {sub_reason!r} is not under category {category!r}")
            rows.append(LabelledExample(text, category, sub_reason, (row.get("lang") or "").strip() or None))
    return rows
