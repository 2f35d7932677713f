"""DirectAdmin's own quirks; the shared lifecycle/retry/redaction suite covers the rest."""

from __future__ import annotations

import re
import string
from typing import Any

import httpx
import pytest

from extensions import get_extension
from extensions.base import LocalContext, OperationResult, Service
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
from extensions.servers.directadmin import DirectAdmin
from extensions.servers.directadmin import mapping as m
from extensions.servers.directadmin.config import DirectAdminConfig, DirectAdminProduct
from tests.fakes.directadmin import FakeDirectAdmin

KEY = "da-test-login-key-7c2e41"
HOST = "https://da.example.com:2222"
DOMAIN = "shop.example.org"
EMAIL = "alice@example.com"


@pytest.fixture
def fake() -> FakeDirectAdmin:
    return FakeDirectAdmin(admin="reseller", password=KEY)


def panel(fake: FakeDirectAdmin, key: str = KEY) -> DirectAdmin:
    config = {"host": HOST + "/", "username": "reseller", "password": key}
    ext = get_extension("servers", "directadmin", config, transport=fake.transport())
    assert isinstance(ext, DirectAdmin)
    return ext


def service(settings: dict[str, Any] | None = None, properties: dict[str, Any] | None = None) -> Service:
    return Service.model_validate(
        {
            "id": 11,
            "user": {"id": 1, "email": EMAIL},
            "product": {"id": 3, "name": "Web", "settings": {"package": "basic", "ip": "", **(settings or {})}},
            "properties": {"domain": DOMAIN, **(properties or {})},
        }
    )


def created(fake: FakeDirectAdmin, **properties: Any) -> tuple[Service, OperationResult]:
    result = panel(fake).create(service(), LocalContext())
    return service(properties={**result.properties, **properties}), result


