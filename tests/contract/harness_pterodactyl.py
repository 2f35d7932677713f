"""The shared server contract suite's view of Pterodactyl."""

from __future__ import annotations

import copy
from typing import Any

from tests.extensions.test_pterodactyl import PRODUCT_SETTINGS
from tests.fakes.base import FakeProvider
from tests.fakes.pterodactyl import FakePterodactyl


def _fake(fake: FakeProvider) -> FakePterodactyl:
    assert isinstance(fake, FakePterodactyl)
    return fake


class PterodactylHarness:
    slug = "pterodactyl"
    secret = "ptla_contractsecret123456"
    create_call = r"POST /api/application/servers$"
    any_call = r"GET /api/application/servers/external/"

    def make_fake(self) -> FakePterodactyl:
        return FakePterodactyl(api_key=self.secret)

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
            "product": {
                "id": 7,
                "name": "Minecraft 2G",
                "settings": {**PRODUCT_SETTINGS, "port_range": []},
            },
            "properties": {},
        }

    def resources(self, fake: FakeProvider, service_id: int) -> int:
        return len(_fake(fake).servers_for(service_id))

    def is_suspended(self, fake: FakeProvider, service_id: int) -> bool:
        servers = _fake(fake).servers_for(service_id)
        return bool(servers) and servers[0]["status"] == "suspended"

    def upgrade_service(self, service: dict[str, Any]) -> dict[str, Any]:
        upgraded = copy.deepcopy(service)
        upgraded["product"]["settings"].update(memory="2048", disk="10240")
        return upgraded

    def is_upgraded(self, fake: FakeProvider, service_id: int) -> bool:
        servers = _fake(fake).servers_for(service_id)
        return bool(servers) and servers[0]["limits"]["memory"] == 2048 and servers[0]["limits"]["disk"] == 10240


HARNESS = PterodactylHarness()
