"""Connection config of the Stripe gateway, under Paymenter's field names (``api_base`` is ours)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr, field_validator

from extensions.base import Checkbox, ExtensionConfig, config_field, http_url

DEFAULT_API_BASE = "https://api.stripe.com"


def _blank_to_none(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


class StripeConfig(ExtensionConfig):
    stripe_secret_key: SecretStr = config_field(
        type="password", label="Secret key", description="Restricted (rk_) or secret (sk_) API key"
    )
    stripe_publishable_key: str = config_field(label="Publishable key", description="pk_…, given to Stripe.js")
    stripe_create_customers: Checkbox = config_field(
        False, type="boolean", label="Create customers", description="Send address, phone and company to Stripe"
    )
    stripe_webhook_secret: Annotated[SecretStr | None, BeforeValidator(_blank_to_none)] = config_field(
        None, type="password", label="Webhook secret", description="whsec_… of the webhook endpoint"
    )
    api_base: str = config_field(
        DEFAULT_API_BASE, label="API base", description="Stripe API address (a test double in development)"
    )

    @field_validator("stripe_secret_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("stripe_publishable_key")
    @classmethod
    def _publishable(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("api_base")
    @classmethod
    def _base(cls, value: str) -> str:
        # The library adds /v1 to every path itself.
        return http_url(value.strip().rstrip("/").removesuffix("/v1"))
