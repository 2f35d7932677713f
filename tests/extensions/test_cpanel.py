"""cPanel/WHM's own quirks; the shared lifecycle/retry/redaction suite covers the rest."""

from __future__ import annotations

from typing import Any

import certifi
import pytest

from extensions import get_extension
from extensions.base import LocalContext, Service
from extensions.errors import (
    AuthFailed,
    Conflict,
    InvalidConfig,
    InvalidPayload,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
)
from extensions.servers.cpanel import CPanel
from extensions.servers.cpanel import mapping as m
from extensions.servers.cpanel.config import CPanelConfig
from tests.fakes.cpanel import FakeWhm

TOKEN = "WHMTESTTOKEN0123456789ABCDEFGHIJ"
DOMAIN = "shop.example.org"
EMAIL = "bob@example.com"


@pytest.fixture
def fake() -> FakeWhm:
    return FakeWhm(token=TOKEN, user="reseller1")


def whm(fake: FakeWhm, token: str = TOKEN, **extra: Any) -> CPanel:
    config = {"host": "https://whm.example.com:2087/", "username": "reseller1", "apikey": token, **extra}
    ext = get_extension("servers", "cpanel", config, transport=fake.transport())
    assert isinstance(ext, CPanel)
    return ext


def service(settings: dict[str, Any] | None = None, properties: dict[str, Any] | None = None) -> Service:
    return Service.model_validate(
        {
            "id": 21,
            "user": {"id": 5, "email": EMAIL},
            "product": {"id": 2, "name": "Hosting", "settings": {"package": "basic", **(settings or {})}},
            "properties": {"domain": DOMAIN, **(properties or {})},
        }
    )


def created(fake: FakeWhm, ext: CPanel, svc: Service | None = None) -> Service:
    """The service as the billing system sends it back after create, with ``cpanel_username`` stored."""
    svc = svc or service()
    result = ext.create(svc, LocalContext())
    return svc.model_copy(update={"properties": {**svc.properties, **result.properties}})


def ours(fake: FakeWhm) -> dict[str, Any]:
    (account,) = fake.on_domain(DOMAIN)
    return account


# --- config -----------------------------------------------------------------------------------------


def test_config_uses_paymenter_names_and_accepts_a_host_without_scheme() -> None:
    config = CPanelConfig.model_validate({"host": " whm.example.com:2087/ ", "username": "root", "apikey": TOKEN})
    assert config.host == "https://whm.example.com:2087"
    assert TOKEN not in repr(config)
    fields = {f["name"]: f for f in CPanel.get_config()}
    assert fields["apikey"]["type"] == "password"
    assert [f["name"] for f in CPanel.get_product_config()][0] == "package"


def test_config_rejects_other_schemes_and_unreadable_ca_files(fake: FakeWhm) -> None:
    base = {"host": "https://whm.example.com", "username": "root", "apikey": TOKEN}
    with pytest.raises(InvalidConfig):
        CPanel.parse_config({**base, "host": "ftp://whm.example.com"})
    with pytest.raises(InvalidConfig):
        CPanel({**base, "ca_file": "/nonexistent"})
    CPanel({**base, "ca_file": certifi.where()})  # a readable bundle is accepted


def test_wrong_token_is_auth_failed(fake: FakeWhm) -> None:
    with pytest.raises(AuthFailed):
        whm(fake, token="WRONGTOKEN0000000000000000000000").test_config()


def test_test_config_reads_the_body_not_just_the_status(fake: FakeWhm) -> None:
    assert whm(fake).test_config().data["packages"] == ["basic", "pro"]
    fake.denied.add("listpkgs")
    with pytest.raises(ProviderRejected, match="Access denied"):
        whm(fake).test_config()


# --- create -----------------------------------------------------------------------------------------


def test_create_stores_the_username_and_seals_the_password(fake: FakeWhm) -> None:
    result = whm(fake).create(service(), LocalContext())
    account = ours(fake)
    assert result.properties == {"cpanel_username": account["user"]}
    assert m.valid_username(account["user"])
    assert len(account["user"]) == 8
    assert account["email"] == EMAIL
    assert account["plan"] == "basic"
    assert result.secrets["password"].get_secret_value() == account["password"]
    assert account["password"] not in repr(result.data)


def test_rejected_create_is_an_error_and_stores_nothing(fake: FakeWhm) -> None:
    with pytest.raises(ProviderRejected, match="Unable to find the package"):
        whm(fake).create(service({"package": "gold"}), LocalContext())
    assert fake.accounts == {}


def test_invalid_domain_is_refused_before_calling_whm(fake: FakeWhm) -> None:
    with pytest.raises(InvalidPayload):
        whm(fake).create(service(properties={"domain": "not a domain"}), LocalContext())
    assert fake.calls == []


