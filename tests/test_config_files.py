"""The one loader of hand-edited YAML files: `file, line N: dotted.key: message` for every kind of file."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from reason_classifier.config_files import load, parse_yaml, read_yaml
from reason_classifier.discovery.review_file import ReviewError
from reason_classifier.errors import ConfigError, ReasonClassifierError, TaxonomyError
from reason_classifier.service.offers import OffersConfig, OffersError
from reason_classifier.service.settings import ServiceSettings, SettingsError


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    sizes: list[int]


def test_every_config_error_is_a_config_error_of_the_project():
    for error in (TaxonomyError, ReviewError, OffersError, SettingsError):
        assert issubclass(error, ConfigError) and issubclass(error, ReasonClassifierError)


def test_a_problem_is_named_by_file_line_and_dotted_key(tmp_path):
    path = tmp_path / "limits.yaml"
    path.write_text("name: small\nsizes:\n  - 1\n  - two\ncolour: red\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load(_Limits, path, what="limits file")
    message = str(error.value)
    assert message.startswith("invalid limits file:\n  ")
    assert f"{path}, line 4: sizes.1: Input should be a valid integer" in message
    assert f"{path}, line 5: colour: Extra inputs are not permitted" in message


def test_repeated_keys_invalid_yaml_and_a_wrong_top_level_are_refused_with_the_given_error(tmp_path):
    with pytest.raises(OffersError, match=r"f.yaml, line 3: a\.b: duplicate key"):
        parse_yaml("a:\n  b: 1\n  b: 2\n", "f.yaml", error=OffersError)
    with pytest.raises(ConfigError, match="f.yaml: not valid YAML"):
        parse_yaml("a: [1,\n", "f.yaml")
    with pytest.raises(ConfigError, match="f.yaml: expected a list of things"):
        parse_yaml("- 1\n", "f.yaml", expected="a list of things")
    assert parse_yaml("", "f.yaml", empty=True).data == {}
    with pytest.raises(ConfigError, match="cannot read limits file"):
        read_yaml(tmp_path / "missing.yaml", what="limits file")


def test_offers_errors_give_the_line(tmp_path):
    path = tmp_path / "offers.yaml"
    path.write_text(
        "offers:\n  none:\n    kind: nothing_at_all\n    message: hi\ndefault_offer: none\n", encoding="utf-8"
    )
    with pytest.raises(OffersError, match=rf"{path}, line 3: offers\.none\.kind: "):
        OffersConfig.load(path)


def test_a_setting_from_the_file_gives_its_line_and_one_from_the_environment_its_name(tmp_path, monkeypatch):
    path = tmp_path / "service.yaml"
    path.write_text("log_level: info\nmax_batch_items: 0\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=rf"{path}, line 2: max_batch_items: "):
        ServiceSettings.load(path)
    monkeypatch.setenv("REASON_CLASSIFIER_SERVICE_MAX_BATCH_ITEMS", "-1")
    with pytest.raises(SettingsError) as error:
        ServiceSettings.load(path)
    assert "\n  max_batch_items: " in str(error.value) and "line 2" not in str(error.value)
