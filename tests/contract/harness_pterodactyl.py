"""The shared server contract suite's view of Pterodactyl."""

from __future__ import annotations

import copy
from typing import Any

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
                "settings": {
                    "location_ids": ["1"],
                    "nest_id": "1",
                    "egg_id": "5",
                    "memory": "1024",
                    "swap": "0",
                    "disk": "5120",
                    "io": "500",
                    "cpu": "100",
                    "databases": "1",
                    "backups": "2",
                    "additional_allocations": "1",
                    "port_range": [],
                    "skip_scripts": "0",
                    "dedicated_ip": "0",
                    "start_on_completion": "1",
                    "oom_killer": "0",
                },
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
