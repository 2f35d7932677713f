"""Connection config and product settings of the DirectAdmin integration, under Paymenter's names."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, StringConstraints, field_validator

from extensions.base import BaseUrl, Checkbox, ExtensionConfig, OptionalStr, config_field


def _names(value: Any) -> Any:
    """Paymenter may store a list as a comma-separated string."""
    return [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value or []


Login = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[^|\s]+$")]  # "|" means login-as
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class DirectAdminConfig(ExtensionConfig):
    host: BaseUrl = config_field(label="Host", description="Panel URL and port, e.g. https://da.example.com:2222")
    username: Login = config_field(label="Username", description="Admin or reseller that owns the accounts")
    password: SecretStr = config_field(type="password", label="Password", description="Its password or a Login Key")
    ca_file: OptionalStr = config_field(
        None, label="CA certificate file", description="PEM file to trust for a self-signed panel certificate"
    )

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError("must name an existing file")
        return value


class DirectAdminProduct(BaseModel):
    """Product settings (``getProductConfig``); ``package`` and ``ip`` may come from a config option."""

    model_config = ConfigDict(extra="ignore")

    package: Name = config_field(type="select", label="Package", description="A user package (not a reseller one)")
    ip: OptionalStr = config_field(None, type="select", label="IP", description="Empty: the first reseller IP")
    notify: Checkbox = config_field(False, type="boolean", label="Also send DirectAdmin's own welcome e-mail")
    overridable_settings: Annotated[list[str], BeforeValidator(_names)] = config_field(
        [], label="Settings a config option may override", description="e.g. package,ip"
    )
