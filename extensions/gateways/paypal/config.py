"""Connection config of the PayPal (REST) gateway under Paymenter's field names; ``api_base`` and
``company_name`` are ours (a test double or regional endpoint; the brand shown when vaulting)."""

from __future__ import annotations

from pydantic import SecretStr, field_validator

from extensions.base import Checkbox, ExtensionConfig, OptionalBaseUrl, OptionalStr, config_field

LIVE_BASE = "https://api-m.paypal.com"
SANDBOX_BASE = "https://api-m.sandbox.paypal.com"


class PayPalConfig(ExtensionConfig):
    client_id: str = config_field(label="Client ID", description="REST app client id (also given to the JS SDK)")
    client_secret: SecretStr = config_field(type="password", label="Client secret")
    webhook_id: str = config_field(label="Webhook ID", description="Id of the webhook in the developer dashboard")
    test_mode: Checkbox = config_field(False, type="boolean", label="Test mode", description="Use the sandbox")
    paypal_support_billing_agreements: Checkbox = config_field(
        False, type="boolean", label="Billing agreements", description="Let customers save their PayPal account"
    )
    api_base: OptionalBaseUrl = config_field(None, label="API base", description="Overrides the sandbox/live address")
    company_name: OptionalStr = config_field(None, label="Brand name", description="Shown when saving an account")

    @field_validator("client_id", "webhook_id")
    @classmethod
    def _required(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("client_secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return SecretStr(value.get_secret_value().strip())

    @property
    def base_url(self) -> str:
        return self.api_base or (SANDBOX_BASE if self.test_mode else LIVE_BASE)
