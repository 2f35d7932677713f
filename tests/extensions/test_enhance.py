"""Enhance's own quirks; the shared lifecycle/retry/redaction suite covers the rest."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from extensions import get_extension
from extensions.base import LocalContext, Service
from extensions.errors import (
    AuthFailed,
    Conflict,
    InvalidConfig,
    InvalidPayload,
    NotFound,
    Pending,
    ProviderRejected,
    ProviderUnavailable,
)
from extensions.servers.enhance import Enhance
from extensions.servers.enhance import mapping as m
from extensions.servers.enhance.config import EnhanceConfig, EnhanceProduct
from tests.fakes.enhance import MASTER, FakeEnhance

TOKEN = "enh_test_token_4f8a2b6c9d"
HOST = "https://cp.example.com"
USER = {"id": 1, "email": "alice@example.com", "name": "Alice Liddell"}
SUBSCRIPTIONS = r"^POST /api/orgs/[^/]+/customers/[^/]+/subscriptions$"


@pytest.fixture
def fake() -> FakeEnhance:
    return FakeEnhance(api_key=TOKEN)


def panel(fake: FakeEnhance, token: str = TOKEN) -> Enhance:
    config = {"host": HOST + "/", "apikey": token, "orgId": MASTER}
    ext = get_extension("servers", "enhance", config, transport=fake.transport())
    assert isinstance(ext, Enhance)
    return ext


def service(
    service_id: int = 11,
    settings: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
) -> Service:
    return Service.model_validate(
        {
            "id": service_id,
            "user": user or USER,
            "product": {"id": 7, "name": "Hosting", "settings": {"plan": "1", **(settings or {})}},
            "properties": {"domain": f"site{service_id}.example.com", **(properties or {})},
        }
    )


def only_subscription(fake: FakeEnhance, service_id: int = 11) -> dict[str, Any]:
    (found,) = fake.live_subscriptions(m.marker(service_id))
    return found


def only_customer(fake: FakeEnhance) -> dict[str, Any]:
    (found,) = fake.customers()
    return found


def with_result(svc: Service, properties: dict[str, str]) -> Service:
    return svc.model_copy(update={"properties": {**svc.properties, **properties}})


# --- config -----------------------------------------------------------------------------------------


def test_config_uses_paymenter_names_and_hides_the_token() -> None:
    config = EnhanceConfig.model_validate({"host": " https://cp.example.com/ ", "apikey": TOKEN, "orgId": MASTER})
    assert config.host == HOST
    assert TOKEN not in repr(config)
    fields = {f["name"]: f for f in Enhance.get_config()}
    assert set(fields) == {"host", "apikey", "orgId"}
    assert fields["apikey"]["type"] == "password"
    assert [f["name"] for f in Enhance.get_product_config()][0] == "plan"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"host": "ftp://hidden-host.example", "apikey": TOKEN, "orgId": MASTER}, "host"),
        ({"host": HOST, "apikey": TOKEN, "orgId": "not-a-uuid"}, "orgId"),
        ({"host": HOST, "orgId": MASTER}, "apikey"),
    ],
)
def test_bad_config_names_the_field_without_echoing_values(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        Enhance.parse_config(raw)
    assert field in info.value.message
    assert "hidden-host" not in info.value.message
    assert TOKEN not in info.value.message


def test_product_plan_arrives_as_a_string() -> None:
    settings = EnhanceProduct.model_validate({"plan": "2", "location": ""})
    assert (settings.plan, settings.location) == (2, None)
    with pytest.raises(ValueError, match="plan"):
        EnhanceProduct.model_validate({"plan": "0"})


def test_test_config_reads_the_provider_org(fake: FakeEnhance) -> None:
    assert panel(fake).test_config().data == {"ok": True}
    with pytest.raises(AuthFailed) as info:
        panel(fake, token="enh_wrong_token_0000").test_config()
    assert "enh_wrong_token" not in str(info.value.to_dict())
    assert "invalid_session_token" in info.value.message


# --- create: organisation and owner ---------------------------------------------------------------


def test_create_makes_an_owned_org_a_subscription_and_a_website(fake: FakeEnhance) -> None:
    job = LocalContext()
    result = panel(fake).create(service(properties={"domain": " Site11.Example.COM. "}), job)
    org = only_customer(fake)
    sub = only_subscription(fake)
    (website,) = fake.live_websites(sub["id"])
    assert org["ownerEmail"] == USER["email"]
    assert website["domain"] == "site11.example.com"
    assert result.properties == {
        "enhance_orgId": org["id"],
        "subscription_id": str(sub["id"]),
        "website_id": website["id"],
    }
    owner = fake.owner_login(org["id"])
    assert owner is not None
    assert result.secrets["password"].get_secret_value() == owner["password"]
    assert "password" not in str(result.data)


def test_login_409_adopts_the_existing_login_as_owner(fake: FakeEnhance) -> None:
    seeded = fake.add_login("Alice@Example.com", "Alice")
    result = panel(fake).create(service(), LocalContext())
    owner = fake.owner_login(only_customer(fake)["id"])
    assert owner is not None
    assert owner["id"] == seeded["id"]
    assert len(fake.logins) == 1
    assert result.secrets == {}, "a password we did not set is never handed out"


def test_ownerless_org_from_the_php_extension_gets_its_owner(fake: FakeEnhance) -> None:
    org = fake.add_customer("Alice Liddell")  # org id stored, login creation failed: no owner
    panel(fake).create(service(properties={"enhance_orgId": org["id"]}), LocalContext())
    owner = fake.owner_login(org["id"])
    assert owner is not None
    assert owner["email"] == USER["email"]
    assert len(fake.customers()) == 1


def test_existing_member_409_is_resolved_by_lookup(fake: FakeEnhance) -> None:
    org = fake.add_customer("Alice Liddell")
    login = fake.add_login(USER["email"])
    fake.members[org["id"]].append({"id": "m-1", "loginId": login["id"], "roles": ["Owner"]})
    panel(fake).create(service(properties={"enhance_orgId": org["id"]}), LocalContext())
    assert fake.orgs[org["id"]]["ownerId"] == "m-1"
    assert len(fake.members[org["id"]]) == 1


def test_lost_org_answer_adopts_the_ownerless_org(fake: FakeEnhance) -> None:
    ext, job = panel(fake), LocalContext()
    fake.drop_response_next(r"^POST /api/orgs/[^/]+/customers$")
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), job)
    ext.create(service(), job)
    assert only_customer(fake)["ownerEmail"] == USER["email"]


def test_foreign_ownerless_org_is_not_adopted_without_an_own_attempt(fake: FakeEnhance) -> None:
    stranger = fake.add_customer("Alice Liddell")
    panel(fake).create(service(), LocalContext())
    assert len(fake.customers()) == 2
    assert fake.orgs[stranger["id"]]["ownerId"] is None


def test_lost_login_answer_makes_one_login_and_hands_out_no_password(fake: FakeEnhance) -> None:
    ext, job = panel(fake), LocalContext()
    fake.drop_response_next(r"^POST /api/logins$")
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), job)
    result = ext.create(service(), job)
    assert len(fake.logins) == 1
    assert fake.owner_login(only_customer(fake)["id"]) is not None
    assert result.secrets == {}


def test_password_survives_a_retry_later_in_the_create(fake: FakeEnhance) -> None:
    ext, job = panel(fake), LocalContext()
    fake.fail_next(503, match=SUBSCRIPTIONS)
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), job)
    result = ext.create(service(), job)
    owner = fake.owner_login(only_customer(fake)["id"])
    assert owner is not None
    assert result.secrets["password"].get_secret_value() == owner["password"]


def test_second_service_of_the_user_reuses_org_and_login(fake: FakeEnhance) -> None:
    ext = panel(fake)
    first = ext.create(service(11), LocalContext())
    second = ext.create(service(12), LocalContext())
    assert second.properties["enhance_orgId"] == first.properties["enhance_orgId"]
    assert len(fake.customers()) == 1
    assert len(fake.logins) == 1
    assert second.secrets == {}
    assert only_subscription(fake, 11)["id"] != only_subscription(fake, 12)["id"]


def test_owner_is_found_on_a_later_page(fake: FakeEnhance) -> None:
    ext = panel(fake)
    for i in range(25):
        ext.create(service(100 + i, user={"id": i, "email": f"user{i}@example.com", "name": f"U{i}"}), LocalContext())
    ext.create(service(), LocalContext())
    ext.create(service(12), LocalContext())
    assert len(fake.customers()) == 26


# --- create: subscription and website ---------------------------------------------------------------


def test_lost_website_answer_is_adopted_through_domain_check(fake: FakeEnhance) -> None:
    ext, job = panel(fake), LocalContext()
    fake.drop_response_next(r"^POST /api/orgs/[^/]+/websites$")
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), job)
    result = ext.create(service(), job)
    (website,) = fake.live_websites()
    assert result.properties["website_id"] == website["id"]
    assert result.data["adopted"] is True
    only_subscription(fake)


def test_stored_subscription_without_marker_is_adopted(fake: FakeEnhance) -> None:
    ext = panel(fake)
    org = ext.create(service(12), LocalContext()).properties["enhance_orgId"]
    request = m.create_subscription(MASTER, org, 1, "")  # as the PHP extension made it: no marker
    legacy = m.created_id(ext.api.send(request).body)
    result = ext.create(service(properties={"subscription_id": legacy}), LocalContext())
    assert result.properties["subscription_id"] == legacy
    assert len(fake.subscriptions) == 2
    assert len(fake.live_websites(int(legacy))) == 1


@pytest.mark.parametrize(
    ("domain", "error"),
    [("site12.example.com", Conflict), ("taken.example.net", Conflict), ("example.org", ProviderRejected)],
)
def test_unusable_domain_fails_before_a_subscription_exists(
    fake: FakeEnhance, domain: str, error: type[Exception]
) -> None:
    ext = panel(fake)
    ext.create(service(12), LocalContext())  # site12 belongs to another subscription of this customer
    ext.create(
        service(13, properties={"domain": "taken.example.net"}, user={"id": 2, "email": "b@x.io"}), LocalContext()
    )
    with pytest.raises(error):
        ext.create(service(properties={"domain": domain}), LocalContext())
    assert fake.live_subscriptions(m.marker(11)) == []


@pytest.mark.parametrize("domain", ["", "not a domain", "localhost", "-bad-.com"])
def test_invalid_domain_is_invalid_payload(fake: FakeEnhance, domain: str) -> None:
    with pytest.raises(InvalidPayload):
        panel(fake).create(service(properties={"domain": domain}), LocalContext())
    assert fake.customers() == []


def test_config_options_override_plan_and_location_only_when_whitelisted(fake: FakeEnhance) -> None:
    ext = panel(fake)
    ext.create(service(properties={"plan": "2", "location": "eu"}), LocalContext())
    assert only_subscription(fake)["planId"] == 1
    assert fake.live_websites()[0]["serverGroupId"] is None
    settings = {"overridable_settings": "plan,location"}
    ext.create(service(12, settings=settings, properties={"plan": "2", "location": "EU"}), LocalContext())
    assert only_subscription(fake, 12)["planId"] == 2
    assert fake.live_websites(only_subscription(fake, 12)["id"])[0]["serverGroupId"] == fake.server_groups[0]["id"]


def test_location_uuid_works_without_master_org_rights(fake: FakeEnhance) -> None:
    fake.mo_level = False
    group = fake.server_groups[0]["id"]
    panel(fake).create(service(settings={"location": group}), LocalContext())
    assert fake.live_websites()[0]["serverGroupId"] == group
    with pytest.raises(AuthFailed):
        panel(fake).create(service(12, settings={"location": "eu"}), LocalContext())


def test_unknown_server_group_fails_before_a_subscription_exists(fake: FakeEnhance) -> None:
    with pytest.raises(InvalidPayload):
        panel(fake).create(service(settings={"location": "mars"}), LocalContext())
    assert fake.subscriptions == {}


def test_unknown_plan_is_provider_rejected_with_the_panel_reason(fake: FakeEnhance) -> None:
    with pytest.raises(ProviderRejected) as info:
        panel(fake).create(service(settings={"plan": "9"}), LocalContext())
    assert "invalid_input: planId is not a plan" in info.value.message
    assert fake.subscriptions == {}


# --- other operations -------------------------------------------------------------------------------


def test_suspend_waits_until_the_panel_shows_it(fake: FakeEnhance) -> None:
    ext = panel(fake)
    svc = with_result(service(), ext.create(service(), LocalContext()).properties)
    fake.lag_reads = 1
    with pytest.raises(Pending):
        ext.suspend(svc, LocalContext())
    ext.suspend(svc, LocalContext())
    assert only_subscription(fake)["suspended"] is True
    fake.lag_reads = 0
    ext.unsuspend(svc, LocalContext())
    assert only_subscription(fake)["suspended"] is False


def test_operations_find_the_subscription_without_stored_properties(fake: FakeEnhance) -> None:
    ext = panel(fake)
    ext.create(service(), LocalContext())
    ext.upgrade(service(settings={"plan": "2"}), LocalContext())
    assert only_subscription(fake)["planId"] == 2
    assert ext.terminate(service(), LocalContext()).data["deleted"] is True
    assert fake.live_subscriptions(m.marker(11)) == []
    assert fake.live_websites() == [], "the soft delete takes the website with it"


def test_suspend_or_upgrade_of_a_missing_subscription_is_not_found(fake: FakeEnhance) -> None:
    ext = panel(fake)
    with pytest.raises(NotFound):
        ext.suspend(service(), LocalContext())
    org = ext.create(service(12), LocalContext()).properties["enhance_orgId"]
    with pytest.raises(NotFound):
        ext.upgrade(service(properties={"enhance_orgId": org, "subscription_id": "999"}), LocalContext())


def test_terminate_of_something_already_gone_succeeds(fake: FakeEnhance) -> None:
    ext = panel(fake)
    assert ext.terminate(service(), LocalContext()).data == {"deleted": False, "already_gone": True}
    svc = with_result(service(), ext.create(service(), LocalContext()).properties)
    ext.terminate(svc, LocalContext())
    assert ext.terminate(svc, LocalContext()).data["already_gone"] is True
    assert ext.terminate(service(), LocalContext()).data["already_gone"] is True


def test_terminate_never_calls_an_unreachable_subscription_gone(fake: FakeEnhance) -> None:
    created = panel(fake).create(service(), LocalContext()).properties
    fake.orgs[created["enhance_orgId"]]["ownerId"] = None  # the org can no longer be found by its owner
    with pytest.raises(NotFound):
        panel(fake).terminate(service(properties={"subscription_id": created["subscription_id"]}), LocalContext())
    assert only_subscription(fake)["status"] == "active"


def test_terminate_does_not_trust_a_foreign_404(fake: FakeEnhance) -> None:
    svc = with_result(service(), panel(fake).create(service(), LocalContext()).properties)
    fake.route = lambda request: httpx.Response(404, text="<html>Not Found</html>")  # type: ignore[method-assign]
    with pytest.raises(NotFound):
        panel(fake).terminate(svc, LocalContext())


def test_recreate_after_terminate_makes_a_new_subscription_for_the_same_domain(fake: FakeEnhance) -> None:
    ext = panel(fake)
    first = ext.create(service(), LocalContext())
    ext.terminate(with_result(service(), first.properties), LocalContext())
    again = ext.create(with_result(service(), first.properties), LocalContext())
    assert again.properties["subscription_id"] != first.properties["subscription_id"]
    assert only_subscription(fake)["id"] == int(again.properties["subscription_id"])
    assert len(fake.live_websites()) == 1


def test_login_url_is_for_the_customers_owner_not_the_first_owner(fake: FakeEnhance) -> None:
    org = fake.add_customer("Alice Liddell")
    other, mine = fake.add_login("helper@example.com"), fake.add_login(USER["email"])
    fake.members[org["id"]] += [
        {"id": "m-other", "loginId": other["id"], "roles": ["Owner"]},
        {"id": "m-mine", "loginId": mine["id"], "roles": ["Owner"]},
    ]
    svc = service(properties={"enhance_orgId": org["id"]})
    url = panel(fake).login_url(svc, LocalContext()).data["url"]
    assert url.startswith("https://cp.test/login/otp?token=")
    assert fake.sso_links[url.rpartition("=")[2]] == "m-mine"


def test_login_url_without_an_org_is_not_found(fake: FakeEnhance) -> None:
    with pytest.raises(NotFound):
        panel(fake).login_url(service(), LocalContext())


# --- errors -----------------------------------------------------------------------------------------


def test_error_envelope_in_a_2xx_is_an_error(fake: FakeEnhance) -> None:
    fake.route = lambda request: httpx.Response(200, json={"code": "locked", "message": "org is locked"})  # type: ignore[method-assign]
    with pytest.raises(ProviderRejected) as info:
        panel(fake).test_config()
    assert "locked: org is locked" in info.value.message


def test_429_carries_retry_after_and_messages_keep_no_query(fake: FakeEnhance) -> None:
    fake.fail_next(429, match=r"^POST /api/logins$", headers={"Retry-After": "7"})
    with pytest.raises(ProviderUnavailable) as info:
        panel(fake).create(service(), LocalContext())
    assert info.value.retry_after == 7.0
    assert "orgId" not in info.value.message
    assert "POST /logins" in info.value.message


def test_pure_parsers() -> None:
    assert m.items({"items": [{"id": 1}, {"name": "no id"}, "x"], "total": 5}) == ([{"id": 1}], 5)
    assert m.applied({"planId": 2, "suspendedBy": MASTER}, {"planId": 2, "isSuspended": True})
    assert not m.applied({"planId": 2}, {"isSuspended": True})
    assert m.normalise_domain("Bücher.Example") == "xn--bcher-kva.example"
    with pytest.raises(ProviderRejected):
        m.created_id({"id": True})
    with pytest.raises(ProviderRejected):
        m.sso_url({"url": "x"})
    password = m.new_password()
    assert len(password) == 20
    assert any(c.isupper() for c in password)
    assert any(c.isdigit() for c in password)
