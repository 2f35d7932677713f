"""The shared server contract suite's view of Virtualizor."""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.base import FakeProvider
from tests.fakes.virtualizor import FakeVirtualizor

API_KEY = "vzcontractkey4f8a2c9e1b7d"
API_PASS = "vzcontractpass9d1e6b3a"


def _fake(fake: FakeProvider) -> FakeVirtualizor:
    assert isinstance(fake, FakeVirtualizor)
    return fake


def _hostname(service_id: int) -> str:
    return f"vps{service_id}.example.com"


class VirtualizorHarness:
    slug = "virtualizor"
    secret = API_KEY
    create_call = r"POST /index\.php/addvs$"
    any_call = r"GET /index\.php/"

    def make_fake(self) -> FakeVirtualizor:
        return FakeVirtualizor(key=API_KEY, password=API_PASS)

    def config(self, base_url: str) -> dict[str, Any]:
        return {"key": API_KEY, "password": API_PASS, "ip": base_url.split("://", 1)[-1].split(":")[0]}

    def service(self, service_id: int) -> dict[str, Any]:
        return {
            "id": service_id,
            "user": {"id": 42, "email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"},
            "product": {"id": 7, "name": "KVM 1G", "settings": {"virt": "kvm", "planname": "KVM-1G"}},
            "properties": {"hostname": _hostname(service_id), "os": "100"},
        }

    def resources(self, fake: FakeProvider, service_id: int) -> int:
        return len(_fake(fake).vps_named(_hostname(service_id)))

    def is_suspended(self, fake: FakeProvider, service_id: int) -> bool:
        found = _fake(fake).vps_named(_hostname(service_id))
        return bool(found) and found[0]["suspended"] == "1"

    def upgrade_service(self, service: dict[str, Any]) -> dict[str, Any]:
        upgraded = copy.deepcopy(service)
        upgraded["product"]["settings"]["planname"] = "KVM-2G"
        return upgraded

    def is_upgraded(self, fake: FakeProvider, service_id: int) -> bool:
        found = _fake(fake).vps_named(_hostname(service_id))
        return bool(found) and found[0]["plid"] == "2" and found[0]["ram"] == "2048"


HARNESS = VirtualizorHarness()
