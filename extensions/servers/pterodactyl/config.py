"""Connection config and product settings of the Pterodactyl integration, under Paymenter's names."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
)

from extensions.base import BaseUrl, Checkbox, ExtensionConfig, OptionalInt, OptionalStr, config_field

CPU_PINNING = r"^[0-9]+(?:-[0-9]+)?(?:,[0-9]+(?:-[0-9]+)?)*$"
PORT_ARRAY = 'Egg variable -> port(s), e.g. {"SERVER_PORT":7777,"NONE":[7778,7779]}'


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _split(value: Any) -> Any:
    """A list as Paymenter may store it: an array, a JSON array string, a comma string or one value."""
    if _blank(value):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                raise ValueError("must be a list") from None
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, int | float):
        return [value]
    return value


def _json_object(value: Any) -> Any:
    if _blank(value) or value == {}:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("must be a JSON object") from None
        return value or None
    return value


Port = Annotated[int, Field(ge=1, le=65535)]
IntList = Annotated[list[int], BeforeValidator(_split)]
StrList = Annotated[list[str], BeforeValidator(_split)]
PortArray = Annotated[dict[str, Port | list[Port]] | None, BeforeValidator(_json_object)]
CpuPinning = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, pattern=CPU_PINNING)] | None,
    BeforeValidator(lambda v: None if _blank(v) else v),
]
NonNegative = Annotated[int, Field(ge=0)]


class PterodactylConfig(ExtensionConfig):
    host: BaseUrl = config_field(label="Host", description="Panel URL, e.g. https://panel.example.com")
    api_key: SecretStr = config_field(type="password", label="API key", description="Application key (ptla_)")


class PterodactylProduct(BaseModel):
    """Product settings (``getProductConfig``); Paymenter sends numbers as strings, parsed laxly."""

    model_config = ConfigDict(extra="ignore")

    location_ids: IntList = config_field([], type="select", label="Locations")
    node: OptionalInt = config_field(None, type="select", label="Node")
    nest_id: int = config_field(type="select", label="Nest")
    egg_id: int = config_field(type="select", label="Egg")
    memory: NonNegative = config_field(type="number", label="Memory (MiB)", description="0 = unlimited")
    swap: Annotated[int, Field(ge=-1)] = config_field(type="number", label="Swap (MiB)", description="-1 = any")
    disk: NonNegative = config_field(type="number", label="Disk (MiB)", description="0 = unlimited")
    io: Annotated[int, Field(ge=10, le=1000)] = config_field(500, type="number", label="Block IO weight")
    cpu: NonNegative = config_field(type="number", label="CPU limit (%)", description="100 = one thread")
    cpu_pinning: CpuPinning = config_field(None, label="CPU pinning", description="e.g. 0-1,3")
    databases: NonNegative = config_field(type="number", label="Databases")
    backups: NonNegative = config_field(type="number", label="Backups")
    additional_allocations: NonNegative = config_field(type="number", label="Additional allocations")
    port_array: PortArray = config_field(None, type="textarea", label="Port array", description=PORT_ARRAY)
    port_range: StrList = config_field([], label="Port ranges", description="e.g. 25565-25570")
    skip_scripts: Checkbox = config_field(False, type="boolean", label="Skip egg install script")
    dedicated_ip: Checkbox = config_field(False, type="boolean", label="Dedicated IP")
    start_on_completion: Checkbox = config_field(False, type="boolean", label="Start after install")
    oom_killer: Checkbox = config_field(False, type="boolean", label="Enable OOM killer")
    location: OptionalInt = config_field(None, type="number", label="Location (replaces Locations)")
    docker_image: OptionalStr = config_field(None, label="Docker image (overrides the egg's)")
    startup: OptionalStr = config_field(None, label="Startup command (overrides the egg's)")
    overridable_settings: StrList = config_field([], label="Settings a config option may override")

    @field_validator("port_array")
    @classmethod
    def _server_port(cls, value: dict[str, int | list[int]] | None) -> dict[str, int | list[int]] | None:
        if value is not None and value.get("SERVER_PORT") in (None, []):
            raise ValueError("must map SERVER_PORT to a port")
        return value
