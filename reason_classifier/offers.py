"""Save offers and alerts by reason: a YAML file of rules, validated once, resolved per prediction.

Which offer goes with which reason is each company's choice, so it is configuration (the service's
default is `service/offers.yaml`, following the domain notes); this module reads the file and, for
one prediction, picks the first rule that matches it and the customer's plan and MRR.

A rule may name an experiment instead of an offer: the customer is then assigned one of its
weighted variants by a hash of the experiment's name and the customer's id, so a customer who
comes back sees the same variant, with no state to keep. A variant whose offer is of kind `none`
is a holdout (no offer shown): the save rate of the holdout is what the uplift of an offer is
measured against. Messages may be given per language; the answer's language picks one, falling
back from `zh-Hant-TW` to `zh-Hant` to `zh`, then to the file's default language.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from .config_files import load
from .errors import ConfigError
from .taxonomy import CATEGORIES, Taxonomy

_Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
LanguageKey = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]


class OffersError(ConfigError):
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
    """An offer of the catalogue. `message` is the default language's text; `messages` every language's.

    In the file, `message` is either one text (every language) or a mapping of language tags to texts
    that must include the file's `default_language`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: OfferKind
    message: str = ""
    messages: dict[LanguageKey, str] = Field(default_factory=dict)

    @property
    def shown(self) -> bool:
        """False for an offer of kind `none`: the customer sees nothing (a holdout, or no offer fits)."""
        return self.kind is not OfferKind.none

    def message_in(self, language: str | None) -> str:
        """The message in `language` (a BCP-47 tag), else in its shorter forms (`zh-Hant` → `zh`), else the
        default language's."""
        if language and self.messages:
            by_lower = {tag.lower(): text for tag, text in self.messages.items()}
            parts = language.lower().split("-")
            for n in range(len(parts), 0, -1):
                found = by_lower.get("-".join(parts[:n]))
                if found is not None:
                    return found
            if parts[0] == "zh":  # zh-TW, zh-HK and zh-MO are written in Traditional script; zh, zh-CN in Simplified
                script = "zh-hant" if len(parts) > 1 and parts[1] in ("hant", "tw", "hk", "mo") else "zh-hans"
                if script in by_lower:
                    return by_lower[script]
        return self.message


