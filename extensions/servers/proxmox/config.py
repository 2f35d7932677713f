"""Connection config and product settings of the Proxmox VE integration, under Paymenter's names."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from extensions.base import Checkbox, ExtensionConfig, OptionalInt, OptionalStr, config_field

TOKEN_ID = r"^[^@\s]+@[^!\s]+![A-Za-z][A-Za-z0-9._-]*$"  # user@realm!tokenname


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _or(default: Any) -> Any:
    """Paymenter sends "" for an unset select: read it as the default."""
    return BeforeValidator(lambda v: default if _blank(v) else v)


def _list(value: Any) -> Any:
    return [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value or []


Positive = Annotated[int, Field(ge=1)]
# Values PVE joins into option strings ("bridge=vmbr0,firewall=1") or URLs: no separators to inject more.
Word = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[^,;=\s?#]+$")]
OptionalWord = Annotated[Word | None, _or(None)]
OptionalRate = Annotated[float | None, Field(gt=0), _or(None)]


class ProxmoxConfig(ExtensionConfig):
    host: str = config_field(label="Host", description="Scheme and hostname, e.g. https://pve.example.com")
    port: Annotated[int, Field(ge=1, le=65535)] = config_field(8006, label="Port")
    username: str = config_field(label="API token ID", description="user@realm!tokenname")
    password: SecretStr = config_field(type="password", label="API token secret")
    ca_file: OptionalStr = config_field(None, label="CA bundle", description="PEM file to trust a self-signed PVE")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.query:
            raise ValueError("must be an http(s) URL")
        if parts.path.strip("/"):
            raise ValueError("must be scheme and hostname only (no path)")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("username")
    @classmethod
    def _token_id(cls, value: str) -> str:
        value = value.strip()
        if not re.match(TOKEN_ID, value):
            raise ValueError("must be an API token id, user@realm!tokenname")
        return value

    @property
    def base_url(self) -> str:
        """A port written in ``host`` wins over the ``port`` field."""
        parts = urlsplit(self.host)
        netloc = parts.netloc if parts.port else f"{parts.netloc}:{self.port}"
        return f"{parts.scheme}://{netloc}/api2/json"


class ProxmoxProduct(BaseModel):
    """Product settings (``getProductConfig``); numbers arrive as strings, checkboxes as "1"/"0"."""

    model_config = ConfigDict(extra="ignore")

    node: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$")] = config_field(
        type="select", label="Node"
    )
    storage: OptionalWord = config_field(None, type="select", label="Storage", description="Default: local")
    pool: OptionalWord = config_field(None, type="select", label="Resource pool")
    type: Literal["qemu", "lxc"] = config_field(type="select", label="Type", options={"qemu": "QEMU", "lxc": "LXC"})
    cores: Positive = config_field(type="number", label="CPU cores")
    memory: Annotated[int, Field(ge=16)] = config_field(type="number", label="Memory (MiB)")
    disk: Positive = config_field(type="number", label="Disk (GiB)")
    network_limit: OptionalRate = config_field(None, type="number", label="Network limit (MB/s)")
    template: OptionalWord = config_field(None, type="select", label="LXC template")
    unprivileged: Checkbox = config_field(False, type="boolean", label="Unprivileged container")
    nesting: Checkbox = config_field(False, type="boolean", label="Nesting")
    ostypelxc: OptionalWord = config_field(None, type="select", label="LXC OS type")
    swap: Annotated[int, Field(ge=0), _or(512)] = config_field(512, type="number", label="Swap (MiB)")
    ips: Annotated[list[str], BeforeValidator(_list)] = config_field([], label="IPv4 pool", description="a, b/26")
    gateway: OptionalWord = config_field(None, label="Gateway")
    nonetwork: Checkbox = config_field(False, type="boolean", label="No network")
    bridge: Annotated[Word, _or("vmbr0")] = config_field("vmbr0", type="select", label="Bridge")
    model: Annotated[Literal["virtio", "e1000", "rtl8139", "vmxnet3"], _or("virtio")] = config_field(
        "virtio", type="select", label="NIC model"
    )
    vlantag: Annotated[OptionalInt, Field(ge=1, le=4094)] = config_field(None, type="number", label="VLAN tag")
    firewall: Checkbox = config_field(False, type="boolean", label="Firewall")
    os: Annotated[Literal["iso", "cdrom", "none"], _or("none")] = config_field("none", type="select", label="OS")
    iso: OptionalWord = config_field(None, type="select", label="ISO")
    cloudinit: Checkbox = config_field(False, type="boolean", label="Cloud-init drive")
    storageType: Annotated[Literal["ide", "sata", "scsi", "virtio"], _or("scsi")] = config_field(
        "scsi", type="select", label="Disk bus"
    )
    storageFormat: Annotated[Literal["raw", "qcow2", "vmdk"] | None, _or(None)] = config_field(
        None, type="select", label="Disk format"
    )
    cache: Annotated[Literal["none", "writethrough", "writeback", "unsafe", "directsync"] | None, _or(None)] = (
        config_field(None, type="select", label="Disk cache")
    )
    ostype: OptionalWord = config_field(None, type="select", label="QEMU OS type")
    cputype: OptionalWord = config_field(None, type="select", label="CPU model")
    vcpu: Annotated[OptionalInt, Field(ge=1)] = config_field(None, type="number", label="vCPUs")
    sockets: Annotated[Positive, _or(1)] = config_field(1, type="number", label="Sockets")
    clone: Checkbox = config_field(False, type="boolean", label="Clone a template")
    vmId: OptionalInt = config_field(None, type="number", label="Template VM ID")
    overridable_settings: Annotated[list[str], BeforeValidator(_list)] = config_field(
        [], label="Settings a config option may override"
    )

    @field_validator("ips")
    @classmethod
    def _ipv4(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.IPv4Interface(item)  # raises ValueError: "a.b.c.d" or "a.b.c.d/prefix"
        return value

    @model_validator(mode="after")
    def _source(self) -> ProxmoxProduct:
        if self.clone and self.vmId is None:
            raise ValueError("clone needs vmId (the template's VM id)")
        if self.type == "lxc" and not self.clone and not self.template:
            raise ValueError("an LXC container needs a template")
        return self
