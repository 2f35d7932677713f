"""The shared server contract suite's view of VirtFusion."""

from __future__ import annotations

import copy
from typing import Any

from extensions.servers.virtfusion.mapping import MARKER, marker
from tests.fakes.base import FakeProvider
from tests.fakes.virtfusion import FakeVirtFusion


def _fake(fake: FakeProvider) -> FakeVirtFusion:
    assert isinstance(fake, FakeVirtFusion)
    return fake


class VirtFusionHarness:
    slug = "virtfusion"
    secret = "vf-contract-token-5up3r53cr3t"
    create_call = r"POST /api/v1/servers$"
    any_call = r"GET /api/v1/users/[^/]+/byExtRelation$"

    def make_fake(self) -> FakeVirtFusion:
        # The suite counts every re-schedule of a create, so the OS install finishes at once here; the
        # awaited install is covered by tests/extensions/test_virtfusion.py.
        return FakeVirtFusion(api_key=self.secret, build_reads=0)

    def config(self, base_url: str) -> dict[str, Any]:
        return {"host": base_url, "apikey": self.secret}

    def service(self, service_id: int) -> dict[str, Any]:
        return {
            "id": service_id,
            "user": {"id": 42, "email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"},
            "product": {
                "id": 7,
                "name": "VPS S",
                "settings": {"package": "1", "hypervisor": "1", "ipv4": "1", "operating_system": "7"},
            },
            "properties": {"hostname": f"vps{service_id}.example.com"},
        }

    def resources(self, fake: FakeProvider, service_id: int) -> int:
        """Servers named for the service, plus any server no service has claimed (a would-be duplicate)."""
        servers = _fake(fake).servers.values()
        return sum(1 for s in servers if s["name"] == marker(service_id) or not MARKER.match(s["name"]))

    def is_suspended(self, fake: FakeProvider, service_id: int) -> bool:
        return any(s["suspended"] for s in _fake(fake).named(marker(service_id)))

    def upgrade_service(self, service: dict[str, Any]) -> dict[str, Any]:
        upgraded = copy.deepcopy(service)
        upgraded["product"]["settings"]["package"] = "2"
        return upgraded

    def is_upgraded(self, fake: FakeProvider, service_id: int) -> bool:
        return [s["packageId"] for s in _fake(fake).named(marker(service_id))] == [2]


HARNESS = VirtFusionHarness()
