"""Save offers (issue 16): A/B experiments with weighted variants and holdouts, messages per language."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from reason_classifier.offers import OfferBook, OffersConfig, OffersError
from reason_classifier.resources import package_path
from reason_classifier.taxonomy import Taxonomy

DEFAULT_OFFERS = package_path("reason_classifier.service", "offers.yaml")
CORPUS_LANGUAGES = ("en", "de", "fr", "es", "pl", "zh-Hans", "zh-Hant")

EXPERIMENT = """
offers:
  none: {kind: none}
  discount: {kind: discount, message: {en: 20% off, de: 20 % Rabatt, zh-Hant: 八折}}
  pause: {kind: pause, message: Pause it}
experiments:
  price:
    control: discount
    variants:
      discount: {offer: discount, weight: 3}
      pause: {offer: pause, weight: 1}
      holdout: {offer: none, weight: 1}
rules:
  - {sub_reason: too_expensive, experiment: price}
  - {category: pricing, offer: pause}
"""


def book(tmp_path, text: str = EXPERIMENT) -> OfferBook:
    path = tmp_path / "offers.yaml"
    path.write_text(text, encoding="utf-8")
    return OfferBook(OffersConfig.load(path), Taxonomy.load())


def test_a_customer_keeps_their_variant_and_variants_follow_their_weights(tmp_path):
    offers = book(tmp_path)
    decide = lambda customer: offers.decide("pricing", "too_expensive", False, None, None, customer_id=customer)  # noqa: E731
    first = [decide(f"c-{i}") for i in range(10_000)]
    assert [decide(f"c-{i}") for i in range(200)] == first[:200]  # a returning customer sees the same
    shares = Counter(d.variant for d in first)
    assert abs(shares["discount"] / 10_000 - 0.6) < 0.02
    assert abs(shares["pause"] / 10_000 - 0.2) < 0.02 and abs(shares["holdout"] / 10_000 - 0.2) < 0.02
    assert {d.experiment for d in first} == {"price"}
    holdout = next(d for d in first if d.variant == "holdout")
    assert holdout.offer_id == "none" and not holdout.offer.shown and holdout.message == ""
    assert next(d for d in first if d.variant == "pause").offer_id == "pause"


def test_assignment_is_a_known_hash_and_independent_between_experiments():
    config = OffersConfig.model_validate(
        {
            "offers": {"a": {"kind": "pause"}, "b": {"kind": "discount"}},
            "default_offer": "a",
            "experiments": {
                "one": {"variants": {"a": {"offer": "a"}, "b": {"offer": "b"}}},
                "two": {"variants": {"a": {"offer": "a"}, "b": {"offer": "b"}}},
            },
        }
    )
    one, two = config.experiments["one"], config.experiments["two"]
    pairs = Counter((one.assign("one", f"c{i}"), two.assign("two", f"c{i}")) for i in range(4000))
    assert all(900 < count < 1100 for count in pairs.values()) and len(pairs) == 4
    # the first 8 bytes of sha256("one\0c<i>") decide (equal weights: below half is "a"); a change of the
    # hash would move every running experiment's customers to other variants
    for i in range(50):
        point = int.from_bytes(hashlib.sha256(f"one\x00c{i}".encode()).digest()[:8], "big")
        assert one.assign("one", f"c{i}") == ("a" if point < 2**63 else "b")


def test_without_a_customer_id_the_control_is_shown_and_no_variant_recorded(tmp_path):
    decision = book(tmp_path).decide("pricing", "too_expensive", False, None, None)
    assert decision.offer_id == "discount" and decision.experiment is None and decision.variant is None
    plain = book(tmp_path).decide("pricing", "plan_mismatch", False, None, None, customer_id="c-1")
    assert plain.offer_id == "pause" and plain.experiment is None


def test_the_message_is_in_the_answers_language_then_its_shorter_forms_then_the_default(tmp_path):
    offers = book(tmp_path)

    def message(language: str | None) -> str:
        sub_reason = "plan_mismatch" if language == "pause" else "too_expensive"
        return offers.decide("pricing", sub_reason, False, None, None, language=language).message

    assert message("de") == "20 % Rabatt" and message("de-AT") == "20 % Rabatt" and message("DE") == "20 % Rabatt"
    assert message("zh-Hant") == "八折" and message("zh-TW") == "八折" and message("zh-Hant-HK") == "八折"
    assert message("zh-Hans") == "20% off" and message("pl") == "20% off" and message(None) == "20% off"
    assert message("pause") == "Pause it"  # one text for every language


def test_shipped_offers_speak_the_seven_corpus_languages_and_the_annual_discount_says_annual(tmp_path):
    config = OffersConfig.load(DEFAULT_OFFERS)
    for offer_id, offer in config.offers.items():
        if offer.shown:
            assert set(offer.messages) == set(CORPUS_LANGUAGES), offer_id
            assert len(set(offer.messages.values())) == len(CORPUS_LANGUAGES), offer_id  # each one translated
    assert "year" in config.offers["discount_30_annual"].message  # its id says annual; it said "6 months"
    assert "年" in config.offers["discount_30_annual"].message_in("zh-Hans")
    experiment = config.experiments["price_increase_offer"]
    assert (
        experiment.control_variant == "discount" and config.offers[experiment.variants["holdout"].offer].kind == "none"
    )
    assert config.experiment_controls == {name: e.control_variant for name, e in config.experiments.items()}
    assert config.experiment_controls["price_increase_offer"] == "discount"
    OfferBook(config, Taxonomy.load())  # every rule names a sub-reason of the taxonomy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "offers:\n  none: {kind: none}\n  d: {kind: discount, message: {de: Rabatt}}\n",
            r"offers\.d\.message: no message in the default language 'en' \(given: de\)",
        ),
        (
            "offers:\n  none: {kind: none}\n  d: {kind: discount, message: {english: x}}\ndefault_language: english\n",
            r"default_language: String should match pattern",
        ),
        (
            "offers:\n  none: {kind: none}\nrules:\n  - {category: pricing, experiment: nope}\n",
            r"rules\.0\.experiment: 'nope' is not in experiments",
        ),
        (
            "offers:\n  none: {kind: none}\nexperiments:\n  e: {variants: {a: {offer: none}, b: {offer: gone}}}\n",
            r"experiments\.e\.variants\.b\.offer: 'gone' is not in offers",
        ),
        (
            "offers:\n  none: {kind: none}\nexperiments:\n"
            "  e: {control: c, variants: {a: {offer: none}, b: {offer: none}}}\n",
            r"line 4: experiments\.e: control 'c' is not one of the variants \(a, b\)",
        ),
        (
            "offers:\n  none: {kind: none}\nexperiments:\n  e: {variants: {a: {offer: none}}}\n",
            r"experiments\.e\.variants: .*at least 2",
        ),
        (
            "offers:\n  none: {kind: none}\nexperiments:\n"
            "  e: {variants: {a: {offer: none, weight: 0}, b: {offer: none}}}\n",
            r"line 4: experiments\.e\.variants\.a\.weight: Input should be greater than 0",
        ),
        (
            "offers:\n  none: {kind: none}\nexperiments:\n  e: {variants: {a: {offer: none}, b: {offer: none}}}\n"
            "rules:\n  - {category: pricing, offer: none, experiment: e}\n",
            r"line 6: rules\.0: a rule needs either an offer or an experiment \(not both\)",
        ),
        ("offers:\n  none: {kind: none}\nrules:\n  - {category: pricing}\n", r"rules\.0: a rule needs either an offer"),
    ],
)
def test_a_wrong_experiment_or_message_is_refused_naming_the_key(tmp_path, text, expected):
    path = tmp_path / "offers.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(OffersError, match=expected):
        OffersConfig.load(path)
