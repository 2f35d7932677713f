"""Connection config of the PayPal IPN gateway, under Paymenter's field names (the URL overrides are ours)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, field_validator

from extensions.base import Checkbox, ExtensionConfig, config_field

CHECKOUT = {False: "https://www.paypal.com", True: "https://www.sandbox.paypal.com"}
POSTBACK = {False: "https://ipnpb.paypal.com/cgi-bin/webscr", True: "https://ipnpb.sandbox.paypal.com/cgi-bin/webscr"}


def _blank_to_none(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _http_url(value: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ValueError("must be an http(s) URL without a query")
    return value


OptionalUrl = Annotated[str | None, BeforeValidator(_blank_to_none)]


class PayPalIPNConfig(ExtensionConfig):
    email: str = config_field(label="PayPal e-mail", description="The merchant account's e-mail (receiver)")
    test_mode: Checkbox = config_field(False, type="boolean", label="Test mode", description="Use the sandbox")
    api_base: OptionalUrl = config_field(
        None, label="Checkout base", description="Host of /cgi-bin/webscr (default: PayPal's, by test mode)"
    )
    postback_url: OptionalUrl = config_field(
        None, label="Postback URL", description="IPN verification URL (default: PayPal's, by test mode)"
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        if "@" not in value or any(c.isspace() for c in value):
            raise ValueError("must be an e-mail address")
        return value

    @field_validator("api_base", "postback_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @property
    def checkout_url(self) -> str:
        return f"{self.api_base or CHECKOUT[self.test_mode]}/cgi-bin/webscr"

    @property
    def verify_url(self) -> str:
        return self.postback_url or POSTBACK[self.test_mode]
