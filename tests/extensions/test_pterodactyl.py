"""Pterodactyl's own quirks; the shared lifecycle/retry/redaction suite covers the rest."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from extensions import get_extension
from extensions.base import LocalContext, Service, ServiceUser
from extensions.errors import (
    AuthFailed,
    ExtensionError,
    InvalidConfig,
    InvalidPayload,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
)
from extensions.servers.pterodactyl import Pterodactyl
from extensions.servers.pterodactyl import mapping as m
from extensions.servers.pterodactyl.config import PterodactylConfig, PterodactylProduct
from tests.fakes.pterodactyl import FakePterodactyl

KEY = "ptla_testsecretkey123456"
HOST = "https://panel.example.com"
SETTINGS = PRODUCT_SETTINGS = {
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
    "skip_scripts": "0",
    "dedicated_ip": "0",
    "start_on_completion": "1",
    "oom_killer": "0",
}


@pytest.fixture
def fake() -> FakePterodactyl:
    return FakePterodactyl(api_key=KEY)


def panel(fake: FakePterodactyl, key: str = KEY) -> Pterodactyl:
    ext = get_extension("servers", "pterodactyl", {"host": HOST + "/", "api_key": key}, transport=fake.transport())
    assert isinstance(ext, Pterodactyl)
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
            "user": user or {"id": 1, "email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"},
            "product": {"id": 7, "name": "Minecraft", "settings": {**SETTINGS, **(settings or {})}},
            "properties": properties or {},
        }
    )


def only_server(fake: FakePterodactyl, service_id: int = 11) -> dict[str, Any]:
    servers = fake.servers_for(service_id)
    assert len(servers) == 1
    return servers[0]


def port_of(fake: FakePterodactyl, allocation_id: int) -> int:
    return next(a["port"] for n in fake.nodes.values() for a in n["allocations"] if a["id"] == allocation_id)


# --- config -----------------------------------------------------------------------------------------


def test_config_strips_trailing_slash_and_hides_the_key() -> None:
    config = PterodactylConfig.model_validate({"host": " https://panel.example.com/ ", "api_key": KEY})
    assert config.host == "https://panel.example.com"
    assert KEY not in repr(config)


def test_config_missing_key_names_the_field() -> None:
    with pytest.raises(InvalidConfig) as info:
        Pterodactyl.parse_config({"host": HOST})
    assert "api_key" in info.value.message


def test_config_rejects_non_http_host_without_echoing_values() -> None:
    with pytest.raises(InvalidConfig) as info:
        Pterodactyl.parse_config({"host": "ftp://hidden-host.example", "api_key": KEY})
    assert "host" in info.value.message
    assert "hidden-host" not in info.value.message
    assert KEY not in info.value.message


def test_config_fields_are_listed() -> None:
    fields = {f["name"]: f for f in Pterodactyl.get_config()}
    assert fields["api_key"]["type"] == "password"
    assert fields["host"]["required"] is True


def test_product_settings_parse_paymenter_strings() -> None:
    settings = PterodactylProduct.model_validate(
        {
            **SETTINGS,
            "location_ids": "1, 2",
            "node": "",
            "oom_killer": "1",
            "skip_scripts": "0",
            "cpu_pinning": "0-1,3",
            "port_array": '{"SERVER_PORT": "7777", "NONE": [7778, 7779]}',
            "port_range": "25565-25570,27015",
        }
    )
    assert settings.memory == 1024
    assert settings.location_ids == [1, 2]
    assert settings.node is None
    assert settings.oom_killer is True
    assert settings.skip_scripts is False
    assert settings.port_array == {"SERVER_PORT": 7777, "NONE": [7778, 7779]}
    assert settings.port_range == ["25565-25570", "27015"]
    assert PterodactylProduct.model_validate({**SETTINGS, "location_ids": "3"}).location_ids == [3]
    assert PterodactylProduct.model_validate({k: v for k, v in SETTINGS.items() if k != "io"}).io == 500


@pytest.mark.parametrize(
    "bad",
    [
        {"port_array": "{not json"},
        {"port_array": '{"QUERY_PORT": 27015}'},
        {"cpu_pinning": "0-1,,3"},
        {"memory": "-1"},
        {"swap": "-2"},
        {"io": "5"},
        {"egg_id": ""},
    ],
)
def test_invalid_product_settings_are_invalid_payload(fake: FakePterodactyl, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidPayload):
        panel(fake).create(service(settings=bad), LocalContext())
    assert fake.servers == {}


# --- users ------------------------------------------------------------------------------------------


def test_user_email_match_is_exact_across_pages(fake: FakePterodactyl) -> None:
    for i in range(60):
        fake.add_user(f"jim{i}.bob@x.com")
    fake.add_user("jimbob@x.com")
    bob = fake.add_user("Bob@X.com")  # on page 2 of the substring search
    panel(fake).create(service(user={"id": 1, "email": "bob@x.com", "name": "Bob"}), LocalContext())
    assert only_server(fake)["user"] == bob["id"]
    assert len(fake.users) == 62


def test_partial_email_match_does_not_attach_to_another_account(fake: FakePterodactyl) -> None:
    jimbob = fake.add_user("jimbob@x.com")
    panel(fake).create(service(user={"id": 1, "email": "bob@x.com", "name": "Bob"}), LocalContext())
    owner = next(u for u in fake.users if u["id"] == only_server(fake)["user"])
    assert owner["id"] != jimbob["id"]
    assert owner["email"] == "bob@x.com"


@pytest.mark.parametrize(
    ("user", "prefix"),
    [
        ({"id": 1, "email": "zoe@x.com", "name": "Zoë Ñúñez-O'Brien"}, "zoenunezobrien_"),
        ({"id": 1, "email": "lei@x.com", "name": "李雷"}, "user_"),
        ({"id": 1, "email": "anon@x.com"}, "anon_"),
    ],
)
def test_new_user_gets_ascii_username_and_non_empty_names(
    fake: FakePterodactyl, user: dict[str, Any], prefix: str
) -> None:
    job = LocalContext()
    panel(fake).create(service(user=user), job)
    (created,) = fake.users
    assert created["username"].startswith(prefix)
    assert len(created["username"]) == len(prefix) + 4
    assert created["first_name"]
    assert created["last_name"]
    assert job.checkpoint("username") == created["username"]


def test_username_checkpoint_is_reused(fake: FakePterodactyl) -> None:
    job = LocalContext()
    job.save_checkpoint("username", "chosen_ab12")
    panel(fake).create(service(), job)
    assert [u["username"] for u in fake.users] == ["chosen_ab12"]


def test_taken_username_gets_a_new_one(fake: FakePterodactyl) -> None:
    fake.add_user("other@x.com", "taken_ab12")
    job = LocalContext()
    job.save_checkpoint("username", "taken_ab12")
    panel(fake).create(service(), job)
    mine = next(u for u in fake.users if u["email"] == "alice@example.com")
    assert mine["username"] != "taken_ab12"
    assert job.checkpoint("username") == mine["username"]
    assert only_server(fake)["user"] == mine["id"]


def test_email_taken_on_user_create_looks_up_again(fake: FakePterodactyl) -> None:
    route = fake.route
    raced: list[int] = []

    def racing(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/application/users" and not raced:
            raced.append(fake.add_user("alice@example.com")["id"])  # created by a concurrent attempt
        return route(request)

    fake.route = racing  # type: ignore[method-assign]
    panel(fake).create(service(), LocalContext())
    assert len(fake.users) == 1
    assert only_server(fake)["user"] == raced[0]


# --- create: adoption -------------------------------------------------------------------------------


def test_second_create_adopts_the_existing_server(fake: FakePterodactyl) -> None:
    ext = panel(fake)
    first = ext.create(service(), LocalContext())
    again = ext.create(service(), LocalContext())
    assert first.data["adopted"] is False
    assert again.data["adopted"] is True
    assert again.data["server"] == first.data["server"] == only_server(fake)["id"]
    assert again.properties == {"pterodactyl_server_id": str(first.data["server"])}
    assert first.data["link"] == f"{HOST}/server/{only_server(fake)['identifier']}"
    assert first.data["status"] == "installing"


def test_lost_create_answer_then_retry_adopts(fake: FakePterodactyl) -> None:
    ext = panel(fake)
    fake.drop_response_next("POST /api/application/servers$")
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), LocalContext())
    assert len(fake.servers_for(11)) == 1
    result = ext.create(service(), LocalContext())
    assert result.data["adopted"] is True
    assert result.data["server"] == only_server(fake)["id"]


def test_external_id_race_adopts_the_winner(fake: FakePterodactyl) -> None:
    route = fake.route
    raced: list[bool] = []

    def racing(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/application/servers" and not raced:
            raced.append(True)
            route(request)  # another delivery of the same job wins the race
        return route(request)

    fake.route = racing  # type: ignore[method-assign]
    result = panel(fake).create(service(), LocalContext())
    assert raced
    assert result.data["adopted"] is True
    assert result.data["server"] == only_server(fake)["id"]


def test_lookup_failure_is_never_taken_as_absent(fake: FakePterodactyl) -> None:
    ext = panel(fake)
    fake.fail_next(502, match="GET /api/application/servers/external/")
    with pytest.raises(ProviderUnavailable) as info:
        ext.create(service(), LocalContext())
    assert info.value.retryable is True
    fake.drop_response_next("GET /api/application/servers/external/")
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), LocalContext())
    assert fake.servers == {}
    assert fake.count("POST") == 0


def test_wings_down_on_create_is_retryable_and_makes_nothing(fake: FakePterodactyl) -> None:
    ext = panel(fake)
    fake.wings_down = True
    with pytest.raises(ProviderUnavailable):
        ext.create(service(), LocalContext())
    assert fake.servers == {}
    fake.wings_down = False
    ext.create(service(), LocalContext())
    only_server(fake)


# --- create: properties and deployment --------------------------------------------------------------


def test_only_whitelisted_properties_override_settings(fake: FakePterodactyl) -> None:
    props = {
        "memory": "99999",
        "cpu": "400",
        "egg_id": "6",
        "node": "2",
        "servername": "Alice's world",
        "SERVER_JARFILE": "custom.jar",
    }
    panel(fake).create(service(settings={"overridable_settings": ["cpu"]}, properties=props), LocalContext())
    server = only_server(fake)
    assert server["limits"]["memory"] == 1024
    assert server["limits"]["cpu"] == 400
    assert server["egg"] == 5
    assert server["node"] == 1
    assert server["name"] == "Alice's world"
    assert server["container"]["environment"]["SERVER_JARFILE"] == "custom.jar"


def test_whitelisted_location_replaces_location_ids(fake: FakePterodactyl) -> None:
    fake.locations[2] = {"id": 2, "short": "us", "long": "USA"}
    fake.add_node(3, "node-us", ports=[30000], location_id=2)
    settings = {"overridable_settings": "location,node"}
    panel(fake).create(service(settings=settings, properties={"location": "2"}), LocalContext())
    assert only_server(fake)["node"] == 3


def test_create_body_limits_and_flags(fake: FakePterodactyl) -> None:
    settings = {"oom_killer": "1", "cpu_pinning": "0-1", "skip_scripts": "1", "additional_allocations": "3"}
    panel(fake).create(service(settings=settings), LocalContext())
    server = only_server(fake)
    assert server["limits"]["oom_disabled"] is False
    assert server["limits"]["threads"] == "0-1"
    assert server["_skip_scripts"] is True
    assert server["feature_limits"] == {"databases": 1, "allocations": 4, "backups": 2}


def test_forced_node_uses_first_free_allocation(fake: FakePterodactyl) -> None:
    panel(fake).create(service(settings={"node": "2"}), LocalContext())
    server = only_server(fake)
    assert server["node"] == 2
    assert port_of(fake, server["allocation"]) == 27015
    assert server["container"]["environment"]["SERVER_PORT"] == "27015"


def test_forced_node_sets_server_port_only_when_the_egg_has_it(fake: FakePterodactyl) -> None:
    panel(fake).create(service(settings={"node": "2", "egg_id": "6"}), LocalContext())
    assert "SERVER_PORT" not in only_server(fake)["container"]["environment"]


def test_port_array_picks_exact_then_nearest_higher_port(fake: FakePterodactyl) -> None:
    fake.add_egg(1, 7, "img:1", "run", {"SERVER_PORT": "1", "QUERY_PORT": "2"})
    port_array = {"SERVER_PORT": 7770, "NONE": [7778], "QUERY_PORT": 27000}
    settings = {"egg_id": "7", "node": "2", "port_array": port_array, "additional_allocations": "1"}
    panel(fake).create(service(settings=settings), LocalContext())
    server = only_server(fake)
    assert port_of(fake, server["allocation"]) == 7777  # nearest higher, not the first higher in list order
    assert sorted(a["port"] for a in fake.allocations_of(server["id"])) == [7777, 7778, 27015]
    env = server["container"]["environment"]
    assert (env["SERVER_PORT"], env["QUERY_PORT"]) == ("7777", "27015")
    assert "NONE" not in env
    assert server["feature_limits"]["allocations"] == 4


def test_port_array_without_node_takes_first_node_with_room(fake: FakePterodactyl) -> None:
    for allocation in fake.nodes[1]["allocations"][:3]:
        allocation["server"] = 999
    settings = {"port_array": {"SERVER_PORT": 25565, "NONE": [25566, 25567, 25568]}}
    panel(fake).create(service(settings=settings), LocalContext())
    server = only_server(fake)
    assert server["node"] == 2  # node 1 has 3 free allocations, 4 are needed
    assert len(fake.allocations_of(server["id"])) == 4


def test_port_array_without_server_port_is_invalid_payload(fake: FakePterodactyl) -> None:
    with pytest.raises(InvalidPayload) as info:
        panel(fake).create(service(settings={"port_array": '{"QUERY_PORT": 27015}'}), LocalContext())
    assert info.value.code == "invalid_payload"
    assert fake.servers == {}


@pytest.mark.parametrize(
    "settings",
    [
        {"node": "2", "port_array": {"SERVER_PORT": 7777, "NONE": [1, 2, 3, 4]}},  # node too small
        {"port_array": {"SERVER_PORT": 7777, "NONE": list(range(1, 10))}},  # no node big enough
        {"node": "2", "memory": "999999"},  # node not deployable
        {"node": "9"},  # unknown node
    ],
)
def test_capacity_problems_are_provider_rejected(fake: FakePterodactyl, settings: dict[str, Any]) -> None:
    with pytest.raises(ProviderRejected) as info:
        panel(fake).create(service(settings=settings), LocalContext())
    assert info.value.code == "provider_rejected"
    assert fake.servers == {}


def test_auto_deploy_with_no_free_allocation_is_provider_rejected(fake: FakePterodactyl) -> None:
    for node in fake.nodes.values():
        for allocation in node["allocations"]:
            allocation["server"] = 999
    with pytest.raises(ProviderRejected):
        panel(fake).create(service(), LocalContext())


# --- other operations -------------------------------------------------------------------------------


def test_terminate_of_missing_server_succeeds(fake: FakePterodactyl) -> None:
    result = panel(fake).terminate(service(), LocalContext())
    assert result.data == {"deleted": False, "already_gone": True}


def test_terminate_when_delete_answers_404_succeeds(fake: FakePterodactyl) -> None:
    ext = panel(fake)
    ext.create(service(), LocalContext())
    fake.fail_next(404, match="DELETE /api/application/servers/")
    assert ext.terminate(service(), LocalContext()).data["already_gone"] is True


def test_terminate_frees_allocations(fake: FakePterodactyl) -> None:
    ext = panel(fake)
    server_id = ext.create(service(settings={"node": "2"}), LocalContext()).data["server"]
    assert ext.terminate(service(), LocalContext()).data == {
        "server": server_id,
        "deleted": True,
        "already_gone": False,
    }
    assert fake.servers == {}
    assert fake.allocations_of(server_id) == []


def test_terminate_does_not_trust_a_foreign_404(fake: FakePterodactyl) -> None:
    fake.route = lambda request: httpx.Response(404, text="<html>Not Found</html>")  # type: ignore[method-assign]
    with pytest.raises(NotFound):
        panel(fake).terminate(service(), LocalContext())


def test_suspend_unsuspend_and_missing_server(fake: FakePterodactyl) -> None:
    ext = panel(fake)
    with pytest.raises(NotFound):
        ext.suspend(service(), LocalContext())
    ext.create(service(), LocalContext())
    ext.suspend(service(), LocalContext())
    ext.suspend(service(), LocalContext())
    assert only_server(fake)["status"] == "suspended"
    ext.unsuspend(service(), LocalContext())
    assert only_server(fake)["status"] is None


def test_server_in_transfer_is_retryable(fake: FakePterodactyl) -> None:
    ext = panel(fake)
    ext.create(service(), LocalContext())
    fake.fail_next(409, match="/suspend$")
    with pytest.raises(ProviderUnavailable):
        ext.suspend(service(), LocalContext())


def test_upgrade_keeps_environment_and_allocation_count(fake: FakePterodactyl) -> None:
    ext = panel(fake)
    settings = {"node": "2", "port_array": {"SERVER_PORT": 7777, "NONE": [7778]}, "additional_allocations": "2"}
    ext.create(service(settings=settings, properties={"SERVER_JARFILE": "custom.jar"}), LocalContext())
    before = only_server(fake)
    assert before["feature_limits"]["allocations"] == 4
    upgraded = {**settings, "memory": "4096", "cpu": "200", "oom_killer": "1"}
    ext.upgrade(service(settings=upgraded), LocalContext())
    after = only_server(fake)
    assert after["limits"]["memory"] == 4096
    assert after["limits"]["cpu"] == 200
    assert after["limits"]["oom_disabled"] is False
    assert after["feature_limits"]["allocations"] == 4
    assert after["container"]["environment"]["SERVER_JARFILE"] == "custom.jar"
    assert after["container"]["image"] == before["container"]["image"]


def test_upgrade_to_another_egg_uses_its_image_and_startup(fake: FakePterodactyl) -> None:
    ext = panel(fake)
    ext.create(service(properties={"SERVER_JARFILE": "custom.jar"}), LocalContext())
    ext.upgrade(service(settings={"egg_id": "6"}), LocalContext())
    server = only_server(fake)
    egg = fake.egg(6)
    assert egg is not None
    assert server["egg"] == 6
    assert server["container"]["image"] == egg["docker_image"]
    assert server["container"]["startup_command"] == egg["startup"]
    assert server["container"]["environment"] == {"SERVER_JARFILE": "custom.jar", "MC_VERSION": "latest"}


def test_upgrade_of_missing_server_is_not_found(fake: FakePterodactyl) -> None:
    with pytest.raises(NotFound):
        panel(fake).upgrade(service(), LocalContext())


def test_login_url_and_test_config(fake: FakePterodactyl) -> None:
    ext = panel(fake)
    ext.create(service(), LocalContext())
    assert ext.login_url(service(), LocalContext()).data == {"url": f"{HOST}/server/{only_server(fake)['identifier']}"}
    assert ext.test_config().data == {"ok": True}


# --- errors -----------------------------------------------------------------------------------------


def test_bad_key_is_auth_failed_without_the_key(fake: FakePterodactyl) -> None:
    wrong = "ptla_wrongkey987654321"
    with pytest.raises(AuthFailed) as info:
        panel(fake, key=wrong).test_config()
    assert info.value.code == "auth_failed"
    assert wrong not in str(info.value)


def test_429_carries_retry_after(fake: FakePterodactyl) -> None:
    fake.fail_next(429, headers={"Retry-After": "7"})
    with pytest.raises(ProviderUnavailable) as info:
        panel(fake).suspend(service(), LocalContext())
    assert info.value.retry_after == 7.0


def test_rate_limit_knob_is_retryable(fake: FakePterodactyl) -> None:
    fake.rate_limit_every = 1
    with pytest.raises(ProviderUnavailable) as info:
        panel(fake).test_config()
    assert info.value.provider_status == 429


def test_error_messages_never_leak_the_key_or_query(fake: FakePterodactyl) -> None:
    route = fake.route

    def echoing(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/application/users":
            detail = f"rejected {request.headers['Authorization']} for {request.url}"
            return httpx.Response(422, json={"errors": [{"detail": detail}]})
        return route(request)

    fake.route = echoing  # type: ignore[method-assign]
    with pytest.raises(ExtensionError) as info:
        panel(fake).create(service(), LocalContext())
    message = str(info.value) + str(info.value.to_dict())
    assert KEY not in message
    assert "GET /api/application/users" in message
    fake.route = route  # type: ignore[method-assign]
    fake.fail_next(500, match="GET /api/application/users")
    with pytest.raises(ProviderUnavailable) as unavailable:
        panel(fake).create(service(), LocalContext())
    assert "filter" not in unavailable.value.message
    assert "alice@example.com" not in unavailable.value.message


# --- pure mapping -----------------------------------------------------------------------------------


def test_pick_port_prefers_exact_then_nearest_higher_then_nearest_lower() -> None:
    pool = [m.Allocation(1, 27015), m.Allocation(2, 7779), m.Allocation(3, 7777), m.Allocation(4, 100)]
    assert m.pick_port(pool, 7779).id == 2
    assert m.pick_port(pool, 7770).id == 3
    assert m.pick_port(pool, 30000).id == 1
    assert m.pick_port(pool, 30000).id == 4
    with pytest.raises(ProviderRejected):
        m.pick_port(pool, 1)


def test_find_user_is_exact_and_case_insensitive() -> None:
    body = {
        "data": [{"attributes": {"id": 1, "email": "jimbob@x.com"}}, {"attributes": {"id": 2, "email": "BOB@x.com"}}],
        "meta": {"pagination": {"current_page": 1, "total_pages": 3}},
    }
    assert m.find_user(body, "bob@x.com") == (2, True)
    assert m.find_user(body, "ob@x.com") == (None, True)


def test_customer_names_are_never_empty() -> None:
    assert m.customer_names(ServiceUser(id=1, email="x@y.z", name="Ada Lovelace King")) == ("Ada", "Lovelace King")
    assert m.customer_names(ServiceUser(id=1, email="x@y.z", first_name=" ", last_name="")) == ("x", "Customer")
    assert m.make_username("Éloïse", "ab12") == "eloise_ab12"
    assert m.make_username("!!!", "ab12") == "user_ab12"


def test_request_builders() -> None:
    lookup = m.lookup_server("a/b")
    assert lookup.path == "/api/application/servers/external/a%2Fb"
    nodes = m.deployable_nodes(1024, 2048, [1, 2], 3)
    assert nodes.params == [
        ("memory", 1024),
        ("disk", 2048),
        ("location_ids[]", 1),
        ("location_ids[]", 2),
        ("include", "allocations"),
        ("page", 3),
    ]
    assert m.get_egg(1, 5).params == {"include": "variables"}


def test_error_fields_reads_every_validation_error() -> None:
    body = {
        "errors": [
            {"detail": "bad allocation", "meta": {"source_field": "allocation.default", "rule": "exists"}},
            {"detail": "The external id has already been taken.", "meta": {"source_field": "external_id"}},
        ]
    }
    assert m.error_fields(body) == {"allocation.default", "external_id"}
    assert m.error_fields("<html>") == set()
