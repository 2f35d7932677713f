from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions import registry
from extensions.errors import InvalidPayload, UnsupportedOperation
from worker.operations import MetaPayload, operation_specs
from worker.tasks import _meta

ROOT = Path(__file__).resolve().parents[2]


def test_every_operation_is_a_task_named_category_slug_operation() -> None:
    names = {spec.name for spec in operation_specs()}
    assert {
        f"servers.pterodactyl.{op}"
        for op in ("test_config", "create", "suspend", "unsuspend", "terminate", "upgrade", "login_url")
    } <= names
    assert all(spec.queue == "servers" for spec in operation_specs() if spec.name.startswith("servers."))


def test_unknown_extension_lists_the_known_ones() -> None:
    with pytest.raises(UnsupportedOperation, match="servers.pterodactyl"):
        registry.extension_class("servers", "nope")


@pytest.mark.parametrize(
    ("name", "problem"),
    [("servers.pterodactyl", "registered twice"), ("servers.other", "registered as servers.other")],
)
def test_a_bad_entry_point_fails_fast(monkeypatch: pytest.MonkeyPatch, name: str, problem: str) -> None:
    class EntryPoint:
        value = "extensions.servers.pterodactyl:Pterodactyl"

    EntryPoint.name = name  # type: ignore[attr-defined]
    registry.load_registry.cache_clear()
    monkeypatch.setattr(registry, "entry_points", lambda group: [EntryPoint()])
    try:
        with pytest.raises(registry.RegistryError, match=problem):
            registry.load_registry()
    finally:
        registry.load_registry.cache_clear()


def test_meta_tasks() -> None:
    listing = _meta("extensions.list", MetaPayload())
    implemented = {
        k: sorted(c.slug for c in registry.load_registry().values() if c.category == k and c.operations)
        for k in ("servers", "gateways", "others")
    }
    assert listing == implemented
    assert "pterodactyl" in listing["servers"]
    metadata = _meta("extensions.metadata", MetaPayload(category="servers", name="pterodactyl"))
    assert set(metadata) == {"name", "description", "version", "author", "type"}
    assert metadata["type"] == "server"
    schema = _meta("extensions.config_schema", MetaPayload(category="servers", name="pterodactyl"))
    assert [f["name"] for f in schema["config"]] == ["host", "api_key"]
    assert "nest_id" in {f["name"] for f in schema["product_config"]}
    with pytest.raises(InvalidPayload):
        _meta("extensions.metadata", MetaPayload())


def test_compose_runs_redis_durably_with_worker_api_and_flower_and_no_inline_secret() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "worker", "api", "flower"} <= set(services)
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert "--maxmemory-policy noeviction" in redis_command
    assert services["redis"]["volumes"]
    for name in ("worker", "api", "flower"):
        assert "healthcheck" in services[name]
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["flower"]["environment"]["PAYMENTER_FLOWER_BASIC_AUTH"].startswith("${")
    assert services["worker"]["environment"]["PAYMENTER_RESULT_KEY"].startswith("${")
    api = services["api"]
    assert api["command"][:2] == ["paymenter-worker", "api"]
    assert "--insecure-local" not in api["command"]
    assert api["environment"]["PAYMENTER_API_TOKEN"].startswith("${")
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    assert all(port.startswith("127.0.0.1:") for port in api["ports"] + services["flower"]["ports"])
    assert "volumes" not in api  # the API reads no connection profile: it holds no provider secret
