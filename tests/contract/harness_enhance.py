"""The shared contract suite's view of Enhance: one subscription per service, found by its marker."""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.base import FakeProvider
from tests.fakes.enhance import MASTER, FakeEnhance


def _fake(fake: FakeProvider) -> FakeEnhance:
    assert isinstance(fake, FakeEnhance)
    return fake


def _subscriptions(fake: FakeProvider, service_id: int) -> list[dict[str, Any]]:
    return _fake(fake).live_subscriptions(f"paymenter-service-{service_id}")


class EnhanceHarness:
    slug = "enhance"
    secret = "enh_contract_token_5b9f2c7d1e"
    create_call = r"^POST /api/orgs/[^/]+/customers/[^/]+/subscriptions$"
    any_call = r"^[A-Z]+ /api/"  # every call: each operation's first one gets the injected answer

    def make_fake(self) -> FakeEnhance:
        return FakeEnhance(api_key=self.secret)

    def config(self, base_url: str) -> dict[str, Any]:
        return {"host": base_url, "apikey": self.secret, "orgId": MASTER}

    def service(self, service_id: int) -> dict[str, Any]:
        return {
            "id": service_id,
            "user": {"id": 42, "email": "alice@example.com", "name": "Alice Liddell"},
            "product": {"id": 7, "name": "Web Hosting", "settings": {"plan": "1"}},
            "properties": {"domain": f"site{service_id}.example.com"},
        }

    def resources(self, fake: FakeProvider, service_id: int) -> int:
        return len(_subscriptions(fake, service_id))

    def is_suspended(self, fake: FakeProvider, service_id: int) -> bool:
        found = _subscriptions(fake, service_id)
        return bool(found) and found[0]["suspended"]

    def upgrade_service(self, service: dict[str, Any]) -> dict[str, Any]:
        upgraded = copy.deepcopy(service)
        upgraded["product"]["settings"]["plan"] = "2"
        return upgraded

    def is_upgraded(self, fake: FakeProvider, service_id: int) -> bool:
        found = _subscriptions(fake, service_id)
        return bool(found) and found[0]["planId"] == 2


HARNESS = EnhanceHarness()
