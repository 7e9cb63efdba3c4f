"""Service settings from the environment: list settings as a JSON list, a comma list or one value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reason_classifier.service import ServiceSettings
from reason_classifier.service.settings import SettingsError
from service_process import REPOSITORY


@pytest.mark.parametrize(
    ("value", "keys"),
    [
        ("secret1", ["secret1"]),
        ("k1,k2", ["k1", "k2"]),
        (" k1 , k2 ", ["k1", "k2"]),
        ('["k1", "k2"]', ["k1", "k2"]),
        ('["a,b"]', ["a,b"]),
        ('"quoted"', ["quoted"]),
        ("", []),
    ],
)
def test_api_keys_from_the_environment_as_one_value_a_comma_list_or_json(monkeypatch, value, keys):
    """Observed: REASON_CLASSIFIER_SERVICE_API_KEYS=secret1 (or k1,k2) ended in a 60-line pydantic-settings
    traceback."""
    monkeypatch.setenv("REASON_CLASSIFIER_SERVICE_API_KEYS", value)
    assert ServiceSettings.load().api_keys == keys


def test_other_list_settings_read_the_same_way(monkeypatch):
    monkeypatch.setenv("REASON_CLASSIFIER_SERVICE_CORS_ORIGINS", "https://a.example,https://b.example")
    monkeypatch.setenv("REASON_CLASSIFIER_SERVICE_TRENDS_METADATA_KEYS", "contract")
    settings = ServiceSettings.load()
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.trends_metadata_keys == ["contract"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ('["k1", ', "api_keys: not valid JSON"),
        ('{"k": "v"}', "api_keys: Input should be a valid list"),
        ('["k1", 2]', "api_keys.1: Input should be a valid string"),
        ("k1,,k2", "api_keys: an API key must not be empty"),
    ],
)
def test_bad_api_keys_are_one_clear_line(monkeypatch, value, words):
    monkeypatch.setenv("REASON_CLASSIFIER_SERVICE_API_KEYS", value)
    with pytest.raises(SettingsError) as raised:
        ServiceSettings.load()
    problem = str(raised.value).splitlines()
    assert problem[0] == "invalid service settings:" and len(problem) == 2 and problem[1].strip().startswith(words)


def test_serve_refuses_bad_api_keys_in_one_line_without_a_traceback(monkeypatch):
    monkeypatch.setenv("REASON_CLASSIFIER_SERVICE_API_KEYS", "[oops")
    result = subprocess.run(
        [sys.executable, "-m", "reason_classifier.cli.main", "serve", "--port", "1"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert "api_keys: not valid JSON" in result.stderr + result.stdout


def test_a_setting_the_environment_cannot_decode_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("REASON_CLASSIFIER_SERVICE_WEBHOOKS", "{not json")
    with pytest.raises(SettingsError, match="webhooks") as raised:
        ServiceSettings.load()
    assert str(raised.value).startswith("invalid service settings") and "\n" not in str(raised.value)
