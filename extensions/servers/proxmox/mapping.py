"""Pure request builders and response parsers for the Proxmox VE API (no I/O here)."""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from extensions.errors import ProviderRejected
from extensions.http import ApiRequest, ApiResponse, default_error_message
from extensions.servers.proxmox.config import ProxmoxProduct

MARKER = "paymenter-svc-"
IP_TAG = "ip-"
BUILDING = ("create", "clone")
TRANSIENT = re.compile(r"locked|got timeout|timed out|try again", re.IGNORECASE)
ALREADY = r"already running|not running"  # the power state asked for already holds
EXISTS = r"already exists"
GONE = r"Configuration file '[^']*' does not exist"
HOSTNAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
SIZE = re.compile(r"(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)")
GIB = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0, "": 1 / 1024**3}
BUSES = ("scsi", "virtio", "sata", "ide")


@dataclass(frozen=True)
class Guest:
    vmid: int
    node: str
    type: str
    tags: frozenset[str] = frozenset()

    @property
    def path(self) -> str:
        return f"/nodes/{self.node}/{self.type}/{self.vmid}"


# --- identity ---------------------------------------------------------------------------------------


def marker(service_id: int | str) -> str:
    """The tag (and description word) naming a service's guest; PVE tags are [a-z0-9_+.-]."""
    return MARKER + re.sub(r"[^a-z0-9_.+-]", "-", str(service_id).lower())


def tag_set(value: Any) -> frozenset[str]:
    return frozenset(t for t in re.split(r"[;,\s]+", str(value or "").lower()) if t)


def owns(config: dict[str, Any], mark: str) -> bool:
    return mark in tag_set(config.get("tags")) or mark in str(config.get("description") or "").split()


def pick(guests: list[Guest], mark: str, hint: int | None = None) -> Guest | None:
    """The guest tagged ``mark``; else the one at ``hint`` (a stored vmid) unless another service's."""
    for guest in guests:
        if mark in guest.tags:
            return guest
    for guest in guests:
        if guest.vmid == hint and not any(t.startswith(MARKER) for t in guest.tags):
            return guest
    return None


def hostname(value: Any, service_id: int | str) -> str:
    text = str(value or "").strip().lower().rstrip(".")
    return text if HOSTNAME.fullmatch(text) else f"service-{marker(service_id).removeprefix(MARKER)}"


def tagged_ip(guest: Guest) -> str:
    return next((t.removeprefix(IP_TAG) for t in guest.tags if t.startswith(IP_TAG)), "")


def free_ip(pool: list[str], guests: list[Guest]) -> str:
    used = {t.removeprefix(IP_TAG) for g in guests for t in g.tags if t.startswith(IP_TAG)}
    for item in pool:
        if item.split("/")[0] not in used:
            return item
    raise ProviderRejected("proxmox: no more IPs available in the product's pool")


def needs_password(s: ProxmoxProduct) -> bool:
    """LXC root password at create; cloud-init ``cipassword`` for QEMU (a clone of a LXC keeps its own)."""
    return (s.type == "lxc" and not s.clone) or (s.type == "qemu" and (s.cloudinit or s.clone))


def random_password(length: int = 20) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


# --- requests ---------------------------------------------------------------------------------------


def _form(values: dict[str, Any]) -> dict[str, Any]:
    """Form body without unset values; booleans as PVE's 0/1."""
    return {k: int(v) if isinstance(v, bool) else v for k, v in values.items() if v not in (None, "")}


def nodes() -> ApiRequest:
    return ApiRequest("GET", "/nodes")


def resources() -> ApiRequest:
    return ApiRequest("GET", "/cluster/resources", params={"type": "vm"})


def next_id() -> ApiRequest:
    return ApiRequest("GET", "/cluster/nextid")


def _net(s: ProxmoxProduct, ip: str | None) -> str | None:
    if s.nonetwork:
        return None
    head = "name=eth0" if s.type == "lxc" else s.model
    parts = [head, f"bridge={s.bridge}", "firewall=1" if s.firewall else None]
    parts += [f"tag={s.vlantag}" if s.vlantag else None, f"rate={s.network_limit:g}" if s.network_limit else None]
    if ip:
        parts += [f"ip={ip if '/' in ip else ip + '/24'}", f"gw={s.gateway}" if s.gateway else None]
    return ",".join(p for p in parts if p)


def create(s: ProxmoxProduct, vmid: int, name: str, mark: str, password: str | None, ip: str | None) -> ApiRequest:
    """``POST /nodes/{node}/{type}``: disks allocated at the product's size, tagged with the marker."""
    storage = s.storage or "local"
    tags = ";".join([mark] + ([IP_TAG + ip.split("/")[0]] if ip else []))
    body: dict[str, Any] = {
        "vmid": vmid,
        "cores": s.cores,
        "memory": s.memory,
        "onboot": 1,
        "tags": tags,
        "description": f"{name}\n{mark}",
        "pool": s.pool,
        "net0": _net(s, ip),
    }
    if s.type == "lxc":
        body |= {"hostname": name, "ostemplate": s.template, "ostype": s.ostypelxc, "password": password}
        body |= {"rootfs": f"{storage}:{s.disk}", "swap": s.swap, "unprivileged": s.unprivileged}
        body["features"] = "nesting=1" if s.nesting else None
    else:
        disk = f"{storage}:{s.disk}" + (f",format={s.storageFormat}" if s.storageFormat else "")
        body |= {"name": name, "sockets": s.sockets, "agent": 1, "ostype": s.ostype, "cpu": s.cputype}
        body |= {"vcpus": s.vcpu, f"{s.storageType}0": disk + (f",cache={s.cache}" if s.cache else "")}
        body["ide2"] = f"{s.iso},media=cdrom" if s.os == "iso" and s.iso else None
        if s.cloudinit:  # its own drive next to the system disk, clear of the ISO on ide2
            body |= {"ide3": f"{storage}:cloudinit", "cipassword": password}
    return ApiRequest("POST", f"/nodes/{s.node}/{s.type}", form=_form(body))