class Variant(BaseModel):
    """One arm of an experiment: the offer it shows (an offer of kind `none` makes it a holdout) and its weight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offer: _Identifier
    weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)


class Experiment(BaseModel):
    """Weighted variants; `control` is the variant the others are compared with (default: the first)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variants: dict[_Identifier, Variant] = Field(min_length=2)
    control: _Identifier | None = None

    @model_validator(mode="after")
    def _control_is_a_variant(self) -> Experiment:
        if self.control is not None and self.control not in self.variants:
            raise ValueError(f"control {self.control!r} is not one of the variants ({', '.join(self.variants)})")
        return self

    @property
    def control_variant(self) -> str:
        return self.control or next(iter(self.variants))

    def assign(self, name: str, unit: str) -> str:
        """The variant of `unit` (a customer id) in the experiment `name`: the same every time for the same
        names and weights, and independent between experiments (the name is part of the hash)."""
        digest = hashlib.sha256(f"{name}\x00{unit}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * sum(v.weight for v in self.variants.values())
        for variant_name, variant in self.variants.items():
            if point < variant.weight:
                return variant_name
            point -= variant.weight
        return variant_name  # rounding at the very top of the range


class Rule(BaseModel):
    """Matches when every condition given holds; shows `offer`, or a variant of `experiment`;
    `team` overrides the taxonomy owner for the alert."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str | None = None
    sub_reason: list[_Identifier] | None = None
    plans: list[str] | None = None
    min_mrr: float | None = Field(default=None, ge=0)
    max_mrr: float | None = Field(default=None, gt=0)
    offer: _Identifier | None = None
    experiment: _Identifier | None = None
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
        if (self.offer is None) == (self.experiment is None):
            raise ValueError("a rule needs either an offer or an experiment (not both)")
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
    """The whole file: an offer catalogue, experiments, ordered rules, a default offer and alert options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    default_language: LanguageKey = "en"
    offers: dict[_Identifier, Offer] = Field(min_length=1)
    experiments: dict[_Identifier, Experiment] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    default_offer: _Identifier = "none"
    alerts: AlertOptions = Field(default_factory=AlertOptions)

    def alerted_teams(self, taxonomy: Taxonomy) -> set[str]:
        """Every team an answer can alert: the taxonomy's owners and the rules' own teams."""
        teams = {s.owner for c in taxonomy.categories.values() for s in c.sub_reasons.values()}
        return teams | {rule.team for rule in self.rules if rule.team}

    @property
    def experiment_controls(self) -> dict[str, str]:
        """Each experiment's control variant, by experiment name: what the retention report compares with."""
        return {name: experiment.control_variant for name, experiment in self.experiments.items()}

    @model_validator(mode="before")
    @classmethod
    def _messages_by_language(cls, data: Any) -> Any:
        """`message: {en: ..., de: ...}` becomes `messages`, and `message` the default language's text."""
        if not isinstance(data, dict) or not isinstance(data.get("offers"), dict):
            return data
        default = data.get("default_language", "en")
        offers = {}
        for offer_id, offer in data["offers"].items():
            if isinstance(offer, dict) and isinstance(offer.get("message"), dict):
                messages = offer["message"]
                if not isinstance(default, str) or default not in messages:
                    raise ValueError(
                        f"offers.{offer_id}.message: no message in the default language {default!r} "
                        f"(given: {', '.join(map(str, messages)) or 'none'})"
                    )
                offer = {**offer, "message": messages[default], "messages": messages}
            offers[offer_id] = offer
        return {**data, "offers": offers}

    @model_validator(mode="after")
    def _offers_exist(self) -> OffersConfig:
        known = ", ".join(self.offers)
        for i, rule in enumerate(self.rules):
            if rule.offer is not None and rule.offer not in self.offers:
                raise ValueError(f"rules.{i}.offer: {rule.offer!r} is not in offers ({known})")
            if rule.experiment is not None and rule.experiment not in self.experiments:
                raise ValueError(
                    f"rules.{i}.experiment: {rule.experiment!r} is not in experiments "
                    f"({', '.join(self.experiments) or 'none'})"
                )
        for name, experiment in self.experiments.items():
            for variant_name, variant in experiment.variants.items():
                if variant.offer not in self.offers:
                    raise ValueError(
                        f"experiments.{name}.variants.{variant_name}.offer: {variant.offer!r} "
                        f"is not in offers ({known})"
                    )
        if self.default_offer not in self.offers:
            raise ValueError(f"default_offer: {self.default_offer!r} is not in offers ({known})")
        return self

    @classmethod
    def load(cls, path: str | Path) -> OffersConfig:
        """Read and validate an offers file, or raise `OffersError` naming the file and key."""
        return load(cls, path, error=OffersError, what="offers file")

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
    """What to offer and whom to tell for one prediction.

    `alert_team` is None when nobody is alerted; `experiment` and `variant` are set when the offer came
    from an experiment (a holdout variant shows an offer of kind `none`); `message` is in the answer's
    language where the offer has one.
    """

    offer_id: str
    offer: Offer
    alert_team: str | None
    experiment: str | None = None
    variant: str | None = None
    message: str = ""


class OfferBook:
    """Resolves a prediction to an offer and an alert team with a validated config and the model's taxonomy."""

    def __init__(self, config: OffersConfig, taxonomy: Taxonomy) -> None:
        config.check_against(taxonomy)
        self.config = config
        self.taxonomy = taxonomy

    def decide(
        self,
        category: str,
        sub_reason: str | None,
        abstained: bool,
        plan: str | None,
        mrr: float | None,
        *,
        customer_id: str | None = None,
        language: str | None = None,
    ) -> Decision:
        """The first matching rule's offer (or the default). A rule with an experiment assigns the customer a
        variant; without a customer id there is nothing to keep a variant stable by, so the control's offer is
        shown and the answer is left out of the experiment (`experiment` None)."""
        rule = next((r for r in self.config.rules if r.matches(category, sub_reason, plan, mrr)), None)
        experiment_name = variant_name = None
        if rule is None:
            offer_id = self.config.default_offer
        elif rule.experiment is not None:
            experiment = self.config.experiments[rule.experiment]
            if customer_id:
                experiment_name, variant_name = rule.experiment, experiment.assign(rule.experiment, customer_id)
                offer_id = experiment.variants[variant_name].offer
            else:
                offer_id = experiment.variants[experiment.control_variant].offer
        else:
            assert rule.offer is not None  # a rule has an offer or an experiment
            offer_id = rule.offer
        team: str | None = None
        if (rule is None or rule.alert) and (not abstained or self.config.alerts.when_abstained):
            team = rule.team if rule is not None and rule.team else self._owner(sub_reason)
        offer = self.config.offers[offer_id]
        return Decision(offer_id, offer, team, experiment_name, variant_name, offer.message_in(language))

    def _owner(self, sub_reason: str | None) -> str | None:
        if sub_reason is None:
            return None
        try:
            return self.taxonomy.sub_reason(sub_reason).owner
        except KeyError:
            return None