def test_username_of_someone_elses_account_is_replaced(fake: FakeWhm) -> None:
    fake.add_account("shopabcd", "other.example.net")
    job = LocalContext()
    job.save_checkpoint("username", "shopabcd")
    result = whm(fake).create(service(), job)
    assert result.properties["cpanel_username"] != "shopabcd"
    assert job.checkpoint("username") == result.properties["cpanel_username"] == ours(fake)["user"]
    assert fake.accounts["shopabcd"]["domain"] == "other.example.net"


@pytest.mark.parametrize("refused", ["root", "testshop"])
def test_username_whm_refuses_is_replaced(fake: FakeWhm, refused: str) -> None:
    job = LocalContext()
    job.save_checkpoint("username", refused)
    result = whm(fake).create(service(), job)
    assert result.properties["cpanel_username"] not in (refused, "")
    assert refused not in fake.accounts


def test_domain_of_another_customer_is_a_conflict_and_never_touched(fake: FakeWhm) -> None:
    fake.add_account("someone1", DOMAIN, email="mallory@example.net")
    ext = whm(fake)
    with pytest.raises(Conflict):
        ext.create(service(), LocalContext())
    assert ext.terminate(service(), LocalContext()).data["already_gone"] is True
    assert ours(fake)["user"] == "someone1"


def test_create_with_no_checkpoint_left_adopts_the_customers_account(fake: FakeWhm) -> None:
    first = whm(fake).create(service(), LocalContext())
    again = whm(fake).create(service(), LocalContext())  # ledger and checkpoints lost
    assert again.properties == first.properties
    assert again.data["adopted"] is True
    assert again.secrets == {}
    assert len(fake.accounts) == 1


def test_locked_whm_is_retryable_and_changes_nothing(fake: FakeWhm) -> None:
    fake.busy_next()
    with pytest.raises(ProviderUnavailable):
        whm(fake).create(service(), LocalContext())
    assert fake.accounts == {}


def test_package_override_only_when_listed_and_also_on_upgrade(fake: FakeWhm) -> None:
    ext = whm(fake)
    svc = created(fake, ext, service(properties={"package": "pro"}))
    assert ours(fake)["plan"] == "basic"
    ext.terminate(svc, LocalContext())
    listed = service({"overridable_settings": "package"}, {"package": "pro"})
    svc = created(fake, ext, listed)
    assert ours(fake)["plan"] == "pro"
    fake.accounts[svc.properties["cpanel_username"]]["plan"] = "basic"
    ext.upgrade(svc, LocalContext())
    assert ours(fake)["plan"] == "pro"


# --- later operations -------------------------------------------------------------------------------


def test_upgrade_to_an_unknown_package_fails_and_keeps_the_plan(fake: FakeWhm) -> None:
    ext = whm(fake)
    svc = created(fake, ext)
    with pytest.raises(ProviderRejected, match="does not exist"):
        ext.upgrade(service({"package": "gold"}, svc.properties), LocalContext())
    assert ours(fake)["plan"] == "basic"


def test_repeats_and_races_that_whm_answers_with_result_0_succeed(fake: FakeWhm) -> None:
    fake.strict_repeats = True
    ext = whm(fake)
    svc = created(fake, ext)
    user = svc.properties["cpanel_username"]
    ext.suspend(svc, LocalContext())
    ext.suspend(svc, LocalContext())
    assert ours(fake)["suspended"] == 1
    fake.before_next("unsuspendacct", lambda: fake.accounts[user].update(suspended=0))  # an admin was faster
    ext.unsuspend(svc, LocalContext())
    assert ours(fake)["suspended"] == 0
    fake.before_next("removeacct", lambda: fake.accounts.pop(user))
    assert ext.terminate(svc, LocalContext()).data["deleted"] is True
    assert fake.accounts == {}


def test_account_removed_outside_billing_is_not_found_but_terminate_succeeds(fake: FakeWhm) -> None:
    ext = whm(fake)
    svc = created(fake, ext)
    fake.accounts.clear()
    with pytest.raises(NotFound):
        ext.suspend(svc, LocalContext())
    assert ext.terminate(svc, LocalContext()).data["already_gone"] is True


def test_login_url_is_a_sealed_one_time_session(fake: FakeWhm) -> None:
    ext = whm(fake)
    created(fake, ext)
    result = ext.login_url(service(), LocalContext())  # no cpanel_username: found by domain and owner
    url = result.secrets["url"].get_secret_value()
    assert url.startswith("https://")
    assert "session=" in url
    assert url not in repr(result.data)


# --- values -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["testing.example.com", "123abc.example.com", "xn--bcher-kva.de"])
def test_generated_usernames_follow_cpanels_rules(domain: str) -> None:
    for _ in range(50):
        user = m.make_username(domain)
        assert m.valid_username(user)
        assert len(user) == 8


def test_domains_are_lower_cased_and_idna_encoded() -> None:
    assert m.domain_of({"domain": " Bücher.DE. "}) == "xn--bcher-kva.de"
    with pytest.raises(InvalidPayload):
        m.domain_of({"domain": "-bad-.com"})
