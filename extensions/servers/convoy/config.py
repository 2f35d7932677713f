"""Connection config and product settings of the Convoy integration, under Paymenter's names."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from extensions.base import BaseUrl, Checkbox, ExtensionConfig, config_field


def _blank_to_none(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value or []


MIB = 1048576
Count = Annotated[int, Field(ge=0)]
OptionalCount = Annotated[Count | None, BeforeValidator(_blank_to_none)]


class ConvoyConfig(ExtensionConfig):
    host: BaseUrl = config_field(label="Convoy URL", description="Panel URL, e.g. https://convoy.example.com")
    api_key: SecretStr = config_field(type="password", label="API key", description="Application API token")


class ConvoyProduct(BaseModel):
    """Product settings (``getProductConfig``); Paymenter sends numbers as strings, parsed laxly."""

    model_config = ConfigDict(extra="ignore")

    cpu: Annotated[int, Field(ge=1)] = config_field(type="number", label="vCPU cores")
    ram: Annotated[int, Field(ge=16)] = config_field(type="number", label="Memory (MiB)")
    disk: Annotated[int, Field(ge=1)] = config_field(type="number", label="Disk (MiB)")
    bandwidth: OptionalCount = config_field(None, type="number", label="Bandwidth (MiB)", description="0 = unlimited")
    snapshot: Count = config_field(type="number", label="Snapshot limit")
    backups: Count = config_field(type="number", label="Backup limit")
    node: int = config_field(type="select", label="Node")
    auto_assign_ip: Checkbox = config_field(
        False, type="boolean", label="Auto assign IP", description="One IPv4 address when no count is set"
    )
    ipv4: OptionalCount = config_field(None, type="number", label="IPv4 addresses")
    ipv6: OptionalCount = config_field(None, type="number", label="IPv6 addresses")
    start_on_create: Checkbox = config_field(False, type="boolean", label="Start after installation")
    overridable_settings: Annotated[list[str], BeforeValidator(_split)] = config_field(
        [], label="Settings a config option may override"
    )

    def addresses_wanted(self) -> tuple[int, int]:
        """(IPv4, IPv6) counts; ``auto_assign_ip`` alone means one IPv4 address."""
        v4, v6 = self.ipv4 or 0, self.ipv6 or 0
        if self.auto_assign_ip and v4 == v6 == 0:
            v4 = 1
        return v4, v6

    def bandwidth_bytes(self) -> int | None:
        """Empty or 0 is unlimited (``null``) on create and upgrade alike."""
        return self.bandwidth * MIB if self.bandwidth else None
