"""The shared server contract suite's view of DirectAdmin."""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.base import FakeProvider
from tests.fakes.directadmin import FakeDirectAdmin


def _accounts(fake: FakeProvider, service_id: int) -> list[dict[str, str]]:
    assert isinstance(fake, FakeDirectAdmin)
    return fake.accounts_for(f"svc{service_id}.example.com")


class DirectAdminHarness:
    slug = "directadmin"
    secret = "da-contract-login-key-5f1c9e"
    create_call = r"POST /CMD_API_ACCOUNT_USER$"
    any_call = r"GET /CMD_API_SHOW_USER"  # SHOW_USER_CONFIG (or SHOW_USERS when no username is known)

    def make_fake(self) -> FakeDirectAdmin:
        return FakeDirectAdmin(admin="reseller", password=self.secret)  # toggling suspension, as old builds

    def config(self, base_url: str) -> dict[str, Any]:
        return {"host": base_url, "username": "reseller", "password": self.secret}

    def service(self, service_id: int) -> dict[str, Any]:
        return {
            "id": service_id,
            "user": {"id": 42, "email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"},
            "product": {"id": 3, "name": "Web Basic", "settings": {"package": "basic", "ip": "", "notify": "0"}},
            "properties": {"domain": f"svc{service_id}.example.com"},
        }

    def resources(self, fake: FakeProvider, service_id: int) -> int:
        return len(_accounts(fake, service_id))

    def is_suspended(self, fake: FakeProvider, service_id: int) -> bool:
        accounts = _accounts(fake, service_id)
        return bool(accounts) and accounts[0]["suspended"] == "yes"

    def upgrade_service(self, service: dict[str, Any]) -> dict[str, Any]:
        upgraded = copy.deepcopy(service)
        upgraded["product"]["settings"]["package"] = "pro"
        return upgraded

    def is_upgraded(self, fake: FakeProvider, service_id: int) -> bool:
        accounts = _accounts(fake, service_id)
        return bool(accounts) and accounts[0]["package"] == "pro"


HARNESS = DirectAdminHarness()
