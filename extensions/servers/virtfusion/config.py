"""Connection config and product settings of the VirtFusion integration, under Paymenter's names."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from extensions.base import BaseUrl, ExtensionConfig, OptionalInt, config_field

OVERRIDE = "Config-option override; applies only when listed in overridable_settings"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _split(value: Any) -> Any:
    if _blank(value):
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


StrList = Annotated[list[str], BeforeValidator(_split)]
Positive = Annotated[int, Field(ge=1)]
OptionalCount = Annotated[Annotated[int, Field(ge=0)] | None, BeforeValidator(lambda v: None if _blank(v) else v)]


class VirtFusionConfig(ExtensionConfig):
    host: BaseUrl = config_field(label="Hostname", description="Control panel URL, e.g. https://cp.example.com")
    apikey: SecretStr = config_field(type="password", label="API key", description="System -> API -> Create Token")


class VirtFusionProduct(BaseModel):
    """Product settings (``getProductConfig``) plus the config options Paymenter documents for VirtFusion."""

    model_config = ConfigDict(extra="ignore")

    package: Positive = config_field(type="select", label="Package")
    hypervisor: Positive = config_field(type="select", label="Hypervisor group")
    ipv4: Positive = config_field(type="number", label="IPv4 addresses")
    operating_system: OptionalInt = config_field(
        None, type="select", label="OS template", description="Installed after create; empty: no OS install"
    )
    delete_delay: Annotated[int, Field(ge=0, le=43799)] = config_field(
        0, type="number", label="Delete delay (minutes)", description="VirtFusion waits this long before deleting"
    )
    packageId: OptionalInt = config_field(None, type="number", label="Package id", description=OVERRIDE)
    hypervisorId: OptionalInt = config_field(None, type="number", label="Hypervisor group id", description=OVERRIDE)
    storage: OptionalCount = config_field(None, type="number", label="Storage (GB)", description=OVERRIDE)
    memory: OptionalCount = config_field(None, type="number", label="Memory (MB)", description=OVERRIDE)
    traffic: OptionalCount = config_field(None, type="number", label="Traffic (GB; 0 unlimited)", description=OVERRIDE)
    networkSpeedInbound: OptionalCount = config_field(None, type="number", label="Inbound kB/s", description=OVERRIDE)
    networkSpeedOutbound: OptionalCount = config_field(None, type="number", label="Outbound kB/s", description=OVERRIDE)
    cpuCores: OptionalCount = config_field(None, type="number", label="CPU cores", description=OVERRIDE)
    networkProfile: OptionalInt = config_field(None, type="number", label="Network profile id", description=OVERRIDE)
    storageProfile: OptionalInt = config_field(None, type="number", label="Storage profile id", description=OVERRIDE)
    overridable_settings: StrList = config_field([], label="Settings a config option may override")

    @property
    def package_id(self) -> int:
        return self.packageId or self.package
