"""Plesk's own quirks; the shared lifecycle/retry/redaction suite covers the rest."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from extensions.base import LocalContext, OperationResult, Service, ServiceUser
from extensions.errors import (
    AuthFailed,
    Conflict,
    InvalidConfig,
    InvalidPayload,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
)
from extensions.http import ApiResponse
from extensions.servers.plesk import Plesk
from extensions.servers.plesk import mapping as m
from extensions.servers.plesk.config import PleskConfig
from tests.fakes.plesk import FakePlesk

PASSWORD = "Adm1n-Plesk-Secret"
HOST = "https://plesk.example.com:8443"
ALICE = {"id": 42, "email": "alice@example.com", "name": "Alice Liddell"}


@pytest.fixture
def fake() -> FakePlesk:
    return FakePlesk(login="admin", password=PASSWORD)


def panel(fake: FakePlesk, **config: Any) -> Plesk:
    return Plesk({"host": HOST + "/", "username": "admin", "password": PASSWORD, **config}, transport=fake.transport())


def service(
    service_id: int = 11,
    domain: str | None = "example.com",
    user: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
) -> Service:
    props = {"domain": domain} if domain is not None else {}
    return Service.model_validate(
        {
            "id": service_id,
            "user": user or ALICE,
            "product": {"id": 7, "name": "Web", "settings": {"plan": "Default Domain", **(settings or {})}},
            "properties": {**props, **(properties or {})},
        }
    )


def created(result: OperationResult, base: Service) -> Service:
    return base.model_copy(update={"properties": {**base.properties, **result.properties}})


def secret(result: OperationResult, name: str) -> str:
    return result.secrets[name].get_secret_value()


def only_domain(fake: FakePlesk, service_id: int = 11) -> dict[str, Any]:
    (domain,) = fake.domains_of(service_id)
    return domain


# --- config -----------------------------------------------------------------------------------------


def test_config_strips_trailing_slash_and_hides_the_password() -> None:
    config = PleskConfig.model_validate({"host": f" {HOST}/ ", "username": "admin", "password": PASSWORD})
    assert config.host == HOST
    assert PASSWORD not in repr(config)
    fields = {f["name"]: f for f in Plesk.get_config()}
    assert fields["password"]["type"] == fields["api_key"]["type"] == "password"
    assert [f["name"] for f in Plesk.get_product_config()] == ["plan"]


@pytest.mark.parametrize(
    "raw",
    [
        {"host": "plesk.example.com:8443", "username": "admin", "password": PASSWORD},
        {"host": HOST, "username": "admin", "password": ""},
        {"host": HOST, "username": "", "password": PASSWORD, "api_key": " "},
    ],
)
def test_invalid_config_is_refused_without_echoing_values(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfig) as info:
        Plesk.parse_config(raw)
    assert PASSWORD not in info.value.message
    assert "plesk.example.com" not in info.value.message


def test_api_key_replaces_basic_auth(fake: FakePlesk) -> None:
    fake.api_key = "plesk-api-key-0123456789"
    ext = Plesk({"host": HOST, "api_key": fake.api_key}, transport=fake.transport())
    assert ext.test_config().data == {"ok": True, "panel_version": "18.0.60"}


def test_wrong_password_is_auth_failed_without_the_password(fake: FakePlesk) -> None:
    wrong = "Wrong-Password-123"
    with pytest.raises(AuthFailed) as info:
        panel(fake, password=wrong).test_config()
    assert info.value.provider_status == 401
    assert wrong not in str(info.value.to_dict())


# --- inputs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("domain", [None, "", "not a domain", "localhost", "-bad-.com", "a..com", "10.0.0.1"])
def test_invalid_domain_is_invalid_payload(fake: FakePlesk, domain: str | None) -> None:
    with pytest.raises(InvalidPayload):
        panel(fake).create(service(domain=domain), LocalContext())
    assert fake.calls == []


def test_domain_is_normalised_and_plan_override_needs_the_whitelist(fake: FakePlesk) -> None:
    ext = panel(fake)
    ext.create(service(domain=" Example.COM. ", properties={"plan": "Unlimited"}), LocalContext())
    assert only_domain(fake)["name"] == "example.com"
    assert only_domain(fake)["plan"] == "Default Domain"
    listed = {"overridable_settings": "plan"}
    ext.create(service(12, "other.org", settings=listed, properties={"plan": "Unlimited"}), LocalContext())
    assert only_domain(fake, 12)["plan"] == "Unlimited"


def test_blank_plan_is_invalid_payload(fake: FakePlesk) -> None:
    with pytest.raises(InvalidPayload):
        panel(fake).create(service(settings={"plan": " "}), LocalContext())


def test_unknown_plan_is_rejected_with_plesks_reason(fake: FakePlesk) -> None:
    with pytest.raises(ProviderRejected) as info:
        panel(fake).create(service(settings={"plan": "Gold"}), LocalContext())
    assert "Unable to find service plan" in info.value.message
    assert fake.domains == {}


# --- customers --------------------------------------------------------------------------------------


def test_second_order_reuses_the_customer_with_its_own_ftp_login(fake: FakePlesk) -> None:
    ext = panel(fake)
    first = ext.create(service(11, "one.example"), LocalContext())
    second = ext.create(service(12, "two.example"), LocalContext())
    assert len(fake.clients) == 1
    (client,) = fake.clients.values()
    assert client["external_id"] == "42"
    assert client["login"] == first.data["username"] == "aliceliddell-42"
    assert only_domain(fake, 11)["owner_id"] == only_domain(fake, 12)["owner_id"] == client["id"]
    assert only_domain(fake, 11)["ftp_login"] != only_domain(fake, 12)["ftp_login"]
    assert secret(first, "password") == client["password"]
    assert "password" not in second.secrets
    assert second.data["customer_created"] is False
    assert secret(second, "ftp_password") == only_domain(fake, 12)["ftp_password"]


def test_users_with_the_same_name_get_their_own_customers(fake: FakePlesk) -> None:
    ext = panel(fake)
    ext.create(service(11, "one.example", user={**ALICE, "id": 1, "email": "a1@x.com"}), LocalContext())
    ext.create(service(12, "two.example", user={**ALICE, "id": 2, "email": "a2@x.com"}), LocalContext())
    assert sorted(c["login"] for c in fake.clients.values()) == ["aliceliddell-1", "aliceliddell-2"]


def test_non_latin_name_still_gives_valid_logins(fake: FakePlesk) -> None:
    result = panel(fake).create(service(user={"id": 7, "email": "lei@x.com", "name": "李雷"}), LocalContext())
    assert result.data["username"] == "customer-7"
    assert result.data["ftp_login"].startswith("web_")


def test_customer_made_by_the_php_extension_is_adopted_by_external_id(fake: FakePlesk) -> None:
    old = fake.add_client("aliceliddell", "alice@example.com", external_id="42")
    result = panel(fake).create(service(), LocalContext())
    assert len(fake.clients) == 1
    assert only_domain(fake)["owner_id"] == old["id"]
    assert "password" not in result.secrets
    assert old["password"] == "seeded-Pw-1"


def test_customer_without_external_id_is_found_by_email(fake: FakePlesk) -> None:
    old = fake.add_client("alice", "Alice@Example.com")
    panel(fake).create(service(), LocalContext())
    assert len(fake.clients) == 1
    assert only_domain(fake)["owner_id"] == old["id"]


def test_our_login_held_by_another_external_id_is_a_conflict(fake: FakePlesk) -> None:
    fake.add_client("aliceliddell-42", "someone@else.com", external_id="other-system-9")
    with pytest.raises(Conflict):
        panel(fake).create(service(), LocalContext())
    assert len(fake.clients) == 1
    assert fake.domains == {}


def test_failed_customer_lookup_never_creates_a_customer(fake: FakePlesk) -> None:
    ext = panel(fake)
    fake.fail_next(500, match="GET /api/v2/clients$")
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), LocalContext())
    fake.drop_response_next("GET /api/v2/clients$")
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), LocalContext())
    assert fake.count("POST") == 0
    ext.create(service(), LocalContext())
    assert len(fake.clients) == 1


def test_concurrent_customer_creation_adopts_the_winner(fake: FakePlesk) -> None:
    route = fake.route
    winner: list[int] = []

    def racing(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/v2/clients" and not winner:
            winner.append(fake.add_client("aliceliddell-42", "alice@example.com", external_id="42")["id"])
        return route(request)

    fake.route = racing  # type: ignore[method-assign]
    result = panel(fake).create(service(), LocalContext())
    assert len(fake.clients) == 1
    assert result.data["client_id"] == winner[0]
    assert only_domain(fake)["owner_id"] == winner[0]


def test_retry_after_the_customer_was_made_returns_a_working_password(fake: FakePlesk) -> None:
    ext = panel(fake)
    job = LocalContext()
    fake.fail_next(503, match="POST /api/v2/domains$")
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), job)
    result = ext.create(service(), job)
    (client,) = fake.clients.values()
    assert secret(result, "password") == client["password"]
    assert result.data["customer_created"] is True


# --- subscriptions ----------------------------------------------------------------------------------


def test_lost_create_answer_adopts_and_reissues_the_ftp_password(fake: FakePlesk) -> None:
    ext = panel(fake)
    job = LocalContext()
    fake.drop_response_next("POST /api/v2/domains$")
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), job)
    domain = only_domain(fake)
    result = ext.create(service(), job)
    assert result.data["adopted"] is True
    assert result.properties == {"domain_id": str(domain["id"])}
    assert result.data["ftp_login"] == domain["ftp_login"] == job.checkpoint("ftp_login")
    assert secret(result, "ftp_password") == only_domain(fake)["ftp_password"]
    assert len(fake.domains) == 1


def test_existing_subscription_is_adopted_without_touching_its_credentials(fake: FakePlesk) -> None:
    ext = panel(fake)
    ext.create(service(), LocalContext())
    before = dict(only_domain(fake))
    again = ext.create(service(), LocalContext())
    assert again.data["adopted"] is True
    assert again.secrets == {}
    assert only_domain(fake) == before


def test_domain_of_another_customer_is_a_conflict(fake: FakePlesk) -> None:
    bob = fake.add_client("bob", "bob@x.com", external_id="7")
    fake.add_domain("example.com", bob["id"], "bobftp")
    with pytest.raises(Conflict) as info:
        panel(fake).create(service(), LocalContext())
    assert "another customer" in info.value.message
    assert len(fake.clients) == 1


def test_domain_created_concurrently_is_adopted(fake: FakePlesk) -> None:
    route = fake.route

    def racing(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/v2/domains" and not fake.domains:
            owner = next(iter(fake.clients.values()))
            fake.add_domain("example.com", owner["id"], "otherjob")
        return route(request)

    fake.route = racing  # type: ignore[method-assign]
    result = panel(fake).create(service(), LocalContext())
    assert len(fake.domains) == 1
    assert result.data["adopted"] is True
    assert result.data["domain_id"] == next(iter(fake.domains))


def test_taken_ftp_login_gets_a_new_one(fake: FakePlesk) -> None:
    fake.system_logins.add("taken_login")
    job = LocalContext()
    job.save_checkpoint("ftp_login", "taken_login")
    result = panel(fake).create(service(), job)
    login = only_domain(fake)["ftp_login"]
    assert login != "taken_login"
    assert result.data["ftp_login"] == login == job.checkpoint("ftp_login")


def test_name_filter_ignored_by_the_panel_still_finds_the_right_domain(fake: FakePlesk) -> None:
    bob = fake.add_client("bob", "bob@x.com", external_id="7")
    fake.add_domain("bob.example", bob["id"], "bobftp")
    fake.ignore_name_filter = True
    panel(fake).create(service(), LocalContext())
    assert fake.domain_named("example.com") is not None
    assert len(fake.domains) == 2


# --- other operations -------------------------------------------------------------------------------


def test_suspend_and_unsuspend_are_idempotent(fake: FakePlesk) -> None:
    ext = panel(fake)
    svc = created(ext.create(service(), LocalContext()), service())
    for _ in range(2):
        ext.suspend(svc, LocalContext())
        assert only_domain(fake)["status"] == "suspended"
    for _ in range(2):
        ext.unsuspend(svc, LocalContext())
        assert only_domain(fake)["status"] == "active"


def test_operations_without_domain_id_find_the_domain_by_name_and_owner(fake: FakePlesk) -> None:
    ext = panel(fake)
    ext.create(service(), LocalContext())
    ext.suspend(service(), LocalContext())
    assert only_domain(fake)["status"] == "suspended"
    bob = fake.add_client("bob", "bob@x.com", external_id="7")
    fake.add_domain("bob.example", bob["id"], "bobftp")
    with pytest.raises(NotFound):
        ext.suspend(service(domain="bob.example"), LocalContext())
    assert fake.domain_named("bob.example") is not None
    assert ext.terminate(service(domain="bob.example"), LocalContext()).data["already_gone"] is True
    assert fake.domain_named("bob.example") is not None


def test_suspend_of_a_deleted_subscription_is_not_found(fake: FakePlesk) -> None:
    with pytest.raises(NotFound):
        panel(fake).suspend(service(properties={"domain_id": "99"}), LocalContext())
    with pytest.raises(InvalidPayload):
        panel(fake).suspend(service(properties={"domain_id": "abc"}), LocalContext())


def test_terminate_keeps_the_customer_and_frees_the_ftp_login(fake: FakePlesk) -> None:
    ext = panel(fake)
    result = ext.create(service(), LocalContext())
    done = ext.terminate(created(result, service()), LocalContext())
    assert done.data == {"domain_id": result.data["domain_id"], "deleted": True, "already_gone": False}
    assert fake.domains == {}
    assert len(fake.clients) == 1
    assert result.data["ftp_login"] not in fake.system_logins


def test_terminate_of_a_subscription_deleted_out_of_band_succeeds(fake: FakePlesk) -> None:
    result = panel(fake).terminate(service(properties={"domain_id": "99"}), LocalContext())
    assert result.data == {"domain_id": 99, "deleted": False, "already_gone": True}


def test_terminate_does_not_trust_a_foreign_404(fake: FakePlesk) -> None:
    fake.route = lambda request: httpx.Response(404, text="<html>Not Found</html>")  # type: ignore[method-assign]
    with pytest.raises(NotFound):
        panel(fake).terminate(service(properties={"domain_id": "5"}), LocalContext())


def test_upgrade_switches_the_plan_through_the_cli_gateway(fake: FakePlesk) -> None:
    ext = panel(fake)
    svc = created(ext.create(service(), LocalContext()), service())
    upgraded = svc.model_copy(update={"product": svc.product.model_copy(update={"settings": {"plan": "Unlimited"}})})
    for _ in range(2):
        assert ext.upgrade(upgraded, LocalContext()).data["plan"] == "Unlimited"
        assert only_domain(fake)["plan"] == "Unlimited"


def test_cli_failure_inside_http_200_is_an_error(fake: FakePlesk) -> None:
    ext = panel(fake)
    svc = created(ext.create(service(), LocalContext()), service())
    gold = svc.model_copy(update={"product": svc.product.model_copy(update={"settings": {"plan": "Gold"}})})
    with pytest.raises(ProviderRejected) as info:
        ext.upgrade(gold, LocalContext())
    assert "Unable to find service plan" in info.value.message
    assert info.value.provider_status == 200
    assert only_domain(fake)["plan"] == "Default Domain"


def test_upgrade_of_missing_subscription_is_not_found(fake: FakePlesk) -> None:
    with pytest.raises(NotFound):
        panel(fake).upgrade(service(properties={"domain_id": "99"}), LocalContext())


def test_login_url_is_unsupported() -> None:
    assert "login_url" not in Plesk.operations


def test_passwords_only_in_sealed_secrets(fake: FakePlesk) -> None:
    result = panel(fake).create(service(), LocalContext())
    assert set(result.secrets) == {"password", "ftp_password"}
    flat = str(result.data) + str(result.properties)
    assert secret(result, "password") not in flat
    assert secret(result, "ftp_password") not in flat


# --- pure mapping -----------------------------------------------------------------------------------


def test_body_error_reads_the_cli_exit_code() -> None:
    def response(body: Any) -> ApiResponse:
        return ApiResponse(200, httpx.Headers(), "", body)

    assert m.body_error(response({"code": 0, "stdout": "SUCCESS", "stderr": ""})) is None
    assert m.body_error(response({"id": 5, "guid": "c-5"})) is None
    assert m.body_error(response([{"id": 1}])) is None
    assert m.body_error(response({"code": 1, "stdout": "", "stderr": "boom\n"})) == "exit code 1: boom"
    assert m.body_error(response({"code": 1007, "message": "exists"})) == "exit code 1007: exists"


def test_generated_logins_and_passwords() -> None:
    user = ServiceUser(id=42, email="x@y.z", name="9Éloïse O'Brien-Smith")
    assert m.customer_login(user) == "eloiseobriensmith-42"
    assert m.ftp_login(user, "ab12c") == "eloiseobri_ab12c"
    assert len(m.ftp_login(user, "ab12c")) <= 16
    value = m.password()
    assert len(value) == 16
    assert any(c.isupper() for c in value)
    assert any(c.isdigit() for c in value)
    assert any(c in m.SYMBOLS for c in value)


def test_domain_name_accepts_idn() -> None:
    assert m.domain_name("Bücher.Example") == "bücher.example"
    assert m.ascii_domain("bücher.example") == "xn--bcher-kva.example"
