"""Virtualizor's own quirks; the shared lifecycle/retry/redaction suite covers the rest."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from extensions import get_extension
from extensions.base import LocalContext, Service
from extensions.errors import (
    AuthFailed,
    Conflict,
    ExtensionError,
    InvalidConfig,
    InvalidPayload,
    NotFound,
    Pending,
    ProviderRejected,
    ProviderUnavailable,
)
from extensions.servers.virtualizor import Virtualizor
from extensions.servers.virtualizor import extension as extension_module
from extensions.servers.virtualizor import mapping as m
from extensions.servers.virtualizor.config import VirtualizorConfig, VirtualizorProduct
from tests.fakes.virtualizor import FakeVirtualizor

KEY = "vztestkey7c1e9a4b2d"
PASS = "vztestpass3f8b6e0a"
HOST = "vps.example.com"
ADDVS = "POST /index.php/addvs$"


@pytest.fixture
def fake() -> FakeVirtualizor:
    fake = FakeVirtualizor(key=KEY, password=PASS)
    fake.build_reads = 1  # builds are done at the first look, except where a test waits for one
    return fake


def panel(fake: FakeVirtualizor, **config: Any) -> Virtualizor:
    values = {"key": KEY, "password": PASS, "ip": "panel.example.com", "port": "4085", "client_port": "4083"}
    ext = get_extension("servers", "virtualizor", {**values, **config}, transport=fake.transport())
    assert isinstance(ext, Virtualizor)
    return ext


def service(
    settings: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    email: str = "alice@example.com",
    service_id: int = 11,
) -> Service:
    return Service.model_validate(
        {
            "id": service_id,
            "user": {"id": 1, "email": email, "first_name": "Alice", "last_name": "Liddell"},
            "product": {"id": 7, "name": "KVM", "settings": {"virt": "kvm", "planname": "KVM-1G", **(settings or {})}},
            "properties": {"hostname": HOST, "os": "100", **(properties or {})},
        }
    )


def only_vps(fake: FakeVirtualizor, hostname: str = HOST) -> dict[str, Any]:
    (vps,) = fake.vps_named(hostname)
    return vps


def created(ext: Virtualizor, svc: Service) -> Service:
    """``svc`` with the properties its create returned, as the billing system sends it back."""
    result = ext.create(svc, LocalContext())
    return svc.model_copy(update={"properties": {**svc.properties, **result.properties}})


# --- config -----------------------------------------------------------------------------------------


def test_config_parses_paymenter_strings_and_hides_credentials() -> None:
    config = VirtualizorConfig.model_validate({"key": KEY, "password": PASS, "ip": " 10.0.0.5 ", "port": "4084"})
    assert (config.ip, config.port, config.client_port) == ("10.0.0.5", 4084, 4083)
    assert config.url(config.port) == "http://10.0.0.5:4084"  # Virtualizor's plain-HTTP admin port
    assert config.url(config.client_port) == "https://10.0.0.5:4083"
    assert KEY not in repr(config)
    assert PASS not in repr(config)
    assert [f["name"] for f in Virtualizor.get_config()] == ["key", "password", "ip", "port", "client_port", "ca_cert"]


@pytest.mark.parametrize("bad", [{"ip": "https://secret-host.example/"}, {"ca_cert": "not a pem"}, {"port": "0"}])
def test_invalid_config_names_the_field_without_echoing_it(bad: dict[str, str]) -> None:
    with pytest.raises(InvalidConfig) as info:
        Virtualizor.parse_config({"key": KEY, "password": PASS, "ip": "10.0.0.5", **bad})
    assert next(iter(bad)) in info.value.message
    assert "secret-host" not in info.value.message
    assert KEY not in info.value.message


def test_product_settings_parse_strings() -> None:
    settings = VirtualizorProduct.model_validate(
        {"virt": "kvm", "planname": "KVM-1G", "ram": "2048", "space": " ", "overridable_settings": "ram, cores"}
    )
    assert (settings.ram, settings.space, settings.overridable_settings) == (2048, None, ["ram", "cores"])
    with pytest.raises(ValidationError):
        VirtualizorProduct.model_validate({"virt": "kvm", "planname": "KVM-1G", "ram": "-1"})


# --- create -----------------------------------------------------------------------------------------


def test_create_seals_generated_passwords_and_stores_server_id(fake: FakeVirtualizor) -> None:
    result = panel(fake).create(service(), LocalContext())
    vps = only_vps(fake)
    (user,) = fake.users.values()
    assert result.properties == {"server_id": vps["vpsid"]}
    assert result.data == {"vpsid": vps["vpsid"], "hostname": HOST, "ips": ["203.0.113.10"], "uid": user["uid"]}
    assert result.secrets["root_password"].get_secret_value() == vps["_rootpass"]
    assert result.secrets["panel_password"].get_secret_value() == user["_password"]
    assert (user["email"], user["fname"], user["lname"]) == ("alice@example.com", "Alice", "Liddell")
    assert vps["uid"] == user["uid"]
    assert vps["plid"] == "1"
    assert vps["_rootpass"] not in str(result.data)


def test_existing_user_is_matched_exactly_and_keeps_its_password(fake: FakeVirtualizor) -> None:
    fake.add_user("malice@example.com")  # the e-mail filter is a search: this one matches it too
    alice = fake.add_user("Alice@Example.com")
    result = panel(fake).create(service(), LocalContext())
    assert only_vps(fake)["uid"] == alice["uid"]
    assert "panel_password" not in result.secrets
    assert len(fake.users) == 2


def test_plan_is_matched_by_exact_name_and_virtualization(fake: FakeVirtualizor) -> None:
    fake.plans = {}
    fake.add_plan("5", "KVM-1G-HA", ram="4096")  # listed first by the name search
    fake.add_plan("6", "KVM-1G", virt="lxc")
    fake.add_plan("7", "KVM-1G", ram="1024")
    panel(fake).create(service(), LocalContext())
    assert only_vps(fake)["plid"] == "7"


def test_unknown_plan_is_not_found_and_creates_nothing(fake: FakeVirtualizor) -> None:
    with pytest.raises(NotFound):
        panel(fake).create(service(settings={"planname": "KVM-1"}), LocalContext())
    assert fake.vps == {}


def test_only_whitelisted_properties_override_the_plan(fake: FakeVirtualizor) -> None:
    properties = {"ram": "99999", "space": "500", "cores": "8"}
    panel(fake).create(
        service(settings={"space": "30", "overridable_settings": "cores"}, properties=properties), LocalContext()
    )
    vps = only_vps(fake)
    assert (vps["ram"], vps["space"], vps["cores"]) == ("1024", "30", "8")


@pytest.mark.parametrize(
    "properties", [{"hostname": "localhost"}, {"hostname": "bad_host.example.com"}, {"hostname": "1.2.3.4"}, {"os": ""}]
)
def test_invalid_checkout_is_invalid_payload(fake: FakeVirtualizor, properties: dict[str, str]) -> None:
    with pytest.raises(InvalidPayload) as info:
        panel(fake).create(service(properties=properties), LocalContext())
    assert "service.properties" in info.value.message
    assert fake.calls == []


def test_lost_addvs_answer_adopts_the_vps_with_the_password_sent(fake: FakeVirtualizor) -> None:
    ext, job = panel(fake), LocalContext()
    fake.drop_response_next(ADDVS)
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), job)
    result = ext.create(service(), job)
    assert fake.count("POST", "/index.php/addvs") == 1
    assert result.properties == {"server_id": only_vps(fake)["vpsid"]}
    assert result.secrets["root_password"].get_secret_value() == only_vps(fake)["_rootpass"]


def test_same_hostname_vps_of_another_service_is_not_adopted(fake: FakeVirtualizor) -> None:
    ext = panel(fake)
    first = ext.create(service(service_id=1), LocalContext())
    second = ext.create(service(service_id=2), LocalContext())
    assert len(fake.vps_named(HOST)) == 2
    assert first.properties != second.properties


def test_several_new_matches_after_a_lost_answer_stop_for_an_admin(fake: FakeVirtualizor) -> None:
    ext, job = panel(fake), LocalContext()
    fake.drop_response_next(ADDVS)
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), job)
    ext.create(service(service_id=99), LocalContext())  # a concurrent order with the same hostname
    with pytest.raises(Conflict):
        ext.create(service(), job)
    assert len(fake.vps_named(HOST)) == 2


def test_unanswered_addvs_is_given_time_to_land_before_it_is_sent_again(
    fake: FakeVirtualizor, monkeypatch: pytest.MonkeyPatch
) -> None:
    ext, job = panel(fake), LocalContext()
    fake.fail_next(502, match=ADDVS)
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), job)
    with pytest.raises(Pending):
        ext.create(service(), job)
    assert fake.vps == {}
    monkeypatch.setattr(extension_module, "SETTLE", 0.0)
    ext.create(service(), job)
    only_vps(fake)


def test_create_waits_for_the_build_task_and_resumes(fake: FakeVirtualizor) -> None:
    ext, job = panel(fake), LocalContext()
    fake.build_reads = 3
    for _ in range(2):
        with pytest.raises(Pending) as info:
            ext.create(service(), job)
        assert "being built" in info.value.reason
    result = ext.create(service(), job)
    assert fake.count("POST", "/index.php/addvs") == 1
    assert result.secrets["root_password"].get_secret_value() == only_vps(fake)["_rootpass"]
    assert result.secrets["panel_password"].get_secret_value() == next(iter(fake.users.values()))["_password"]


def test_failed_build_is_provider_rejected(fake: FakeVirtualizor) -> None:
    fake.build_fails = True
    with pytest.raises(ProviderRejected, match="build of VPS"):
        panel(fake).create(service(), LocalContext())


def test_error_in_a_200_answer_is_permanent_and_carries_the_reason(fake: FakeVirtualizor) -> None:
    fake.ip_pool = []
    with pytest.raises(ProviderRejected) as info:
        panel(fake).create(service(), LocalContext())
    assert info.value.retryable is False
    assert "No IP available" in info.value.message
    assert fake.vps == {}


def test_stored_server_id_is_adopted_without_creating(fake: FakeVirtualizor) -> None:
    ext = panel(fake)
    svc = created(ext, service())
    result = ext.create(svc, LocalContext())
    assert result.properties == {"server_id": svc.properties["server_id"]}
    assert fake.count("POST", "/index.php/addvs") == 1


# --- other operations -------------------------------------------------------------------------------


def test_suspend_and_unsuspend_are_idempotent(fake: FakeVirtualizor) -> None:
    ext = panel(fake)
    svc = created(ext, service())
    ext.suspend(svc, LocalContext())
    ext.suspend(svc, LocalContext())
    assert only_vps(fake)["suspended"] == "1"
    ext.unsuspend(svc, LocalContext())
    assert only_vps(fake)["suspended"] == "0"


def test_suspend_not_applied_yet_is_pending(fake: FakeVirtualizor) -> None:
    ext = panel(fake)
    svc = created(ext, service())
    fake.ignore_suspend = True
    with pytest.raises(Pending):
        ext.suspend(svc, LocalContext())
    fake.ignore_suspend = False
    ext.suspend(svc, LocalContext())
    assert only_vps(fake)["suspended"] == "1"


def test_locked_vps_is_retryable(fake: FakeVirtualizor) -> None:
    ext = panel(fake)
    svc = created(ext, service())
    fake.locked.add(only_vps(fake)["vpsid"])
    with pytest.raises(ProviderUnavailable) as info:
        ext.suspend(svc, LocalContext())
    assert "locked" in info.value.message
    fake.locked.clear()
    ext.suspend(svc, LocalContext())
    assert only_vps(fake)["suspended"] == "1"


def test_operations_without_server_id_find_the_vps_by_hostname_and_owner(fake: FakeVirtualizor) -> None:
    ext = panel(fake)
    ext.create(service(), LocalContext())
    fake.add_user("bob@example.com")
    ext.create(service(email="bob@example.com", service_id=12), LocalContext())
    ext.suspend(service(), LocalContext())
    mine, bobs = sorted(fake.vps_named(HOST), key=lambda v: v["vpsid"])
    assert (mine["suspended"], bobs["suspended"]) == ("1", "0")
    ext.create(service(service_id=13), LocalContext())  # the same customer, the same hostname again
    with pytest.raises(Conflict):
        ext.unsuspend(service(), LocalContext())


def test_terminate_deletes_frees_ips_and_succeeds_when_gone(fake: FakeVirtualizor) -> None:
    ext = panel(fake)
    svc = created(ext, service())
    pool = len(fake.ip_pool)
    assert ext.terminate(svc, LocalContext()).data["deleted"] is True
    assert fake.vps == {}
    assert len(fake.ip_pool) == pool + 1
    assert ext.terminate(svc, LocalContext()).data == {"deleted": False, "already_gone": True}


def test_terminate_racing_another_delete_succeeds(fake: FakeVirtualizor) -> None:
    ext = panel(fake)
    svc = created(ext, service())
    route = fake.route

    def racing(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/index.php/vs":
            fake.vps.clear()  # deleted by someone else just before our call
        return route(request)

    fake.route = racing  # type: ignore[method-assign]
    assert ext.terminate(svc, LocalContext()).data["already_gone"] is True


def test_upgrade_sends_the_new_plan_and_its_resources(fake: FakeVirtualizor) -> None:
    ext = panel(fake)
    svc = created(ext, service())
    upgraded = svc.model_copy(
        update={"product": svc.product.model_copy(update={"settings": {"virt": "kvm", "planname": "KVM-2G"}})}
    )
    assert ext.upgrade(upgraded, LocalContext()).data["plid"] == "2"
    vps = only_vps(fake)
    assert (vps["plid"], vps["ram"], vps["space"], vps["cores"]) == ("2", "2048", "40", "2")


def test_upgrade_of_missing_vps_is_not_found(fake: FakeVirtualizor) -> None:
    with pytest.raises(NotFound):
        panel(fake).upgrade(service(properties={"server_id": "4242"}), LocalContext())


def test_login_url_is_minted_on_the_client_port_and_sealed(fake: FakeVirtualizor) -> None:
    ext = panel(fake)
    svc = created(ext, service())
    vpsid = only_vps(fake)["vpsid"]
    result = ext.login_url(svc, LocalContext())
    url = httpx.URL(result.secrets["login_url"].get_secret_value())
    assert (url.scheme, url.host, url.port) == ("https", "panel.example.com", 4083)
    assert url.params["svs"] == vpsid
    assert url.params["as"]
    assert result.data == {"vpsid": vpsid}
    fake.client_port = 4999
    with pytest.raises(InvalidConfig):
        ext.login_url(svc, LocalContext())


# --- transport and errors ---------------------------------------------------------------------------


def test_test_config(fake: FakeVirtualizor) -> None:
    assert panel(fake).test_config().data == {"ok": True}


def test_non_json_answer_is_a_config_problem(fake: FakeVirtualizor) -> None:
    fake.route = lambda request: httpx.Response(200, text="<html>login</html>")  # type: ignore[method-assign]
    with pytest.raises(InvalidConfig, match="not JSON"):
        panel(fake).test_config()


def test_bad_credentials_are_auth_failed_without_echoing_them(fake: FakeVirtualizor) -> None:
    wrong = "vzwrongpass5a7c9e1b"
    with pytest.raises(AuthFailed) as info:
        panel(fake, password=wrong).test_config()
    assert wrong not in str(info.value.to_dict())


def test_credentials_travel_in_the_query_but_never_in_messages(fake: FakeVirtualizor) -> None:
    route, seen = fake.route, []

    def echoing(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if request.url.params.get("act") == "vs":
            return httpx.Response(200, json={"error": [f"rejected {request.url}"]})
        return route(request)

    fake.route = echoing  # type: ignore[method-assign]
    with pytest.raises(ExtensionError) as info:
        panel(fake).create(service(), LocalContext())
    assert all(url.params["adminapikey"] == KEY and url.params["adminapipass"] == PASS for url in seen)
    message = str(info.value.to_dict())
    assert KEY not in message
    assert PASS not in message
    fake.route = route  # type: ignore[method-assign]
    fake.fail_next(500, match="GET /index.php/users")
    with pytest.raises(ProviderUnavailable) as unavailable:
        panel(fake).create(service(), LocalContext())
    assert "GET /index.php" in unavailable.value.message
    assert "alice@example.com" not in unavailable.value.message
    assert "adminapi" not in unavailable.value.message


# --- pure mapping -----------------------------------------------------------------------------------


def test_error_shapes_and_busy_detection() -> None:
    assert m.messages({"error": {"ips": "No IP available"}}) == ["No IP available"]
    assert m.messages({"error": [], "done": 1}) == []
    assert m.messages({"error": "bad"}) == ["bad"]
    assert m.is_busy(["The VPS is locked, try again later"])
    assert not m.is_busy(["Invalid OS"])


def test_build_state() -> None:
    task = {"vpsid": "9", "action": "addvs"}
    assert m.build_state([{**task, "status": "1", "progress": "40"}], "9") == ("running", 40)
    assert m.build_state([{**task, "status": "2", "progress": "80"}], "9") == ("done", 100)
    assert m.build_state([{**task, "status": "-1", "progress": "10"}], "9") == ("failed", 0)
    assert m.build_state([{**task, "vpsid": "90", "status": "1"}], "9") == ("done", 100)


def test_derived_passwords_are_stable_and_mixed() -> None:
    first = m.derive_password("secret", "root:abc")
    assert first == m.derive_password("secret", "root:abc") != m.derive_password("secret", "panel:abc")
    assert len(first) == 16
    assert first[0].islower()
    assert first[1].isupper()
    assert first[2].isdigit()
