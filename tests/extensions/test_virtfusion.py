"""VirtFusion's own quirks; the shared lifecycle/retry/redaction suite covers the rest."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from extensions.base import LocalContext, OperationResult, Service
from extensions.errors import (
    AuthFailed,
    InvalidConfig,
    InvalidPayload,
    NotFound,
    Pending,
    ProviderRejected,
    ProviderUnavailable,
)
from extensions.servers.virtfusion import VirtFusion
from extensions.servers.virtfusion import mapping as m
from extensions.servers.virtfusion.config import VirtFusionConfig
from tests.conftest import spec_for
from tests.fakes.virtfusion import FakeVirtFusion
from worker.errors import Reschedule
from worker.runtime import Delivery, Runtime

KEY = "vf-test-token-0123456789"
HOST = "https://cp.example.com"
SETTINGS = {"package": "1", "hypervisor": "1", "ipv4": "2", "operating_system": "7"}


@pytest.fixture
def fake() -> FakeVirtFusion:
    return FakeVirtFusion(api_key=KEY)


def panel(fake: FakeVirtFusion, key: str = KEY) -> VirtFusion:
    return VirtFusion({"host": HOST + "/", "apikey": key}, transport=fake.transport())


def service(
    service_id: int = 11, settings: dict[str, Any] | None = None, properties: dict[str, Any] | None = None
) -> Service:
    return Service.model_validate(
        {
            "id": service_id,
            "user": {"id": 5, "email": "alice@example.com", "name": "Alice Liddell"},
            "product": {"id": 3, "name": "VPS", "settings": {**SETTINGS, **(settings or {})}},
            "properties": properties or {},
        }
    )


def create(ext: VirtFusion, svc: Service, job: LocalContext | None = None, runs: int = 10) -> OperationResult:
    """Run create the way the runtime does: again after every ``Pending``."""
    job = job or LocalContext()
    for _ in range(runs):
        try:
            return ext.create(svc, job)
        except Pending:
            continue
    raise AssertionError("create still pending")


def only_server(fake: FakeVirtFusion, service_id: int = 11) -> dict[str, Any]:
    (server,) = fake.named(m.marker(service_id))
    assert len(fake.servers) == 1
    return server


# --- config -----------------------------------------------------------------------------------------


def test_config_uses_paymenter_names_and_hides_the_key() -> None:
    config = VirtFusionConfig.model_validate({"host": " https://cp.example.com/ ", "apikey": KEY})
    assert config.host == HOST
    assert KEY not in repr(config)
    fields = {f["name"]: f for f in VirtFusion.get_config()}
    assert fields["apikey"]["type"] == "password"
    with pytest.raises(InvalidConfig) as info:
        VirtFusion.parse_config({"host": "cp.example.com", "apikey": KEY})
    assert "host" in info.value.message
    assert KEY not in info.value.message


@pytest.mark.parametrize("bad", [{"ipv4": "0"}, {"package": ""}, {"memory": "-1"}, {"delete_delay": "43800"}])
def test_invalid_product_settings_are_invalid_payload(fake: FakeVirtFusion, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidPayload):
        panel(fake).create(service(settings=bad), LocalContext())
    assert fake.calls == []


def test_checkout_cannot_override_resources_unless_whitelisted(fake: FakeVirtFusion) -> None:
    """GHSA-5q4q-834j-g8g4: the PHP let any checkout property reach the create body."""
    props = {"memory": "65536", "cpuCores": "32", "packageId": "2", "ipv4": "9", "storage": "40"}
    create(panel(fake), service(settings={"overridable_settings": "storage,memory"}, properties=props))
    server = only_server(fake)
    assert server["packageId"] == 1
    assert server["resources"] == {"storage": 40, "memory": 65536}
    assert len(server["ipv4"]) == 2


# --- users ------------------------------------------------------------------------------------------


def test_existing_user_is_found_by_ext_relation_and_reused(fake: FakeVirtFusion) -> None:
    user = fake.add_user(5, "old-address@example.com")
    result = create(panel(fake), service())
    assert only_server(fake)["ownerId"] == user["id"]
    assert len(fake.users) == 1
    assert "panel_password" not in result.secrets


def test_new_user_gets_a_sealed_panel_password(fake: FakeVirtFusion) -> None:
    result = create(panel(fake), service())
    (user,) = fake.users.values()
    assert (user["extRelationId"], user["email"], user["name"]) == (5, "alice@example.com", "Alice Liddell")
    assert result.secrets["panel_password"].get_secret_value().startswith("pnl-")
    assert "pnl-" not in str(result.data)


def test_user_lookup_failure_never_creates_a_user(fake: FakeVirtFusion) -> None:
    fake.fail_next(503, match="byExtRelation")
    with pytest.raises(ProviderUnavailable):
        panel(fake).create(service(), LocalContext())
    fake.fail_next(401, match="byExtRelation")
    with pytest.raises(AuthFailed):
        panel(fake).create(service(), LocalContext())
    assert fake.users == {}
    assert fake.count("POST") == 0


def test_user_created_by_a_concurrent_delivery_is_read_again(fake: FakeVirtFusion) -> None:
    route = fake.route

    def racing(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/v1/users" and not fake.users:
            fake.add_user(5, "alice@example.com")
        return route(request)

    fake.route = racing  # type: ignore[method-assign]
    create(panel(fake), service())
    assert len(fake.users) == 1
    assert only_server(fake)["ownerId"] == next(iter(fake.users))


def test_email_taken_by_an_unrelated_user_is_rejected_with_its_reason(fake: FakeVirtFusion) -> None:
    fake.add_user(None, "alice@example.com")
    with pytest.raises(ProviderRejected) as info:
        panel(fake).create(service(), LocalContext())
    assert "The email has already been taken." in info.value.message
    assert fake.servers == {}


# --- create: reconciliation -------------------------------------------------------------------------


def test_lost_create_answer_adopts_the_new_server_and_names_it(fake: FakeVirtFusion) -> None:
    ext, job = panel(fake), LocalContext()
    user = fake.add_user(5, "alice@example.com")
    fake.servers[1] = {**_foreign(user["id"]), "id": 1}  # the customer's older, unnamed server
    fake.drop_response_next("POST /api/v1/servers$")
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), job)
    result = create(ext, service(), job)
    (mine,) = fake.named(m.marker(11))
    assert result.data["adopted"] is True
    assert result.data["server_id"] == mine["id"] != 1
    assert len(fake.servers) == 2
    assert fake.servers[1]["name"] == "legacy"


def test_creates_of_one_customer_take_turns_so_a_lost_answer_is_never_confused(
    fake: FakeVirtFusion, runtime: Runtime
) -> None:
    runtime.bind("vf", panel(fake))
    spec = spec_for("servers.virtfusion.create")
    fake.build_reads = 0

    def run(service_id: int, retries: int) -> dict[str, Any]:
        kwargs = {"connection": "vf", "service": service(service_id).model_dump(mode="json")}
        result: dict[str, Any] = runtime.execute(spec, (), kwargs, Delivery(f"t{service_id}", retries))
        return result

    fake.drop_response_next("POST /api/v1/servers$")
    with pytest.raises(Reschedule):
        run(11, 0)  # its server exists, nameless, and the job does not know its id
    with pytest.raises(Reschedule) as waiting:
        run(12, 0)
    assert waiting.value.kind == "busy"
    assert fake.count("POST", "/api/v1/servers") == 1  # the second create waited instead of making one
    first = run(11, 1)
    second = run(12, 1)
    assert first["data"]["adopted"] is True
    assert second["data"]["adopted"] is False
    assert {first["data"]["server_id"], second["data"]["server_id"]} == set(fake.servers)
    assert len(fake.named(m.marker(11))) == len(fake.named(m.marker(12))) == 1


def test_server_of_another_service_is_never_adopted(fake: FakeVirtFusion) -> None:
    ext = panel(fake)
    create(ext, service(service_id=12))
    create(ext, service(service_id=11))
    assert len(fake.named(m.marker(11))) == len(fake.named(m.marker(12))) == 1
    assert len(fake.servers) == 2


def test_server_recorded_by_the_php_extension_is_adopted(fake: FakeVirtFusion) -> None:
    user = fake.add_user(5, "alice@example.com")
    fake.servers[90] = {**_foreign(user["id"]), "id": 90, "commissionStatus": 3}
    result = create(panel(fake), service(properties={"server_id": "90"}))
    assert result.data["adopted"] is True
    assert fake.servers[90]["name"] == m.marker(11)
    assert len(fake.servers) == 1
    assert fake.count("POST", "/api/v1/servers/90/build") == 0


def test_create_after_terminate_provisions_anew_despite_the_old_server_id(fake: FakeVirtFusion) -> None:
    ext = panel(fake)
    fake.lock_after_create = 0
    first = create(ext, service())
    ext.terminate(service(properties=first.properties), LocalContext())
    assert "server_id" in VirtFusion.resource_properties  # the runtime tells the billing system to clear it
    again = create(ext, service(properties=first.properties))
    assert again.data["adopted"] is False
    assert again.data["server_id"] != first.data["server_id"]
    only_server(fake)


def test_capacity_error_is_permanent_with_virtfusion_reason(fake: FakeVirtFusion) -> None:
    fake.free_ipv4 = 1
    with pytest.raises(ProviderRejected) as info:
        panel(fake).create(service(), LocalContext())
    assert "Not enough free IPv4" in info.value.message
    assert info.value.retryable is False


# --- create: OS install -----------------------------------------------------------------------------


def test_os_install_is_awaited_and_its_root_password_sealed(fake: FakeVirtFusion) -> None:
    fake.build_reads = 3
    ext, job = panel(fake), LocalContext()
    with pytest.raises(Pending):
        ext.create(service(properties={"hostname": "web.example.com"}), job)
    assert only_server(fake)["commissionStatus"] == 1
    result = create(ext, service(properties={"hostname": "web.example.com"}), job)
    server = only_server(fake)
    assert server["commissionStatus"] == 3
    assert server["hostname"] == "web.example.com"
    assert result.data["built"] is True
    assert result.data["ipv4"] == server["ipv4"]
    assert result.secrets["root_password"].get_secret_value() == server["_root_password"]
    assert job.secret_checkpoint("root_password") == server["_root_password"]  # kept for a resumed run
    assert fake.count("POST", r"/api/v1/servers/\d+/build") == 1


def test_lost_build_answer_is_not_built_twice(fake: FakeVirtFusion) -> None:
    ext, job = panel(fake), LocalContext()
    fake.drop_response_next("/build$")
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), job)
    result = create(ext, service(), job)
    assert result.data["built"] is True
    assert "root_password" not in result.secrets
    assert fake.count("POST", r"/api/v1/servers/\d+/build") == 1


def test_failed_os_install_is_permanent(fake: FakeVirtFusion) -> None:
    fake.build_outcome = "failed"
    with pytest.raises(ProviderRejected) as info:
        create(panel(fake), service())
    assert "OS install" in info.value.message


def test_product_without_os_template_is_not_built(fake: FakeVirtFusion) -> None:
    result = panel(fake).create(service(settings={"operating_system": ""}), LocalContext())
    assert result.data["built"] is False
    assert only_server(fake)["commissionStatus"] == 0


# --- other operations -------------------------------------------------------------------------------


def test_locked_server_is_pending_then_suspended(fake: FakeVirtFusion) -> None:
    ext = panel(fake)
    create(ext, service())
    for _ in range(fake.lock_after_create):
        with pytest.raises(Pending) as info:
            ext.suspend(service(), LocalContext())
        assert "server locked" in info.value.reason
    assert ext.suspend(service(), LocalContext()).data["suspended"] is True
    assert only_server(fake)["suspended"] is True
    ext.unsuspend(service(), LocalContext())
    assert only_server(fake)["suspended"] is False


def test_suspend_of_missing_server_is_not_found(fake: FakeVirtFusion) -> None:
    with pytest.raises(NotFound):
        panel(fake).suspend(service(), LocalContext())


def test_upgrade_changes_the_package(fake: FakeVirtFusion) -> None:
    ext = panel(fake)
    fake.lock_after_create = 0
    create(ext, service())
    assert ext.upgrade(service(settings={"package": "2"}), LocalContext()).data["package"] == 2
    assert only_server(fake)["packageId"] == 2
    with pytest.raises(NotFound) as info:
        ext.upgrade(service(settings={"package": "9"}), LocalContext())
    assert "server or package not found" in info.value.message


def test_terminate_passes_the_delay_and_tolerates_a_gone_server(fake: FakeVirtFusion) -> None:
    ext = panel(fake)
    fake.lock_after_create = 0
    create(ext, service())
    result = ext.terminate(service(settings={"delete_delay": "30"}), LocalContext())
    assert result.data["deleted"] is True
    assert fake.last_delete_delay == 30
    assert fake.servers == {}
    assert ext.terminate(service(), LocalContext()).data["already_gone"] is True


def test_terminate_when_delete_answers_server_not_found_succeeds(fake: FakeVirtFusion) -> None:
    ext = panel(fake)
    create(ext, service())
    fake.fail_next(404, match="DELETE")
    assert ext.terminate(service(), LocalContext()).data["already_gone"] is True


def test_bare_404_is_transient_not_gone(fake: FakeVirtFusion) -> None:
    ext = panel(fake)
    create(ext, service())
    route = fake.route
    fake.route = lambda request: (  # type: ignore[method-assign]
        httpx.Response(404, text="<html>Not Found</html>") if request.method == "DELETE" else route(request)
    )
    with pytest.raises(ProviderUnavailable):
        ext.terminate(service(), LocalContext())
    assert len(fake.servers) == 1


def test_login_url_is_a_server_sso_link(fake: FakeVirtFusion) -> None:
    ext = panel(fake)
    create(ext, service())
    url = ext.login_url(service(), LocalContext()).data["url"]
    assert url.startswith(f"{HOST}/token_login/")
    with pytest.raises(NotFound):
        ext.login_url(service(service_id=99), LocalContext())


def test_test_config_and_a_bad_key(fake: FakeVirtFusion) -> None:
    assert panel(fake).test_config().data == {"ok": True}
    wrong = "vf-wrong-token-0000000000"
    with pytest.raises(AuthFailed) as info:
        panel(fake, key=wrong).test_config()
    assert wrong not in str(info.value)


def test_error_messages_never_leak_the_key_or_query(fake: FakeVirtFusion) -> None:
    route = fake.route

    def echoing(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(422, json={"errors": [f"{request.headers['Authorization']} at {request.url}"]})
        return route(request)

    ext = panel(fake)
    create(ext, service())
    fake.route = echoing  # type: ignore[method-assign]
    with pytest.raises(ProviderRejected) as info:
        ext.terminate(service(), LocalContext())
    message = str(info.value.to_dict())
    assert KEY not in message
    assert "DELETE /api/v1/servers/" in message


def _foreign(owner: int) -> dict[str, Any]:
    return {
        "uuid": "legacy-uuid",
        "name": "legacy",
        "hostname": None,
        "ownerId": owner,
        "hypervisorId": 1,
        "packageId": 1,
        "resources": {},
        "commissionStatus": 0,
        "buildFailed": False,
        "suspended": False,
        "ipv4": ["192.0.2.200"],
        "_locked_calls": 0,
        "_build_reads": 0,
    }
