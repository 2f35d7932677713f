"""The shared server contract suite's view of cPanel/WHM."""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.base import FakeProvider
from tests.fakes.cpanel import FakeWhm


def _fake(fake: FakeProvider) -> FakeWhm:
    assert isinstance(fake, FakeWhm)
    return fake


def _domain(service_id: int) -> str:
    return f"site{service_id}.example.com"


class CPanelHarness:
    slug = "cpanel"
    secret = "WHMCONTRACTTOKEN0123456789ABCDEF"
    create_call = r"POST /json-api/createacct$"
    any_call = r"GET /json-api/listaccts$"

    def make_fake(self) -> FakeWhm:
        return FakeWhm(token=self.secret)

    def config(self, base_url: str) -> dict[str, Any]:
        return {"host": base_url, "username": "root", "apikey": self.secret}

    def service(self, service_id: int) -> dict[str, Any]:
        return {
            "id": service_id,
            "user": {"id": 42, "email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"},
            "product": {"id": 3, "name": "Web Hosting Basic", "settings": {"package": "basic"}},
            "properties": {"domain": _domain(service_id)},
        }

    def resources(self, fake: FakeProvider, service_id: int) -> int:
        return len(_fake(fake).on_domain(_domain(service_id)))

    def is_suspended(self, fake: FakeProvider, service_id: int) -> bool:
        accounts = _fake(fake).on_domain(_domain(service_id))
        return bool(accounts) and accounts[0]["suspended"] == 1

    def upgrade_service(self, service: dict[str, Any]) -> dict[str, Any]:
        upgraded = copy.deepcopy(service)
        upgraded["product"]["settings"]["package"] = "pro"
        return upgraded

    def is_upgraded(self, fake: FakeProvider, service_id: int) -> bool:
        accounts = _fake(fake).on_domain(_domain(service_id))
        return bool(accounts) and accounts[0]["plan"] == "pro"


HARNESS = CPanelHarness()
