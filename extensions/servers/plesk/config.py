"""Connection config and product settings of the Plesk integration, under Paymenter's names."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SecretStr,
    StringConstraints,
    model_validator,
)

from extensions.base import BaseUrl, ExtensionConfig, config_field

NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class PleskConfig(ExtensionConfig):
    host: BaseUrl = config_field(label="Host", description="Panel URL with scheme, e.g. https://plesk.example.com:8443")
    username: str = config_field("", label="Username", description="Plesk administrator login")
    password: SecretStr = config_field(SecretStr(""), type="password", label="Password")
    api_key: Annotated[SecretStr | None, BeforeValidator(_blank_to_none)] = config_field(
        None, type="password", label="API key", description="Used instead of username/password (X-API-Key)"
    )

    @model_validator(mode="after")
    def _credentials(self) -> PleskConfig:
        if self.api_key is None and not (self.username.strip() and self.password.get_secret_value()):
            raise ValueError("username and password (or api_key) are required")
        return self


class PleskProduct(BaseModel):
    """Product settings (``getProductConfig``); ``overridable_settings`` is read by the base class."""

    model_config = ConfigDict(extra="ignore")

    plan: NonBlank = config_field(label="Plan", description="Exact name of an existing Plesk service plan")