def clone(s: ProxmoxProduct, vmid: int, name: str, mark: str) -> ApiRequest:
    """A full clone of ``vmId``; the marker rides in the description until tags can be set."""
    body = {"newid": vmid, "full": 1, "pool": s.pool, "storage": s.storage, "description": f"{name}\n{mark}"}
    body["hostname" if s.type == "lxc" else "name"] = name
    return ApiRequest("POST", f"/nodes/{s.node}/{s.type}/{s.vmId}/clone", form=_form(body))


def clone_settings(s: ProxmoxProduct, mark: str, password: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"cores": s.cores, "memory": s.memory, "onboot": 1, "tags": mark}
    if s.type == "lxc":
        body["swap"] = s.swap
    else:
        body["cipassword"] = password
    return body


def sizing(s: ProxmoxProduct, kind: str) -> dict[str, Any]:
    return {"cores": s.cores, "memory": s.memory, "swap": s.swap if kind == "lxc" else None}


def get_config(guest: Guest) -> ApiRequest:
    return ApiRequest("GET", f"{guest.path}/config")


def set_config(guest: Guest, values: dict[str, Any]) -> ApiRequest:
    return ApiRequest("PUT", f"{guest.path}/config", form=_form(values))


def current(guest: Guest) -> ApiRequest:
    return ApiRequest("GET", f"{guest.path}/status/current")


def power(guest: Guest, action: str) -> ApiRequest:
    return ApiRequest("POST", f"{guest.path}/status/{action}")


def destroy(guest: Guest) -> ApiRequest:
    return ApiRequest("DELETE", guest.path, params={"purge": 1, "destroy-unreferenced-disks": 1})


def resize(guest: Guest, disk: str, gib: int) -> ApiRequest:
    return ApiRequest("PUT", f"{guest.path}/resize", form={"disk": disk, "size": f"{gib}G"})


def task_status(upid: str) -> ApiRequest:
    return ApiRequest("GET", f"/nodes/{upid.split(':')[1]}/tasks/{quote(upid, safe='')}/status")


# --- parsers ----------------------------------------------------------------------------------------


def parse_guests(data: Any) -> list[Guest]:
    if not isinstance(data, list):
        raise ProviderRejected("proxmox returned an unexpected cluster resource list")
    return [
        Guest(int(r["vmid"]), str(r["node"]), str(r["type"]), tag_set(r.get("tags")))
        for r in data
        if isinstance(r, dict) and r.get("type") in ("qemu", "lxc") and not r.get("template")
    ]


def vmid(data: Any) -> int:
    if not str(data).isdigit():
        raise ProviderRejected("proxmox returned an unexpected next VM id")
    return int(data)


def upid(data: Any) -> str | None:
    """The task id a call returned; None when the call finished synchronously."""
    return data if isinstance(data, str) and data.startswith("UPID:") else None


def task_kind(upid: str) -> str:
    parts = upid.split(":")
    return f"{parts[5]} {parts[6]}" if len(parts) > 6 else "task"


def task_outcome(data: Any) -> str | None:
    """None while the task runs, else its exit status."""
    if not isinstance(data, dict) or data.get("status") != "stopped":
        return None
    return str(data.get("exitstatus") or "unknown")


def task_ok(exitstatus: str) -> bool:
    return exitstatus == "OK" or exitstatus.startswith("WARNINGS")


def main_disk(kind: str, config: dict[str, Any]) -> tuple[str, float]:
    """The system disk (boot order, legacy ``bootdisk``, then the first bus) and its size in GiB."""
    if kind == "lxc":
        key: str | None = "rootfs"
    else:
        boot = str(config.get("boot") or "")
        order = boot.removeprefix("order=").split(",")[0].split(";") if boot.startswith("order=") else []
        candidates = [*order, str(config.get("bootdisk") or ""), *(f"{bus}0" for bus in BUSES)]
        key = next((k for k in candidates if _is_disk(config.get(k))), None)
    found = SIZE.search(str(config.get(key) or "")) if key else None
    if key is None or found is None:
        raise ProviderRejected("proxmox: the guest has no system disk with a known size")
    return key, float(found.group(1)) * GIB[found.group(2)]


def _is_disk(value: Any) -> bool:
    return isinstance(value, str) and "media=cdrom" not in value and "cloudinit" not in value


def error_message(response: ApiResponse) -> str | None:
    """PVE's ``message`` plus its per-parameter ``errors``."""
    body = response.body
    if not isinstance(body, dict):
        return None
    parts = [str(body.get("message") or "").strip()]
    if isinstance(body.get("errors"), dict):
        parts += [f"{k}: {str(v).strip()}" for k, v in body["errors"].items()]
    return "; ".join(p for p in parts if p) or default_error_message(response)


def is_envelope(body: Any) -> bool:
    """A PVE answer (``{"data": ...}``), not a proxy's error page."""
    return isinstance(body, dict) and "data" in body
