"""The shared server contract suite's view of Plesk."""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.base import FakeProvider
from tests.fakes.plesk import FakePlesk


def _fake(fake: FakeProvider) -> FakePlesk:
    assert isinstance(fake, FakePlesk)
    return fake


class PleskHarness:
    slug = "plesk"
    secret = "Plesk-Contract-Secret-8842"
    create_call = r"^POST /api/v2/domains$"
    any_call = r"^(GET|POST|PUT|DELETE) /api/v2/"

    def make_fake(self) -> FakePlesk:
        return FakePlesk(login="admin", password=self.secret)

    def config(self, base_url: str) -> dict[str, Any]:
        return {"host": base_url, "username": "admin", "password": self.secret}

    def service(self, service_id: int) -> dict[str, Any]:
        return {
            "id": service_id,
            "user": {"id": 42, "email": "alice@example.com", "name": "Alice Liddell"},
            "product": {"id": 7, "name": "Web Starter", "settings": {"plan": "Default Domain"}},
            "properties": {"domain": f"site{service_id}.example.com"},
        }

    def resources(self, fake: FakeProvider, service_id: int) -> int:
        return len(_fake(fake).domains_of(service_id))

    def is_suspended(self, fake: FakeProvider, service_id: int) -> bool:
        domains = _fake(fake).domains_of(service_id)
        return bool(domains) and domains[0]["status"] == "suspended"

    def upgrade_service(self, service: dict[str, Any]) -> dict[str, Any]:
        upgraded = copy.deepcopy(service)
        upgraded["product"]["settings"]["plan"] = "Unlimited"
        return upgraded

    def is_upgraded(self, fake: FakeProvider, service_id: int) -> bool:
        domains = _fake(fake).domains_of(service_id)
        return bool(domains) and domains[0]["plan"] == "Unlimited"


HARNESS = PleskHarness()
