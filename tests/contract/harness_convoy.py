"""The shared server contract suite's view of Convoy."""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.base import FakeProvider
from tests.fakes.convoy import MIB, FakeConvoy

PRODUCT_SETTINGS = {
    "cpu": "2",
    "ram": "2048",
    "disk": "20480",
    "bandwidth": "",
    "snapshot": "1",
    "backups": "2",
    "node": "1",
    "auto_assign_ip": "0",
    "ipv4": "1",
    "ipv6": "0",
    "start_on_create": "1",
}


def _fake(fake: FakeProvider) -> FakeConvoy:
    assert isinstance(fake, FakeConvoy)
    return fake


class ConvoyHarness:
    slug = "convoy"
    secret = "convoy-contract-token-5f3a9c1e"
    create_call = r"POST /api/application/servers$"
    any_call = r"^[A-Z]+ /api/application/servers"  # every operation reads or changes a server first

    def make_fake(self) -> FakeConvoy:
        fake = FakeConvoy(api_key=self.secret)
        # Install and delete end on the first read after them, so the suite's count of re-schedules
        # holds only retries; the per-extension tests exercise the Pending polls.
        fake.install_reads = fake.delete_reads = 1
        return fake

    def config(self, base_url: str) -> dict[str, Any]:
        return {"host": base_url, "api_key": self.secret}

    def service(self, service_id: int) -> dict[str, Any]:
        return {
            "id": service_id,
            "user": {
                "id": 42,
                "email": "alice@example.com",
                "first_name": "Alice",
                "last_name": "Liddell",
                "name": "Alice Liddell",
            },
            "product": {"id": 9, "name": "VPS 2G", "settings": dict(PRODUCT_SETTINGS)},
            "properties": {"os": "t-ubuntu", "hostname": f"vps{service_id}.example.com"},
        }

    def resources(self, fake: FakeProvider, service_id: int) -> int:
        return len(_fake(fake).servers_for(service_id))

    def is_suspended(self, fake: FakeProvider, service_id: int) -> bool:
        servers = _fake(fake).servers_for(service_id)
        return bool(servers) and servers[0]["status"] == "suspended"

    def upgrade_service(self, service: dict[str, Any]) -> dict[str, Any]:
        upgraded = copy.deepcopy(service)
        upgraded["product"]["settings"].update(ram="4096", disk="40960", ipv4="2")
        return upgraded

    def is_upgraded(self, fake: FakeProvider, service_id: int) -> bool:
        servers = _fake(fake).servers_for(service_id)
        if len(servers) != 1:
            return False
        limits = servers[0]["limits"]
        ipv4 = _fake(fake).addresses_of(servers[0], "ipv4")
        return limits["memory"] == 4096 * MIB and limits["disk"] == 40960 * MIB and len(ipv4) == 2


HARNESS = ConvoyHarness()
