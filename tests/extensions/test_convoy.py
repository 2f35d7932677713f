"""Convoy's own quirks; the shared lifecycle/retry/redaction suite covers the rest."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from extensions.base import LocalContext, Service
from extensions.errors import (
    AuthFailed,
    InvalidConfig,
    InvalidPayload,
    NotFound,
    Pending,
    ProviderRejected,
    ProviderUnavailable,
)
from extensions.servers.convoy import Convoy
from extensions.servers.convoy import mapping as m
from extensions.servers.convoy.config import ConvoyConfig, ConvoyProduct
from tests.contract.harness_convoy import PRODUCT_SETTINGS
from tests.fakes.convoy import MIB, PASSWORD, FakeConvoy

KEY = "convoy-test-token-8d1f0b2a"
HOST = "https://convoy.example.com"
ALICE = {"id": 1, "email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"}


@pytest.fixture
def fake() -> FakeConvoy:
    return FakeConvoy(api_key=KEY)


def panel(fake: FakeConvoy, key: str = KEY) -> Convoy:
    return Convoy({"host": HOST + "/", "api_key": key}, transport=fake.transport())


def service(
    service_id: int = 11,
    settings: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
) -> Service:
    return Service.model_validate(
        {
            "id": service_id,
            "user": user or ALICE,
            "product": {"id": 9, "name": "VPS", "settings": {**PRODUCT_SETTINGS, **(settings or {})}},
            "properties": {"os": "t-ubuntu", "hostname": "web.example.com", **(properties or {})},
        }
    )


def provision(ext: Convoy, svc: Service, job: LocalContext | None = None) -> tuple[Any, int]:
    """Run create to completion the way the runtime does: re-run the same job while it is Pending."""
    job = job or LocalContext()
    for polls in range(20):
        try:
            return ext.create(svc, job), polls
        except Pending:
            continue
    raise AssertionError("create never finished")


def only_server(fake: FakeConvoy, service_id: int = 11) -> dict[str, Any]:
    servers = fake.servers_for(service_id)
    assert len(servers) == 1
    return servers[0]


def with_uuid(svc: Service, fake: FakeConvoy) -> Service:
    return svc.model_copy(update={"properties": {**svc.properties, "server_uuid": only_server(fake)["uuid"]}})


# --- config -----------------------------------------------------------------------------------------


def test_config_strips_trailing_slash_and_hides_the_key() -> None:
    config = ConvoyConfig.model_validate({"host": " https://convoy.example.com/ ", "api_key": KEY})
    assert config.host == HOST
    assert KEY not in repr(config)
    with pytest.raises(InvalidConfig) as info:
        Convoy.parse_config({"host": "ftp://hidden.example", "api_key": KEY})
    assert "host" in info.value.message
    assert KEY not in info.value.message


def test_product_settings_parse_paymenter_strings() -> None:
    settings = ConvoyProduct.model_validate(
        {**PRODUCT_SETTINGS, "bandwidth": "0", "ipv4": "", "auto_assign_ip": "1", "start_on_create": "0"}
    )
    assert (settings.ram, settings.node, settings.ipv4) == (2048, 1, None)
    assert settings.start_on_create is False
    assert settings.bandwidth_bytes() is None
    assert settings.addresses_wanted() == (1, 0)  # auto_assign_ip with no count: one IPv4 address
    assert ConvoyProduct.model_validate({**PRODUCT_SETTINGS, "bandwidth": "10"}).bandwidth_bytes() == 10 * MIB


@pytest.mark.parametrize("bad", [{"ram": "8"}, {"node": ""}, {"cpu": "0"}, {"ipv4": "-1"}])
def test_invalid_product_settings_are_invalid_payload(fake: FakeConvoy, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidPayload):
        panel(fake).create(service(settings=bad), LocalContext())
    assert fake.servers == {}


# --- create -----------------------------------------------------------------------------------------


def test_create_waits_for_the_install_and_seals_the_passwords(fake: FakeConvoy) -> None:
    fake.install_reads = 3
    result, polls = provision(panel(fake), service())
    server = only_server(fake)
    assert polls == 2
    assert server["status"] is None
    assert result.properties == {"server_uuid": server["uuid"]}
    assert result.data["server"]["uuid"] == server["uuid"]
    assert result.data["server"]["limits"]["addresses"]["ipv4"][0]["address"].startswith("203.0.113.")
    (user,) = fake.users
    assert result.data["user"] == {"id": user["id"], "created": True}
    assert set(result.secrets) == {"password", "user_password"}
    assert result.secrets["password"].get_secret_value() == server["_password"]
    assert PASSWORD.match(server["_password"])
    assert server["_password"] not in str(result.data)


def test_failed_install_fails_the_job(fake: FakeConvoy) -> None:
    fake.install_reads, fake.install_outcome = 1, "install_failed"
    with pytest.raises(ProviderRejected) as info:
        panel(fake).create(service(), LocalContext())
    assert "failed" in info.value.message
    assert only_server(fake)["status"] == "install_failed"


def test_create_body_uses_bytes_unique_name_and_unlimited_bandwidth(fake: FakeConvoy) -> None:
    customer = {**ALICE, "name": "Alice Pleasance Liddell of Oxford"}
    svc = service(service_id=123456, settings={"bandwidth": "0"}, user=customer)
    provision(panel(fake), svc, LocalContext())
    server = only_server(fake, 123456)
    assert server["limits"]["memory"] == 2048 * MIB
    assert server["limits"]["disk"] == 20480 * MIB
    assert server["limits"]["bandwidth"] is None
    assert server["name"] == "web.example.com Alice Pleasance #123456"
    assert len(server["name"]) <= 40
    assert (server["hostname"], server["_template"], server["_start"]) == ("web.example.com", "t-ubuntu", True)


def test_lost_create_answer_is_adopted_with_the_same_password(fake: FakeConvoy) -> None:
    ext, job = panel(fake), LocalContext()
    fake.drop_response_next("POST /api/application/servers$")
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), job)
    result, _ = provision(ext, service(), job)
    assert fake.count("POST", "/api/application/servers") == 1
    assert result.secrets["password"].get_secret_value() == only_server(fake)["_password"]


def test_create_without_checkpoints_adopts_by_name_marker(fake: FakeConvoy) -> None:
    ext = panel(fake)
    provision(ext, service(), LocalContext())
    again, _ = provision(ext, service(), LocalContext())  # ledger and checkpoints lost
    assert again.data["server"]["uuid"] == only_server(fake)["uuid"]
    assert again.secrets == {}  # an adopted server's root password is not known to this job


def test_marker_match_is_exact(fake: FakeConvoy) -> None:
    ext = panel(fake)
    provision(ext, service(service_id=110), LocalContext())
    provision(ext, service(service_id=11), LocalContext())  # "#11" is a substring of "#110"
    assert len(fake.servers) == 2
    assert only_server(fake, 11)["uuid"] != only_server(fake, 110)["uuid"]


def test_existing_user_is_found_by_exact_email(fake: FakeConvoy) -> None:
    fake.add_user("bob.alice@example.com")
    alice = fake.add_user("Alice@Example.com")
    result, _ = provision(panel(fake), service(), LocalContext())
    assert only_server(fake)["user_id"] == alice["id"]
    assert len(fake.users) == 2
    assert result.data["user"] == {"id": alice["id"], "created": False}
    assert "user_password" not in result.secrets


def test_email_taken_on_user_create_looks_up_again(fake: FakeConvoy) -> None:
    route = fake.route
    raced: list[int] = []

    def racing(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/application/users" and not raced:
            raced.append(fake.add_user("alice@example.com")["id"])  # another job of the same customer
        return route(request)

    fake.route = racing  # type: ignore[method-assign]
    provision(panel(fake), service(), LocalContext())
    assert len(fake.users) == 1
    assert only_server(fake)["user_id"] == raced[0]


def test_checkout_password_is_used_and_other_properties_only_when_whitelisted(fake: FakeConvoy) -> None:
    props = {"password": "Own-Pa55word!", "ram": "65536", "cpu": "8", "node": "2"}
    svc = service(settings={"overridable_settings": "cpu"}, properties=props)
    result, _ = provision(panel(fake), svc, LocalContext())
    server = only_server(fake)
    assert server["_password"] == "Own-Pa55word!"
    assert result.secrets["password"].get_secret_value() == "Own-Pa55word!"
    assert (server["limits"]["memory"], server["limits"]["cpu"], server["node_id"]) == (2048 * MIB, 8, 1)


@pytest.mark.parametrize(
    "properties",
    [{"os": "t-staff"}, {"os": "t-beta"}, {"os": "t-unknown"}, {"os": ""}, {"hostname": "bad_host!"}, {"hostname": ""}],
)
def test_hidden_or_unknown_template_and_bad_hostname_are_invalid_payload(
    fake: FakeConvoy, properties: dict[str, Any]
) -> None:
    with pytest.raises(InvalidPayload):
        panel(fake).create(service(properties=properties), LocalContext())
    assert fake.servers == {}
    assert fake.users == []


def test_too_few_free_addresses_fail_instead_of_a_smaller_server(fake: FakeConvoy) -> None:
    with pytest.raises(ProviderRejected) as info:
        panel(fake).create(service(settings={"ipv6": "3"}), LocalContext())
    assert "2 free ipv6 addresses, 3 needed" in info.value.message
    assert fake.servers == {}


def test_address_taken_meanwhile_is_picked_again(fake: FakeConvoy) -> None:
    fake.steal_addresses_next = 1
    provision(panel(fake), service(settings={"ipv4": "2", "ipv6": "1"}), LocalContext())
    server = only_server(fake)
    assert len(fake.addresses_of(server, "ipv4")) == 2
    assert len(fake.addresses_of(server, "ipv6")) == 1


# --- terminate, suspend ------------------------------------------------------------------------------


def test_terminate_waits_until_the_server_is_gone(fake: FakeConvoy) -> None:
    ext = panel(fake)
    provision(ext, service(), LocalContext())
    svc, job = with_uuid(service(), fake), LocalContext()
    fake.delete_reads = 2
    with pytest.raises(Pending):
        ext.terminate(svc, job)
    assert only_server(fake)["status"] == "deleting"
    result = ext.terminate(svc, job)
    assert result.data == {"server": svc.properties["server_uuid"], "deleted": True}
    assert fake.servers == {}
    assert all(a["server_id"] is None for a in fake.addresses)
    assert fake.count("DELETE") == 1


def test_terminate_of_a_server_already_gone_succeeds(fake: FakeConvoy) -> None:
    ext = panel(fake)
    assert ext.terminate(service(), LocalContext()).data == {"server": None, "deleted": False}
    gone = service(properties={"server_uuid": "0b1c2d3e-0000-4000-8000-000000000000"})
    assert ext.terminate(gone, LocalContext()).data["deleted"] is False


def test_terminate_without_stored_uuid_finds_the_server(fake: FakeConvoy) -> None:
    fake.delete_reads = 1
    ext = panel(fake)
    provision(ext, service(), LocalContext())
    assert ext.terminate(service(), LocalContext()).data["deleted"] is True
    assert fake.servers == {}


def test_failed_deletion_fails_the_job(fake: FakeConvoy) -> None:
    ext = panel(fake)
    provision(ext, service(), LocalContext())
    fake.delete_reads, fake.delete_outcome = 1, "deletion_failed"
    with pytest.raises(ProviderRejected) as info:
        ext.terminate(with_uuid(service(), fake), LocalContext())
    assert "administrator" in info.value.message


def test_suspend_while_deleting_is_retryable_and_unknown_uuid_is_not_found(fake: FakeConvoy) -> None:
    ext = panel(fake)
    provision(ext, service(), LocalContext())
    svc = with_uuid(service(), fake)
    only_server(fake)["status"] = "deleting"
    with pytest.raises(ProviderUnavailable) as info:
        ext.suspend(svc, LocalContext())
    assert info.value.provider_status == 409
    with pytest.raises(NotFound):
        ext.suspend(service(properties={"server_uuid": "deadbeef"}), LocalContext())


# --- upgrade ----------------------------------------------------------------------------------------


def test_upgrade_tops_up_and_shrinks_addresses_and_keeps_bandwidth_unlimited(fake: FakeConvoy) -> None:
    ext = panel(fake)
    provision(ext, service(settings={"bandwidth": "100"}), LocalContext())
    svc = with_uuid(service(settings={"ram": "4096", "ipv4": "3", "bandwidth": ""}), fake)
    first = [a["id"] for a in fake.addresses_of(only_server(fake), "ipv4")]
    for _ in range(2):  # repeating an upgrade changes nothing more
        ext.upgrade(svc, LocalContext())
    server = only_server(fake)
    ipv4 = [a["id"] for a in fake.addresses_of(server, "ipv4")]
    assert len(ipv4) == 3
    assert set(first) <= set(ipv4)
    assert (server["limits"]["memory"], server["limits"]["bandwidth"]) == (4096 * MIB, None)
    ext.upgrade(with_uuid(service(settings={"ipv4": "1"}), fake), LocalContext())
    (kept,) = fake.addresses_of(server, "ipv4")
    assert kept["id"] in ipv4


def test_upgrade_not_applied_is_retryable(fake: FakeConvoy) -> None:
    ext = panel(fake)
    provision(ext, service(), LocalContext())
    route = fake.route

    def ignoring(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":  # as if the new build was answered but not kept
            return httpx.Response(200, json={"data": fake._view(only_server(fake))})
        return route(request)

    fake.route = ignoring  # type: ignore[method-assign]
    with pytest.raises(ProviderUnavailable):
        ext.upgrade(with_uuid(service(settings={"ram": "4096"}), fake), LocalContext())


# --- login --------------------------------------------------------------------------------------------


def test_login_url_is_a_fresh_sso_link_for_the_owner(fake: FakeConvoy) -> None:
    ext = panel(fake)
    provision(ext, service(), LocalContext())
    svc = with_uuid(service(), fake)
    first = ext.login_url(svc, LocalContext()).data["url"]
    second = ext.login_url(svc, LocalContext()).data["url"]
    assert first == f"{HOST}/authenticate?token={fake.sso_tokens[0]}"
    assert second == f"{HOST}/authenticate?token={fake.sso_tokens[1]}"
    assert len(fake.users) == 1


def test_login_url_never_creates_a_user(fake: FakeConvoy) -> None:
    with pytest.raises(NotFound):
        panel(fake).login_url(service(), LocalContext())
    assert fake.users == []


# --- errors -----------------------------------------------------------------------------------------


def test_bad_key_is_auth_failed_without_the_key(fake: FakeConvoy) -> None:
    wrong = "convoy-wrong-token-12345678"
    with pytest.raises(AuthFailed) as info:
        panel(fake, key=wrong).test_config()
    assert wrong not in str(info.value)
    assert panel(fake).test_config().data == {"ok": True}


def test_validation_error_is_permanent_and_names_the_reason(fake: FakeConvoy) -> None:
    fake.nodes[1]["memory"] = 1024 * MIB
    with pytest.raises(ProviderRejected) as info:
        panel(fake).create(service(), LocalContext())
    assert "exceeds the node's limit" in info.value.message
    assert info.value.provider_status == 422
    assert fake.servers == {}


def test_error_messages_carry_no_query_string(fake: FakeConvoy) -> None:
    fake.fail_next(500, match="GET /api/application/users")
    with pytest.raises(ProviderUnavailable) as info:
        panel(fake).create(service(), LocalContext())
    assert "GET /api/application/users" in info.value.message
    assert "alice" not in info.value.message


# --- pure mapping -----------------------------------------------------------------------------------


def test_derived_passwords_are_stable_strong_and_distinct() -> None:
    first = m.derive_password(KEY, "salt", "account")
    assert first == m.derive_password(KEY, "salt", "account")
    assert PASSWORD.match(first)
    assert len(first) == 24
    assert first != m.derive_password(KEY, "salt", "user")
    assert first != m.derive_password(KEY, "other", "account")
    assert all(PASSWORD.match(m.derive_password(KEY, str(i), "user")) for i in range(200))


def test_server_name_keeps_the_marker_within_40_characters() -> None:
    assert m.server_name("a" * 40, "Bob", 99) == "a" * 36 + " #99"
    assert m.server_name("vps.example.com", "Bob", 7) == "vps.example.com Bob #7"
