"""Connection config of DiscordNotifications, under Paymenter's names (plus ``app_url`` and ``api_base``)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, SecretStr, field_validator

from extensions.base import ExtensionConfig, OptionalStr, config_field, http_url
from extensions.others.discord_notifications.mapping import PAYMENTER_EVENTS, event_type

DISCORD_HOSTS = frozenset({"discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"})
WEBHOOK_PATH = re.compile(r"^/api(?:/v\d+)?/webhooks/(\d{5,25})/([A-Za-z0-9._-]{10,200})/?$")
SNOWFLAKE = re.compile(r"^\d{5,25}$")
PING_TYPES = {"none": "None", "user": "User", "role": "Role"}


def _event_list(value: Any) -> Any:
    """Paymenter stores the multi-select as a JSON array string; accept that, a list or a comma string."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                raise ValueError("must be a JSON array of event labels") from None
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _http_url(value: str | None) -> str | None:
    return None if value is None else http_url(value)


class DiscordConfig(ExtensionConfig):
    webhook_url: SecretStr = config_field(
        type="password",
        label="Webhook URL",
        description="https://discord.com/api/webhooks/<id>/<token> (the token is a secret)",
    )
    ping_type: Annotated[Literal["none", "user", "role"] | None, BeforeValidator(lambda v: v or None)] = config_field(
        None, type="select", label="Ping type", options=PING_TYPES
    )
    ping_id: OptionalStr = config_field(None, label="Ping ID", description="ID of the user or role to mention")
    events: Annotated[list[str], BeforeValidator(_event_list)] = config_field(
        [],
        type="select",
        label="Events",
        description="Paymenter events to send; this worker's own events are chosen by [routes]",
        options={label: label for label in PAYMENTER_EVENTS.values()},
    )
    app_url: OptionalStr = config_field(None, label="App URL", description="Paymenter's URL, for admin links")
    api_base: OptionalStr = config_field(None, label="API base", description="Send to this base instead (tests)")

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: SecretStr) -> SecretStr:
        # The messages never echo the URL: it carries the token.
        parts = urlsplit(value.get_secret_value().strip())
        if parts.scheme != "https" or parts.hostname not in DISCORD_HOSTS:
            raise ValueError("must be an https Discord webhook URL (https://discord.com/api/webhooks/...)")
        if not WEBHOOK_PATH.match(parts.path) or parts.query or parts.fragment:
            raise ValueError("must have the shape /api/webhooks/<id>/<token> with no query")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("ping_id")
    @classmethod
    def _snowflake(cls, value: str | None) -> str | None:
        if value is not None and not SNOWFLAKE.match(value.strip()):
            raise ValueError("must be a Discord ID (digits)")
        return value.strip() if value else None

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        chosen = []
        for item in value:
            dotted = event_type(str(item))
            if dotted not in PAYMENTER_EVENTS:
                raise ValueError(f"unknown Paymenter event '{item}'")
            chosen.append(dotted)
        return chosen

    @field_validator("app_url", "api_base")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value)

    def webhook(self) -> tuple[str, str]:
        """``(webhook id, token)`` from the URL."""
        match = WEBHOOK_PATH.match(urlsplit(self.webhook_url.get_secret_value()).path)
        assert match is not None  # checked by the validator
        return match.group(1), match.group(2)
