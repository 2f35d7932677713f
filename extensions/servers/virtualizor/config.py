"""Connection config, product settings and checkout inputs of the Virtualizor integration (Paymenter's names)."""

from __future__ import annotations

import re
import ssl
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, StringConstraints, field_validator

from extensions.base import ExtensionConfig, OptionalStr, config_field

PLAIN_HTTP_PORTS = frozenset({4082, 4084})  # Virtualizor's non-TLS end-user and admin ports
# A dotted hostname whose last label is not all digits (what Paymenter's checkout regex asks for).
HOSTNAME = r"^(?=.{1,255}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?![0-9]+\.?$)[A-Za-z0-9-]{1,63}\.?$"
HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")

Port = Annotated[int, Field(ge=1, le=65535)]
Amount = Annotated[
    Annotated[int, Field(ge=0)] | None, BeforeValidator(lambda v: None if isinstance(v, str) and not v.strip() else v)
]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [] if value is None else value


class VirtualizorConfig(ExtensionConfig):
    key: SecretStr = config_field(type="password", label="API Key", description="Configuration → Server Info → Key")
    password: SecretStr = config_field(type="password", label="API Password", description="Server Info → Key Pass")
    ip: str = config_field(label="IP Address", description="Master hostname or IP, without scheme or port")
    port: Port = config_field(4085, label="Port", description="Admin panel port: 4085 (HTTPS) or 4084 (HTTP)")
    client_port: Port = config_field(
        4083, label="Client Port (normally 4083)", description="End-user panel port for SSO: 4083 (HTTPS) or 4082"
    )
    ca_cert: OptionalStr = config_field(
        None,
        type="textarea",
        label="Trusted certificate (PEM)",
        description="The panel's self-signed certificate or its CA, naming the IP address; TLS is always verified",
    )

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        value = value.strip()
        if not HOST.fullmatch(value):
            raise ValueError("must be a bare hostname or IP address")
        return value

    @field_validator("ca_cert")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ssl.create_default_context(cadata=value)
            except (ssl.SSLError, ValueError):
                raise ValueError("must be a PEM certificate") from None
        return value

    def url(self, port: int) -> str:
        return f"{'http' if port in PLAIN_HTTP_PORTS else 'https'}://{self.ip}:{port}"

    def tls(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cadata=self.ca_cert) if self.ca_cert else None


class VirtualizorProduct(BaseModel):
    """Product settings; the plan's resources apply unless an override below is set (numbers arrive as strings)."""

    model_config = ConfigDict(extra="ignore")

    virt: str = config_field(type="select", label="Virtualization type", description="kvm, openvz, lxc, xen...")
    planname: str = config_field(type="select", label="Plan Name")
    ips: Amount = config_field(None, type="number", label="IPv4 addresses")
    ips6: Amount = config_field(None, type="number", label="IPv6 addresses")
    ips6_subnet: Amount = config_field(None, type="number", label="IPv6 subnets")
    ram: Amount = config_field(None, type="number", label="RAM (MB)")
    swap: Amount = config_field(None, type="number", label="Swap (MB)")
    space: Amount = config_field(None, type="number", label="Disk (GB)")
    bandwidth: Amount = config_field(None, type="number", label="Bandwidth (GB)", description="0 = unlimited")
    network_speed: Amount = config_field(None, type="number", label="Network speed (KB/s)")
    cpu: Amount = config_field(None, type="number", label="CPU weight")
    cores: Amount = config_field(None, type="number", label="CPU cores")
    cpu_percent: Amount = config_field(None, type="number", label="CPU limit (%)")
    vnc: Amount = config_field(None, type="number", label="VNC (1 on, 0 off)")
    osreinstall_limit: Amount = config_field(None, type="number", label="OS reinstall limit")
    overridable_settings: Annotated[list[str], BeforeValidator(_split)] = config_field(
        [], label="Settings a config option may override", description="e.g. ram,space,cores"
    )


class Checkout(BaseModel):
    """What the customer chose at checkout (``getCheckoutConfig``)."""

    model_config = ConfigDict(extra="ignore", regex_engine="python-re")  # HOSTNAME uses look-aheads

    hostname: Annotated[str, StringConstraints(strip_whitespace=True, pattern=HOSTNAME)]
    os: Annotated[int, Field(ge=1)]
