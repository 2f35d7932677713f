"""Connection config and product settings of the cPanel/WHM integration, under Paymenter's names."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, StringConstraints, field_validator

from extensions.base import ExtensionConfig, OptionalStr, config_field


def _split(value: Any) -> Any:
    """A list as Paymenter may store it: an array or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


StrList = Annotated[list[str], BeforeValidator(_split)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class CPanelConfig(ExtensionConfig):
    host: str = config_field(label="Host", description="WHM URL with port, e.g. https://whm.example.com:2087")
    username: Name = config_field(label="Username", description="WHM user owning the API token (root or a reseller)")
    apikey: SecretStr = config_field(type="password", label="API token")
    ca_file: OptionalStr = config_field(
        None,
        label="CA file",
        description="PEM file trusted for a self-signed WHM certificate (verification is never turned off)",
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if "://" not in value:  # Paymenter's docs show "whm.example.com:2087": WHM on 2087 speaks TLS
            value = f"https://{value}"
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value


class CPanelProduct(BaseModel):
    """Product settings (``getProductConfig``)."""

    model_config = ConfigDict(extra="ignore")

    package: Name = config_field(type="select", label="Package", description="WHM package (plan) of the account")
    overridable_settings: StrList = config_field(
        [], label="Settings a config option may override", description="e.g. package"
    )
