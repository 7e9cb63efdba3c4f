"""Settings of the HTTP service: defaults that work offline, overridable by environment or a YAML file.

Every setting reads `REASON_CLASSIFIER_SERVICE_<NAME>` from the environment; a YAML file of the same
names (lower case, without the prefix) is read from `REASON_CLASSIFIER_SERVICE_CONFIG` or the `serve`
command's `--config`. Precedence: explicit arguments, then environment, then the file, then defaults.
The model, threads, max_chars and detect_language fall back to the library's own settings
(`REASON_CLASSIFIER_MODEL`, ...), so one variable points every command and the service at a model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from reason_classifier.config import Settings as LibrarySettings
from reason_classifier.config_files import YamlDocument, read_yaml
from reason_classifier.errors import ConfigError
from reason_classifier.resources import package_path
from reason_classifier.webhooks import RetryPolicy, WebhookDestination

ENV_PREFIX = "REASON_CLASSIFIER_SERVICE_"
CONFIG_FILE_VARIABLE = f"{ENV_PREFIX}CONFIG"
DEFAULT_OFFERS_PATH = package_path("reason_classifier.service", "offers.yaml")


class SettingsError(ConfigError):
    """The service settings (environment or file) are invalid; the message names the setting."""


TextList = Annotated[list[str], NoDecode]
"""A list setting: in the environment a JSON list (`["k1","k2"]`), a comma list (`k1,k2`) or one value (`k1`)."""


class ServiceSettings(BaseSettings):
    """Typed settings of the service; docs/service.md (Settings) lists them with their defaults.

    model: model folder (None = the library setting, else the shipped default model);
    threads / max_chars / detect_language: as the library's settings (None = the library's value);
    offers: YAML file of save offers and alerts; store: '' (off), an SQLite file path or a database URL;
    store_spool: folder of the local journal every stored answer goes through ('' = beside an SQLite
    file, or under ~/.local/state for a URL); store_when_down: 'spool' (answer, and keep the rows in
    the spool until the database is back) or 'refuse' (503 store_unavailable while it is away);
    store_drain_seconds: at shutdown, how long the spool is written to the database before the
    process exits (the rest is written at the next start); store_retry_max_seconds: the longest
    pause between two tries while the database cannot be written; store_acknowledge: 'spooled'
    (answer once the rows are in the local spool: fastest, but a replica that is gone for good
    takes what its spool holds with it) or 'committed' (answer once they are in the database, for
    replicas over one database; 503 store_unavailable after store_acknowledge_timeout_seconds);
    max_batch_items: items per batch request; max_body_bytes: request body limit;
    predict_timeout_seconds: longest wait for the model before a 503; predict_threads: model calls run
    at once, in threads of the one process (`serve --workers`); api_keys: accepted keys
    (empty = no key needed); api_key_header: the header that carries one; cors_origins: origins
    allowed by CORS (empty = no CORS headers); log_level: 'debug' also logs answer texts and tracebacks;
    log_format: 'text' or 'json', one line per event either way (logs.py);
    header_timeout_seconds: a connection's request headers must be complete this long after it opened (or
    after its previous response), else it is closed; body_timeout_seconds: a request's body must have
    arrived this long after its headers, else 408 body_timeout; keep_alive_seconds: an idle keep-alive
    connection is closed after this; max_connections: open connections above this get 503 (server.py);
    trends_cache_seconds: how long a `/v1/trends` answer is reused for the same query (0 = never);
    trends_metadata_keys: keys of the stored metadata `/v1/trends` may segment by (`by=metadata.KEY`),
    besides plan, language and bands of mrr; never a key that identifies a customer;
    webhooks: team -> {url, secret, format (json or slack), include_text}: where that team's alerts are
    delivered, signed (needs `store`: alerts wait in its outbox; a team without one gets none);
    webhook_retry: {timeout_seconds, first_delay_seconds, max_delay_seconds, give_up_after_seconds} of
    deliveries (docs/retention.md).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    model: str | None = None
    threads: int | None = Field(default=None, ge=1)
    max_chars: int | None = Field(default=None, ge=1)
    detect_language: bool | None = None
    offers: Path = DEFAULT_OFFERS_PATH
    store: str = ""
    store_spool: str = ""
    store_when_down: Literal["spool", "refuse"] = "spool"
    store_drain_seconds: float = Field(default=10.0, ge=0)
    store_retry_max_seconds: float = Field(default=5.0, gt=0)
    store_acknowledge: Literal["spooled", "committed"] = "spooled"
    store_acknowledge_timeout_seconds: float = Field(default=10.0, gt=0)
    max_batch_items: int = Field(default=100, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    predict_timeout_seconds: float = Field(default=1.0, gt=0)
    max_predict_batch: int = Field(default=64, ge=1)
    predict_threads: int = Field(default=1, ge=1)
    api_keys: TextList = Field(default_factory=list)
    api_key_header: str = "X-API-Key"
    cors_origins: TextList = Field(default_factory=list)
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    keep_alive_seconds: int = Field(default=5, ge=1)
    max_connections: int = Field(default=500, ge=1)
    trends_cache_seconds: float = Field(default=60.0, ge=0)
    trends_metadata_keys: TextList = Field(default_factory=lambda: ["contract"])
    webhooks: dict[str, WebhookDestination] = Field(default_factory=dict)
    webhook_retry: RetryPolicy = Field(default_factory=RetryPolicy)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.lower()
        if value not in {"critical", "error", "warning", "info", "debug"}:
            raise ValueError(f"{value!r} is not one of critical, error, warning, info, debug")
        return value

    @field_validator("api_keys", "cors_origins", "trends_metadata_keys", mode="before")
    @classmethod
    def _list_from_text(cls, value: Any) -> Any:
        """Text (the environment, or one value in the file) as a list: JSON when it looks like JSON, else split on
        commas; a JSON value that is not a list of strings is left to the type check, which says so."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text[:1] in ("[", "{", '"'):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"not valid JSON ({error.msg} at character {error.pos}); give a JSON list of strings, "
                    "a comma-separated list, or one value"
                ) from None
            return [value] if isinstance(value, str) else value
        return [part.strip() for part in text.split(",")] if text else []

    @field_validator("api_keys")
    @classmethod
    def _no_empty_keys(cls, value: list[str]) -> list[str]:
        if any(not key.strip() for key in value):
            raise ValueError("an API key must not be empty")
        return value

    @model_validator(mode="after")
    def _webhooks_need_a_store(self) -> ServiceSettings:
        if self.webhooks and not self.store:
            raise ValueError("webhooks: alerts are delivered from the store's outbox; set `store` too")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlFile(settings_cls)

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> ServiceSettings:
        """Settings from arguments, environment and file, or a `SettingsError` naming the bad setting."""
        previous = os.environ.get(CONFIG_FILE_VARIABLE)
        try:
            if config_file is not None:
                os.environ[CONFIG_FILE_VARIABLE] = str(config_file)
            return cls(**overrides)
        except ValidationError as error:
            raise SettingsError("invalid service settings:\n  " + "\n  ".join(_describe(error, overrides))) from None
        except SourceError as error:  # a value the environment source could not decode; its cause says why
            raise SettingsError(f"invalid service settings: {error}") from None
        finally:
            if config_file is not None:
                if previous is None:
                    os.environ.pop(CONFIG_FILE_VARIABLE, None)
                else:
                    os.environ[CONFIG_FILE_VARIABLE] = previous

    def library(self) -> LibrarySettings:
        """The library settings with this service's overrides applied."""
        base = LibrarySettings()
        overrides = {
            name: getattr(self, name)
            for name in ("model", "threads", "max_chars", "detect_language")
            if getattr(self, name) is not None
        }
        return base.model_copy(update=overrides)


class _YamlFile(PydanticBaseSettingsSource):
    """Settings from the YAML file named by `REASON_CLASSIFIER_SERVICE_CONFIG`, if any."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        document = _settings_file()
        return {str(key).lower(): value for key, value in document.data.items()} if document else {}


def _settings_file() -> YamlDocument | None:
    """The YAML file named by `REASON_CLASSIFIER_SERVICE_CONFIG`, parsed, or None when there is none."""
    path = os.environ.get(CONFIG_FILE_VARIABLE)
    if not path:
        return None
    return read_yaml(
        path, error=SettingsError, what="service config", expected="a mapping of setting names to values", empty=True
    )


def _describe(error: ValidationError, overrides: dict[str, Any]) -> list[str]:
    """Each problem named where its value came from: `file, line N: key: ...` for the file, `key: ...` otherwise."""
    try:
        document = _settings_file()
    except SettingsError:
        document = None
    from_file = {str(key).lower(): key for key in document.data} if document else {}
    messages = []
    for problem in error.errors():
        location = tuple(problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        setting = str(location[0]) if location else ""
        in_environment = f"{ENV_PREFIX}{setting}".upper() in {name.upper() for name in os.environ}
        in_file = setting in from_file and setting not in overrides and not in_environment
        if document and in_file:
            where = document.where((from_file[setting], *location[1:]))
            messages.append(f"{where}: {'.'.join(map(str, location))}: {message}")
        else:
            messages.append(f"{'.'.join(map(str, location)) or '(file)'}: {message}")
    return messages
