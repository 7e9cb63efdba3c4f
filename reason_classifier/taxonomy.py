"""The churn-reason taxonomy: five fixed categories, editable sub-reasons, and what each means for action.

The taxonomy is a YAML file that people edit by hand, so loading it validates every field and a
mistake is reported with the dotted key and the line it is on, not as a stack trace.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from .config_files import parse_yaml, validate
from .errors import TaxonomyError
from .resources import package_path

CATEGORIES: tuple[str, ...] = ("product", "pricing", "support", "market", "other")
"""The fixed top level, in the order reports show it. `other` is where the classifier abstains."""

ABSTAIN_CATEGORY = "other"
_EXPECTED = "a mapping with 'version' and 'categories' at the top"

DEFAULT_TAXONOMY_PATH = package_path("reason_classifier", "default_model", "taxonomy.yaml")
"""The taxonomy the shipped model was trained on; the repository's editable one is labels/taxonomy.yaml."""

REPOSITORY_TAXONOMY_PATH = Path(__file__).resolve().parent.parent / "labels" / "taxonomy.yaml"
"""labels/taxonomy.yaml beside the package in a checkout of the repository; an installed package has none."""


def default_taxonomy_path() -> Path:
    """labels/taxonomy.yaml in a checkout of the repository (the one people edit), else the shipped model's."""
    return REPOSITORY_TAXONOMY_PATH if REPOSITORY_TAXONOMY_PATH.is_file() else DEFAULT_TAXONOMY_PATH


_Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class SubReason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: _Text
    owner: _Identifier
    voluntary: bool
    influenceable: bool
    examples: dict[str, list[_Text]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _language_tags(self) -> SubReason:
        for tag in self.examples:
            if not _LANGUAGE_TAG.match(tag):
                raise ValueError(f"examples: {tag!r} is not a language tag such as 'en' or 'zh-Hant'")
        return self


class Category(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: _Text
    sub_reasons: dict[_Identifier, SubReason] = Field(min_length=1)


class Taxonomy(BaseModel):
    """A validated taxonomy. Sub-reason ids are unique across categories, so an id alone names both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    categories: dict[str, Category]

    @model_validator(mode="after")
    def _fixed_top_level_and_unique_ids(self) -> Taxonomy:
        found = list(self.categories)
        if sorted(found) != sorted(CATEGORIES):
            missing = [c for c in CATEGORIES if c not in found]
            unknown = [c for c in found if c not in CATEGORIES]
            raise ValueError(
                f"the categories are fixed to {', '.join(CATEGORIES)}"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            )
        seen: dict[str, str] = {}
        for category, content in self.categories.items():
            for sub_reason in content.sub_reasons:
                if sub_reason in seen:
                    raise ValueError(
                        f"sub-reason {sub_reason!r} appears under both {seen[sub_reason]!r} and {category!r}"
                    )
                seen[sub_reason] = category
        return self

    @classmethod
    def load(cls, path: str | Path | None = None) -> Taxonomy:
        """Read and validate a taxonomy file (None = the taxonomy of the shipped model)."""
        path = Path(path) if path is not None else DEFAULT_TAXONOMY_PATH
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise TaxonomyError(f"cannot read taxonomy file {path}: {error.strerror or error}") from error
        return cls.from_yaml(text, source=str(path))

    @classmethod
    def from_yaml(cls, text: str, source: str = "<taxonomy>") -> Taxonomy:
        document = parse_yaml(text, source, error=TaxonomyError, expected=_EXPECTED)
        return validate(cls, document, error=TaxonomyError, what="taxonomy")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), allow_unicode=True, sort_keys=False, width=120)

    @cached_property
    def _category_of(self) -> dict[str, str]:
        return {s: c for c, content in self.categories.items() for s in content.sub_reasons}

    @property
    def sub_reason_names(self) -> list[str]:
        """Every sub-reason id, grouped by category in the taxonomy's order."""
        return [s for c in CATEGORIES for s in self.categories[c].sub_reasons]

    def category_of(self, sub_reason: str) -> str:
        try:
            return self._category_of[sub_reason]
        except KeyError:
            raise KeyError(f"unknown sub-reason {sub_reason!r}") from None

    def sub_reason(self, sub_reason: str) -> SubReason:
        return self.categories[self.category_of(sub_reason)].sub_reasons[sub_reason]

    def category_matrix(self) -> np.ndarray:
        """(sub-reasons × categories) 0/1 matrix: sub-reason probabilities @ it = category probabilities."""
        matrix = np.zeros((len(self.sub_reason_names), len(CATEGORIES)), dtype=np.float32)
        for row, sub_reason in enumerate(self.sub_reason_names):
            matrix[row, CATEGORIES.index(self.category_of(sub_reason))] = 1.0
        return matrix

    def examples(self) -> Iterator[LabelledExample]:
        """The seed answers written in the taxonomy, one per language and sub-reason."""
        for category in CATEGORIES:
            for name, sub_reason in self.categories[category].sub_reasons.items():
                for language, texts in sub_reason.examples.items():
                    for text in texts:
                        yield LabelledExample(text, category, name, language)


@dataclass(frozen=True)
class LabelledExample:
    text: str
    category: str
    sub_reason: str | None
    language: str | None = None
