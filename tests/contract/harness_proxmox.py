"""The shared server contract suite's view of Proxmox VE."""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.base import FakeProvider
from tests.fakes.proxmox import PRODUCT, SECRET, TOKEN_ID, FakeProxmox, size_gib


def _fake(fake: FakeProvider) -> FakeProxmox:
    assert isinstance(fake, FakeProxmox)
    return fake


class ProxmoxHarness:
    slug = "proxmox"
    secret = SECRET
    create_call = r"POST /api2/json/nodes/[^/]+/(qemu|lxc)$"
    any_call = r"GET /api2/json/cluster/resources$"

    def make_fake(self) -> FakeProxmox:
        return FakeProxmox(TOKEN_ID, self.secret)  # tasks take a few reads: the suite waits them out

    def config(self, base_url: str) -> dict[str, Any]:
        return {"host": base_url, "port": "8006", "username": TOKEN_ID, "password": self.secret}

    def service(self, service_id: int) -> dict[str, Any]:
        return {
            "id": service_id,
            "user": {"id": 42, "email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"},
            "product": {"id": 9, "name": "VPS 2G", "settings": {**PRODUCT, "cloudinit": "1"}},
            "properties": {"hostname": f"vps{service_id}.example.com"},
        }

    def resources(self, fake: FakeProvider, service_id: int) -> int:
        return len(_fake(fake).guests_for(service_id))

    def is_suspended(self, fake: FakeProvider, service_id: int) -> bool:
        guests = _fake(fake).guests_for(service_id)
        return bool(guests) and guests[0]["status"] == "stopped"

    def upgrade_service(self, service: dict[str, Any]) -> dict[str, Any]:
        upgraded = copy.deepcopy(service)
        upgraded["product"]["settings"].update(cores="4", memory="4096", disk="40")
        return upgraded

    def is_upgraded(self, fake: FakeProvider, service_id: int) -> bool:
        guests = _fake(fake).guests_for(service_id)
        config = guests[0]["config"] if guests else {}
        return config.get("memory") == "4096" and config.get("cores") == "4" and size_gib(config["scsi0"]) == 40


HARNESS = ProxmoxHarness()