def only_account(fake: FakeDirectAdmin, domain: str = DOMAIN) -> dict[str, str]:
    accounts = fake.accounts_for(domain)
    assert len(accounts) == 1
    return accounts[0]


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Usernames the integration will draw, in order."""
    queue: list[str] = []
    monkeypatch.setattr(m, "new_username", lambda domain: queue.pop(0))
    return queue


# --- config -----------------------------------------------------------------------------------------


def test_config_strips_trailing_slash_and_hides_the_password() -> None:
    config = DirectAdminConfig.model_validate({"host": f" {HOST}/ ", "username": "admin", "password": KEY})
    assert config.host == HOST
    assert KEY not in repr(config)
    fields = {f["name"]: f for f in DirectAdmin.get_config()}
    assert fields["password"]["type"] == "password"
    assert [f for f in fields if fields[f]["required"]] == ["host", "username", "password"]


@pytest.mark.parametrize(
    "bad",
    [{"password": None}, {"host": "da.example.com:2222"}, {"username": "admin|user"}, {"ca_file": "/nope.pem"}],
)
def test_bad_config_is_invalid_config_without_the_secret(bad: dict[str, Any]) -> None:
    raw = {"host": HOST, "username": "admin", "password": KEY, **bad}
    with pytest.raises(InvalidConfig) as info:
        DirectAdmin.parse_config({k: v for k, v in raw.items() if v is not None})
    assert next(iter(bad)) in info.value.message
    assert KEY not in info.value.message


def test_product_settings_parse_paymenter_strings() -> None:
    settings = DirectAdminProduct.model_validate({"package": " pro ", "ip": "", "notify": "0"})
    assert (settings.package, settings.ip, settings.notify) == ("pro", None, False)
    assert DirectAdminProduct.model_validate({"package": "pro", "notify": "1"}).notify is True
    with pytest.raises(ValueError, match="package"):
        DirectAdminProduct.model_validate({"package": ""})


# --- create -----------------------------------------------------------------------------------------


def test_password_is_a_sealed_secret_that_logs_in(fake: FakeDirectAdmin) -> None:
    _, result = created(fake)
    account = only_account(fake)
    assert result.secrets["directadmin_password"].get_secret_value() == account["password"]
    assert result.properties == {"directadmin_username": account["username"]}
    assert account["password"] not in repr(result.data)
    assert account["username"].startswith("shop")
    assert account["email"] == EMAIL
    assert fake.mails == [], "DirectAdmin's own welcome mail is opt-in"


def test_empty_ip_takes_the_first_reseller_ip_and_a_set_one_is_used(fake: FakeDirectAdmin) -> None:
    panel(fake).create(service(), LocalContext())
    assert only_account(fake)["ip"] == "192.0.2.10"
    other = service(settings={"ip": "192.0.2.11", "notify": "1"}, properties={"domain": "b.example.org"})
    panel(fake).create(other, LocalContext())
    assert only_account(fake, "b.example.org")["ip"] == "192.0.2.11"
    assert fake.mails == [only_account(fake, "b.example.org")["username"]]


def test_no_reseller_ip_is_provider_rejected(fake: FakeDirectAdmin) -> None:
    fake.ips = []
    with pytest.raises(ProviderRejected, match="No IP address available"):
        panel(fake).create(service(), LocalContext())


def test_lost_answer_then_retry_adopts_with_the_same_password(fake: FakeDirectAdmin) -> None:
    ctx = LocalContext()
    fake.drop_response_next(r"POST /CMD_API_ACCOUNT_USER$")
    with pytest.raises(ProviderUnavailable):
        panel(fake).create(service(), ctx)
    result = panel(fake).create(service(), ctx)
    assert result.data["adopted"] is True
    assert result.secrets["directadmin_password"].get_secret_value() == only_account(fake)["password"]


def test_name_held_by_another_of_our_accounts_draws_a_new_one(fake: FakeDirectAdmin, names: list[str]) -> None:
    fake.add_user("shopaaa", "elsewhere.example.net")
    names += ["shopaaa", "shopbbb"]
    panel(fake).create(service(), LocalContext())
    assert only_account(fake)["username"] == "shopbbb"
    assert only_account(fake, "elsewhere.example.net")["username"] == "shopaaa"


def test_name_held_by_another_resellers_account_draws_a_new_one(fake: FakeDirectAdmin, names: list[str]) -> None:
    fake.add_user("shopaaa", "foreign.example.net", creator="otherreseller")  # invisible to us
    names += ["shopaaa", "shopbbb"]
    panel(fake).create(service(), LocalContext())
    assert only_account(fake)["username"] == "shopbbb"


def test_domain_held_by_someone_else_is_a_conflict(fake: FakeDirectAdmin) -> None:
    fake.add_user("shopxyz", DOMAIN, email="mallory@example.net")
    with pytest.raises(Conflict, match="domain already exists"):
        panel(fake).create(service(), LocalContext())
    assert only_account(fake)["username"] == "shopxyz"


def test_lost_checkpoint_adopts_our_account_by_domain(fake: FakeDirectAdmin) -> None:
    _, first = created(fake)
    again = panel(fake).create(service(), LocalContext())
    assert again.data["adopted"] is True
    assert again.properties == first.properties
    assert again.secrets == {}, "the password of an account found by domain is not known"
    only_account(fake)


def test_package_override_needs_the_product_whitelist(fake: FakeDirectAdmin) -> None:
    panel(fake).create(service(properties={"package": "pro"}), LocalContext())
    assert only_account(fake)["package"] == "basic"
    listed = service(settings={"overridable_settings": "package"}, properties={"package": "pro", "domain": "b.io"})
    panel(fake).create(listed, LocalContext())
    assert only_account(fake, "b.io")["package"] == "pro"


@pytest.mark.parametrize("domain", [None, "", "not a domain", "http://x.example.com/"])
def test_missing_or_bad_domain_is_invalid_payload(fake: FakeDirectAdmin, domain: str | None) -> None:
    with pytest.raises(InvalidPayload, match="domain"):
        panel(fake).create(service(properties={"domain": domain}), LocalContext())
    assert fake.users == {}


def test_refused_create_carries_the_panels_reason(fake: FakeDirectAdmin) -> None:
    with pytest.raises(ProviderRejected, match="Unable to create user: Unknown package$"):
        panel(fake).create(service(settings={"package": "res1"}), LocalContext())
    assert fake.users == {}


# --- suspend, terminate, upgrade, login ------------------------------------------------------------


@pytest.mark.parametrize("toggle", [True, False])
def test_suspend_and_unsuspend_twice_end_in_the_asked_state(fake: FakeDirectAdmin, toggle: bool) -> None:
    fake.toggle = toggle
    svc, _ = created(fake)
    for _ in range(2):
        panel(fake).suspend(svc, LocalContext())
        assert only_account(fake)["suspended"] == "yes"
    for _ in range(2):
        panel(fake).unsuspend(svc, LocalContext())
        assert only_account(fake)["suspended"] == "no"


def test_suspend_of_a_missing_account_is_not_found(fake: FakeDirectAdmin) -> None:
    with pytest.raises(NotFound):
        panel(fake).suspend(service(properties={"directadmin_username": "shopzzz"}), LocalContext())


def test_account_serving_another_domain_is_never_touched(fake: FakeDirectAdmin) -> None:
    fake.add_user("shopaaa", "elsewhere.example.net")
    svc = service(properties={"directadmin_username": "shopaaa"})
    for op in ("suspend", "terminate", "upgrade"):
        with pytest.raises(Conflict):
            panel(fake).operation(op)(svc, LocalContext())
    assert fake.users["shopaaa"]["suspended"] == "no"


def test_terminate_of_an_account_already_gone_succeeds(fake: FakeDirectAdmin) -> None:
    svc, _ = created(fake)
    fake.users.clear()
    assert panel(fake).terminate(svc, LocalContext()).data["already_gone"] is True


def test_terminate_without_the_username_finds_the_account_by_domain(fake: FakeDirectAdmin) -> None:
    created(fake)
    assert panel(fake).terminate(service(), LocalContext()).data["deleted"] is True
    assert fake.accounts_for(DOMAIN) == []


def test_upgrade_to_an_unknown_package_keeps_the_old_one(fake: FakeDirectAdmin) -> None:
    svc, _ = created(fake)
    with pytest.raises(ProviderRejected, match="Unknown package"):
        panel(fake).upgrade(service(settings={"package": "gold"}, properties=svc.properties), LocalContext())
    assert only_account(fake)["package"] == "basic"


def test_login_url_logs_in_as_the_customer_without_their_password(fake: FakeDirectAdmin) -> None:
    svc, _ = created(fake)
    account = only_account(fake)
    account["password"] = "Changed-by-the-customer-1"
    url = panel(fake).login_url(svc, LocalContext()).data["url"]
    assert url.startswith("https://da.test:2222/CMD_LOGIN_URL?hash=")
    assert fake.login_urls[url.rsplit("=", 1)[1]] == account["username"]


# --- errors -----------------------------------------------------------------------------------------


def test_html_login_page_is_auth_failed(fake: FakeDirectAdmin) -> None:
    fake.html_login = True
    with pytest.raises(AuthFailed, match="HTML page"):
        panel(fake).test_config()


def test_bad_password_and_restricted_login_key_are_auth_failed(fake: FakeDirectAdmin) -> None:
    with pytest.raises(AuthFailed) as info:
        panel(fake, key="wrong-login-key-123456").test_config()
    assert info.value.provider_status == 401
    assert "wrong-login-key" not in info.value.message
    svc, _ = created(fake)
    fake.forbidden.add("CMD_API_LOGIN_KEYS")
    with pytest.raises(AuthFailed) as info:
        panel(fake).login_url(svc, LocalContext())
    assert info.value.provider_status == 403


def test_redirect_is_not_followed(fake: FakeDirectAdmin) -> None:
    fake.fail_next(302, headers={"Location": "https://elsewhere.example.com/"})
    with pytest.raises(ProviderRejected) as info:
        panel(fake).test_config()
    assert info.value.provider_status == 302


def test_lookup_errors_are_never_taken_as_absent(fake: FakeDirectAdmin) -> None:
    svc, _ = created(fake)
    fake.fail_next(500, match="SHOW_USER_CONFIG")
    with pytest.raises(ProviderUnavailable):
        panel(fake).terminate(svc, LocalContext())
    assert len(fake.accounts_for(DOMAIN)) == 1


# --- pure parts -------------------------------------------------------------------------------------


def answer(text: str, content_type: str = "text/plain") -> ApiResponse:
    return ApiResponse(200, httpx.Headers({"Content-Type": content_type}), text, None)


def test_answers_decode_entities_lists_and_errors() -> None:
    text = "error=1&text=Unable%20to%20create&details=That%20domain%20already%20exists&#60;br&#62;"
    assert m.fields(text)["details"] == "That domain already exists<br>"
    assert m.body_error(answer(text)) == "Unable to create: That domain already exists"
    assert m.body_error(answer("error=0&text=OK")) is None
    assert m.body_error(answer("list[]=a&list[]=b")) is None
    assert m.items("list[]=a&list[]=b&list[]=") == ["a", "b"]
    assert m.account("error=1&text=nope") is None
    with pytest.raises(AuthFailed):
        m.body_error(answer("<html>login</html>", "text/html"))


def test_sso_answer_without_error_key_is_rejected() -> None:
    with pytest.raises(ProviderRejected, match="Unexpected DirectAdmin response"):
        m.login_url("details=https://da.test/CMD_LOGIN_URL?hash=1")
    assert m.login_url("error=0&details=https%3A%2F%2Fda.test%2FX%3Fhash%3D1") == "https://da.test/X?hash=1"


def test_generated_credentials_follow_directadmin_rules() -> None:
    assert m.username_prefix("9lives-shop.example.com") == "lives"
    assert m.username_prefix("123.example.com") == "da"
    for _ in range(50):
        username, password = m.new_username("shop.example.org"), m.new_password()
        assert re.fullmatch(r"[a-z][a-z0-9]{2,9}", username)
        assert len(password) == 16
        for group in (string.ascii_lowercase, string.ascii_uppercase, string.digits, m.SYMBOLS):
            assert any(c in group for c in password)


def test_suspend_request_names_the_direction_for_every_build() -> None:
    form = m.set_suspended("shopaaa", True).form
    assert form == {"location": "CMD_SELECT_USERS", "suspend": "suspend", "dosuspend": "yes", "select0": "shopaaa"}
    assert m.set_suspended("shopaaa", False).form == {
        "location": "CMD_SELECT_USERS",
        "suspend": "unsuspend",
        "dounsuspend": "yes",
        "select0": "shopaaa",
    }
