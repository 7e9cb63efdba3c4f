"""Where a team's alerts go: a webhook URL, the secret they are signed with, and the body's format."""

from __future__ import annotations

from enum import Enum
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

MIN_SECRET_CHARS = 16


class WebhookFormat(str, Enum):  # noqa: UP042 - StrEnum changes str() and f-strings of members (behaviour kept)
    json = "json"
    """The alert as JSON (`Alert`): for the team's own receiver."""
    slack = "slack"
    """`{"text": ...}`, which a Slack (or Mattermost, Teams workflow) incoming webhook posts as a message."""


class WebhookDestination(BaseModel):
    """One team's webhook. `include_text`: put the customer's answer in the alert (off by default: the text
    can name people; turn it on only for a receiver that may keep it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    secret: str = Field(min_length=MIN_SECRET_CHARS, repr=False)
    format: WebhookFormat = WebhookFormat.json
    include_text: bool = False

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value[:200]!r} is not an http:// or https:// URL")
        return value

    @field_validator("secret")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the secret must not be blank")
        return value
