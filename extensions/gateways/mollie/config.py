"""Connection config of the Mollie gateway, under Paymenter's field name (``api_base`` is ours)."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr, field_validator

from extensions.base import ExtensionConfig, config_field, http_url

DEFAULT_API_BASE = "https://api.mollie.com"


class MollieConfig(ExtensionConfig):
    api_key: SecretStr = config_field(
        type="password",
        label="API key",
        description="Live (live_…) or test (test_…) API key from the Mollie dashboard; the prefix selects the mode",
    )
    api_base: str = config_field(
        DEFAULT_API_BASE, label="API base", description="Mollie API address (a test double in development)"
    )

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value().strip()
        if not key.startswith(("live_", "test_")) or len(key) < 10:
            raise ValueError("must be a Mollie API key starting with live_ or test_")
        return SecretStr(key)

    @field_validator("api_base")
    @classmethod
    def _base(cls, value: str) -> str:
        # Paths carry /v2 themselves.
        return http_url(value.strip().rstrip("/").removesuffix("/v2"))

    @property
    def mode(self) -> Literal["live", "test"]:
        return "live" if self.api_key.get_secret_value().startswith("live_") else "test"
