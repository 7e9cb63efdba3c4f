"""Save offers and alerts by reason: a YAML file of rules, validated once, resolved per prediction.

Which offer goes with which reason is each company's choice, so it is configuration (the default is
`service/offers.yaml`, following the domain notes); this module only reads the file and picks the
first rule that matches a prediction and the request's plan and MRR.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from reason_classifier.errors import ReasonClassifierError
from reason_classifier.taxonomy import CATEGORIES, Taxonomy

_Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class OffersError(ReasonClassifierError):
    """The offers file is invalid; the message names the file and the dotted key."""


class OfferKind(str, Enum):  # noqa: UP042 - StrEnum changes str() and f-strings of members (behaviour kept)
    discount = "discount"
    downgrade = "downgrade"
    pause = "pause"
    onboarding = "onboarding"
    escalation = "escalation"
    fix_payment = "fix_payment"
    none = "none"


class Offer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: OfferKind
    message: str = ""


class Rule(BaseModel):
    """Matches when every condition given holds; `team` overrides the taxonomy owner for the alert."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str | None = None
    sub_reason: list[_Identifier] | None = None
    plans: list[str] | None = None
    min_mrr: float | None = Field(default=None, ge=0)
    max_mrr: float | None = Field(default=None, gt=0)
    offer: _Identifier
    team: _Identifier | None = None
    alert: bool = True

    @field_validator("sub_reason", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("category")
    @classmethod
    def _fixed_category(cls, value: str | None) -> str | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError(f"{value!r} is not a category; the categories are {', '.join(CATEGORIES)}")
        return value

    @field_validator("plans")
    @classmethod
    def _lower_plans(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [plan.strip().lower() for plan in value]

    @model_validator(mode="after")
    def _says_what_it_matches(self) -> Rule:
        if self.category is None and self.sub_reason is None:
            raise ValueError("a rule needs a category or a sub_reason")
        if self.min_mrr is not None and self.max_mrr is not None and self.min_mrr >= self.max_mrr:
            raise ValueError(f"min_mrr ({self.min_mrr}) must be below max_mrr ({self.max_mrr})")
        return self

    def matches(self, category: str, sub_reason: str | None, plan: str | None, mrr: float | None) -> bool:
        if self.category is not None and self.category != category:
            return False
        if self.sub_reason is not None and sub_reason not in self.sub_reason:
            return False
        if self.plans is not None and (plan is None or plan.strip().lower() not in self.plans):
            return False
        if self.min_mrr is not None and (mrr is None or mrr < self.min_mrr):
            return False
        if self.max_mrr is not None and (mrr is None or mrr >= self.max_mrr):  # noqa: SIM103 - one guard per condition
            return False
        return True


class AlertOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    when_abstained: bool = False


class OffersConfig(BaseModel):
    """The whole file: an offer catalogue, ordered rules, a default offer and alert options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    offers: dict[_Identifier, Offer] = Field(min_length=1)
    rules: list[Rule] = Field(default_factory=list)
    default_offer: _Identifier = "none"
    alerts: AlertOptions = Field(default_factory=AlertOptions)

    @model_validator(mode="after")
    def _offers_exist(self) -> OffersConfig:
        for i, rule in enumerate(self.rules):
            if rule.offer not in self.offers:
                raise ValueError(f"rules.{i}.offer: {rule.offer!r} is not in offers ({', '.join(self.offers)})")
        if self.default_offer not in self.offers:
            raise ValueError(f"default_offer: {self.default_offer!r} is not in offers ({', '.join(self.offers)})")
        return self

    @classmethod
    def load(cls, path: str | Path) -> OffersConfig:
        """Read and validate an offers file, or raise `OffersError` naming the file and key."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise OffersError(f"cannot read offers file {path}: {error.strerror or error}") from None
        except yaml.YAMLError as error:
            raise OffersError(f"{path}: not valid YAML: {error}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problems = "\n  ".join(
                f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg'].removeprefix('Value error, ')}"
                for e in error.errors()
            )
            raise OffersError(f"invalid offers file {path}:\n  {problems}") from None

    def check_against(self, taxonomy: Taxonomy) -> None:
        """Refuse rules naming a sub-reason the model's taxonomy does not have (a typo would never match)."""
        known = set(taxonomy.sub_reason_names)
        for i, rule in enumerate(self.rules):
            for sub_reason in rule.sub_reason or ():
                if sub_reason not in known:
                    raise OffersError(
                        f"offers rules.{i}.sub_reason: {sub_reason!r} is not a sub-reason of the model's taxonomy"
                    )
                if rule.category is not None and taxonomy.category_of(sub_reason) != rule.category:
                    raise OffersError(
                        f"offers rules.{i}: sub-reason {sub_reason!r} is under "
                        f"{taxonomy.category_of(sub_reason)!r}, not {rule.category!r}"
                    )


@dataclass(frozen=True)
class Decision:
    """What to offer and whom to tell for one prediction; `alert_team` is None when nobody is alerted."""

    offer_id: str
    offer: Offer
    alert_team: str | None


class OfferBook:
    """Resolves a prediction to an offer and an alert team with a validated config and the model's taxonomy."""

    def __init__(self, config: OffersConfig, taxonomy: Taxonomy) -> None:
        config.check_against(taxonomy)
        self.config = config
        self.taxonomy = taxonomy

    def decide(
        self, category: str, sub_reason: str | None, abstained: bool, plan: str | None, mrr: float | None
    ) -> Decision:
        rule = next((r for r in self.config.rules if r.matches(category, sub_reason, plan, mrr)), None)
        offer_id = rule.offer if rule is not None else self.config.default_offer
        team: str | None = None
        if (rule is None or rule.alert) and (not abstained or self.config.alerts.when_abstained):
            team = rule.team if rule is not None and rule.team else self._owner(sub_reason)
        return Decision(offer_id, self.config.offers[offer_id], team)

    def _owner(self, sub_reason: str | None) -> str | None:
        if sub_reason is None:
            return None
        try:
            return self.taxonomy.sub_reason(sub_reason).owner
        except KeyError:
            return None
