from pathlib import Path

import pytest

from reason_classifier.errors import TaxonomyError
from reason_classifier.taxonomy import CATEGORIES, Taxonomy

SHIPPED = Path(__file__).resolve().parent.parent / "labels" / "taxonomy.yaml"

VALID = """\
version: 1
categories:
  product:
    description: The product.
    sub_reasons:
      bugs:
        description: Bugs.
        owner: engineering
        voluntary: true
        influenceable: true
        examples:
          en: ["it crashes"]
  pricing:
    description: Price.
    sub_reasons:
      too_expensive: {description: Too expensive., owner: growth, voluntary: true, influenceable: true}
  support:
    description: Support.
    sub_reasons:
      slow_response: {description: Slow., owner: support, voluntary: true, influenceable: true}
  market:
    description: Market.
    sub_reasons:
      needs_changed: {description: Changed., owner: sales, voluntary: true, influenceable: false}
  other:
    description: Other.
    sub_reasons:
      unclear: {description: Unclear., owner: cs, voluntary: true, influenceable: false}
"""


def test_shipped_taxonomy_has_fixed_categories_and_seed_examples_in_seven_languages():
    taxonomy = Taxonomy.load(SHIPPED)
    assert list(taxonomy.categories) == list(CATEGORIES)
    assert taxonomy.sub_reason("payment_failed").voluntary is False
    assert taxonomy.category_of("switched_competitor") == "market"
    languages = {e.language for e in taxonomy.examples()}
    assert {"en", "zh-Hans", "zh-Hant", "pl", "de", "es", "fr"} <= languages
    for name in taxonomy.sub_reason_names:
        assert taxonomy.sub_reason(name).examples, f"{name} has no seed examples"


def test_valid_text_loads():
    taxonomy = Taxonomy.from_yaml(VALID)
    assert taxonomy.sub_reason_names == ["bugs", "too_expensive", "slow_response", "needs_changed", "unclear"]
    assert [e.text for e in taxonomy.examples()] == ["it crashes"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("owner: engineering", "owner: Engineering Team"),
            r"line 8: categories\.product\.sub_reasons\.bugs\.owner: String should match",
        ),
        (
            (
                "voluntary: true\n        influenceable: true\n        examples",
                "voluntary: maybe\n        influenceable: true\n        examples",
            ),
            r"line 9: categories\.product\.sub_reasons\.bugs\.voluntary: Input should be a valid boolean",
        ),
        (
            ("        owner: engineering\n", ""),
            r"line 6: categories\.product\.sub_reasons\.bugs\.owner: Field required",
        ),
        (("  market:", "  markets:"), r"markets"),
        (('en: ["it crashes"]', 'english: ["it crashes"]'), r"not a language tag"),
        (
            ("        description: Bugs.", "        description: Bugs.\n        colour: red"),
            r"line 8: categories\.product\.sub_reasons\.bugs\.colour: Extra inputs",
        ),
        (("      unclear:", "      bugs:"), r"'bugs' appears under both 'product' and 'other'"),
    ],
)
def test_invalid_taxonomy_names_the_key_and_line(change, expected):
    old, new = change
    assert old in VALID
    with pytest.raises(TaxonomyError, match=expected):
        Taxonomy.from_yaml(VALID.replace(old, new, 1), source="t.yaml")


def test_duplicate_key_is_refused_with_its_line():
    text = VALID.replace("  other:\n", "  pricing:\n    description: again\n  other:\n", 1)
    with pytest.raises(TaxonomyError, match=r"line \d+: categories\.pricing: duplicate key"):
        Taxonomy.from_yaml(text)


def test_broken_yaml_and_missing_file():
    with pytest.raises(TaxonomyError, match="not valid YAML"):
        Taxonomy.from_yaml("version: 1\ncategories: [unclosed")
    with pytest.raises(TaxonomyError, match="cannot read taxonomy file"):
        Taxonomy.load("/nonexistent/taxonomy.yaml")


def test_to_yaml_round_trips():
    taxonomy = Taxonomy.load(SHIPPED)
    assert Taxonomy.from_yaml(taxonomy.to_yaml()) == taxonomy
