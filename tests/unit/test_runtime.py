"""The runtime's own behaviour, on a tiny in-test extension so only the core is under test."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, SecretStr

from extensions.base import (
    Checkbox,
    ExtensionConfig,
    JobContext,
    OperationResult,
    ServerExtension,
    Service,
    config_field,
)
from extensions.errors import Pending, ProviderUnavailable
from tests.conftest import RESULT_KEY, make_settings
from worker.client import PaymenterClient
from worker.errors import JobFailed, Reschedule
from worker.operations import SERVER_EVENTS, OperationSpec, ServerPayload
from worker.profiles import Profiles
from worker.runtime import Delivery, Runtime

API_KEY = "echo-api-key-0123456789"


class EchoConfig(ExtensionConfig):
    host: str = config_field(type="text", label="Host")
    api_key: SecretStr = config_field(type="password", label="API key")
    verbose: Checkbox = config_field(False, type="boolean", label="Verbose")


class EchoProduct(BaseModel):
    size: int = 1


class Echo(ServerExtension):
    """Records calls; behaviour is steered by class attributes set per test."""

    slug = "echo"
    display_name = "Echo"
    Config = EchoConfig
    ProductSettings = EchoProduct
    operations = frozenset({"create", "terminate"})
    script: ClassVar[list[Any]] = []
    calls: ClassVar[list[str]] = []

    def create(self, service: Service, job: JobContext) -> OperationResult:
        Echo.calls.append(job.idempotency_key)
        step = Echo.script.pop(0) if Echo.script else None
        if isinstance(step, Exception):
            raise step
        if step == "checkpoint":
            job.save_checkpoint("seen", job.checkpoint("seen") or "first")
            raise Pending("installing", 1)
        return OperationResult(
            data={"echo": service.id, "checkpoint": job.checkpoint("seen"), "api_key": API_KEY},
            properties={"echo_id": str(service.id)},
            secrets={"root_password": SecretStr("generated-root-pw")},
        )

    def terminate(self, service: Service, job: JobContext) -> OperationResult:
        return OperationResult(data={"deleted": True})


CREATE = OperationSpec("servers.echo.create", Echo, "create", ServerPayload, SERVER_EVENTS["create"])
TERMINATE = OperationSpec("servers.echo.terminate", Echo, "terminate", ServerPayload, SERVER_EVENTS["terminate"])
SERVICE = {"id": 7, "user": {"id": 1, "email": "a@b.c"}, "product": {"id": 2, "name": "P", "settings": {}}}


@pytest.fixture(autouse=True)
def _reset() -> None:
    Echo.script = []
    Echo.calls = []


@pytest.fixture
def echo_runtime(runtime: Runtime) -> Runtime:
    runtime.bind("echo", Echo({"host": "h", "api_key": API_KEY}))
    return runtime


def run(runtime: Runtime, spec: OperationSpec, kwargs: dict[str, Any], task_id: str = "t", retries: int = 0) -> Any:
    return runtime.execute(spec, (), kwargs, Delivery(task_id, retries))


def test_success_envelope_seals_generated_secrets_and_redacts_config_secrets(echo_runtime: Runtime) -> None:
    envelope = run(echo_runtime, CREATE, {"connection": "echo", "service": SERVICE})
    assert envelope["status"] == "succeeded"
    assert envelope["operation"] == "servers.echo.create"
    assert envelope["idempotency_key"] == "servers.echo.create:echo:7"
    assert envelope["data"]["properties"] == {"echo_id": "7"}
    assert envelope["data"]["api_key"] == "***"
    assert "generated-root-pw" not in json.dumps(envelope)
    token = envelope["data"]["sealed"]["root_password"]
    client = PaymenterClient("redis://127.0.0.1:1/0", result_key=RESULT_KEY)
    unsealed = client._outcome({"status": "SUCCESS", "result": envelope})
    assert unsealed["secrets"] == {"root_password": "generated-root-pw"}
    assert token != "generated-root-pw"


def test_without_a_result_key_generated_secrets_are_left_out(redis_client: Any) -> None:
    runtime = Runtime(make_settings(result_key=None), Profiles(), redis_client)
    runtime.bind("echo", Echo({"host": "h", "api_key": API_KEY}))
    envelope = run(runtime, CREATE, {"connection": "echo", "service": SERVICE})
    assert "sealed" not in envelope["data"]
    assert envelope["data"]["sealed_omitted"] == ["root_password"]
    assert "generated-root-pw" not in json.dumps(envelope)


def test_pending_reschedules_and_checkpoints_carry_over(echo_runtime: Runtime) -> None:
    Echo.script = ["checkpoint", "checkpoint"]
    kwargs = {"connection": "echo", "service": SERVICE}
    for retries in range(2):
        with pytest.raises(Reschedule) as info:
            run(echo_runtime, CREATE, kwargs, "p", retries)
        assert info.value.countdown == 1
    envelope = run(echo_runtime, CREATE, kwargs, "p", 2)
    assert envelope["data"]["checkpoint"] == "first"


def test_a_job_redelivered_too_often_is_dead_lettered_not_run(echo_runtime: Runtime) -> None:
    kwargs = {"connection": "echo", "service": SERVICE}
    limit = echo_runtime.settings.max_deliveries
    for _ in range(limit):
        echo_runtime.redis.incr("paymenter:deliveries:loop:0")
    with pytest.raises(JobFailed) as info:
        run(echo_runtime, CREATE, kwargs, "loop")
    assert info.value.error["code"] == "provider_unavailable"
    assert "worker was lost" in info.value.error["message"]
    assert Echo.calls == []
    assert echo_runtime.dead_letters.list()[0]["task_id"] == "loop"
    assert not echo_runtime.redis.keys("paymenter:lease:*")  # the create key it claimed is free again


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"connection": "echo"}, "invalid_payload"),
        ({"connection": "echo", "service": {"id": 1}}, "invalid_payload"),
        ({"connection": "echo", "service": SERVICE, "surprise": 1}, "invalid_payload"),
        ({"service": SERVICE}, "invalid_payload"),
        ({"connection": "nope", "service": SERVICE}, "unknown_connection"),
        ({"config": {"host": "h", "api_key": "inline-secret-1"}, "service": SERVICE}, "invalid_payload"),
    ],
)
def test_bad_input_fails_clearly_and_is_dead_lettered(echo_runtime: Runtime, kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(JobFailed) as info:
        run(echo_runtime, CREATE, kwargs)
    assert info.value.error["code"] == code
    assert info.value.error["retryable"] is False
    (dead,) = echo_runtime.dead_letters.list()
    assert dead["error"]["code"] == code
    assert "inline-secret-1" not in json.dumps(dead)
    assert Echo.calls == []


def test_positional_arguments_are_refused(echo_runtime: Runtime) -> None:
    with pytest.raises(JobFailed) as info:
        echo_runtime.execute(CREATE, ("x",), {"connection": "echo", "service": SERVICE}, Delivery("t"))
    assert info.value.error["code"] == "invalid_payload"


def test_inline_config_when_allowed_is_validated_and_never_echoed(redis_client: Any) -> None:
    runtime = Runtime(make_settings(allow_inline_config=True), Profiles(), redis_client)
    envelope = run(runtime, CREATE, {"config": {"host": "h", "api_key": "inline-secret-2"}, "service": SERVICE})
    assert "inline-secret-2" not in json.dumps(envelope)
    with pytest.raises(JobFailed) as info:
        run(runtime, CREATE, {"config": {"host": "h"}, "service": SERVICE}, "t2")
    assert info.value.error["code"] == "invalid_config"
    assert "api_key" in info.value.error["message"]


def test_an_unexpected_exception_ends_as_a_safe_failure(echo_runtime: Runtime) -> None:
    Echo.script = [KeyError(API_KEY)]
    with pytest.raises(JobFailed) as info:
        run(echo_runtime, CREATE, {"connection": "echo", "service": SERVICE})
    assert info.value.error["code"] == "provider_rejected"
    assert "KeyError" in info.value.error["message"]
    assert API_KEY not in json.dumps(echo_runtime.dead_letters.list())


def test_busy_lease_reschedules_without_calling_the_provider(echo_runtime: Runtime) -> None:
    claim = echo_runtime.ledger.claim("servers.echo.create:echo:7", "whatever")
    assert claim.outcome == "claimed"
    with pytest.raises(JobFailed) as info:  # another payload under a held derived key
        run(echo_runtime, CREATE, {"connection": "echo", "service": SERVICE})
    assert info.value.error["code"] == "conflict"
    echo_runtime.ledger.release("servers.echo.create:echo:7", claim.owner)
    kwargs = {"connection": "echo", "service": SERVICE}
    from worker.runtime import _fingerprint

    echo_runtime.ledger.claim("servers.echo.create:echo:7", _fingerprint(kwargs))
    with pytest.raises(Reschedule):
        run(echo_runtime, CREATE, kwargs, "t3")
    assert Echo.calls == []


def test_retry_countdowns_grow_and_respect_retry_after(echo_runtime: Runtime) -> None:
    Echo.script = [ProviderUnavailable("down"), ProviderUnavailable("slow down", 429, retry_after=4.5)]
    countdowns = []
    for retries in range(2):
        with pytest.raises(Reschedule) as info:
            run(echo_runtime, CREATE, {"connection": "echo", "service": SERVICE}, "r", retries)
        countdowns.append(info.value.countdown)
    assert countdowns[0] <= echo_runtime.settings.retry_backoff_max
    assert countdowns[1] >= 4.5
    envelope = run(echo_runtime, CREATE, {"connection": "echo", "service": SERVICE}, "r", 2)
    assert envelope["attempts"] == 3


def test_config_fields_are_listed_the_paymenter_way() -> None:
    fields = {f["name"]: f for f in Echo.get_config()}
    assert fields["api_key"]["type"] == "password"
    assert fields["api_key"]["required"] is True
    assert fields["verbose"] == {
        "name": "verbose",
        "type": "boolean",
        "label": "Verbose",
        "description": None,
        "required": False,
        "default": False,
        "options": None,
    }
    assert Echo({"host": "h", "api_key": "k", "verbose": "0"}).config.verbose is False  # type: ignore[attr-defined]
    assert Echo({"host": "h", "api_key": "k", "verbose": "1"}).config.verbose is True  # type: ignore[attr-defined]


def _limited_runtime(redis_client: Any, **limits: Any) -> Runtime:
    from worker.profiles import Limits, Profile

    profile = Profile("echo", Echo, Echo.Config.model_validate({"host": "h", "api_key": API_KEY}), Limits(**limits))
    runtime = Runtime(make_settings(), Profiles({"echo": profile}), redis_client)
    runtime.bind("echo", Echo(profile.config))
    return runtime


def test_a_connection_rate_limit_holds_jobs_back_without_calling_the_provider(redis_client: Any) -> None:
    runtime = _limited_runtime(redis_client, rate_limit=2)
    kwargs = {"connection": "echo", "service": SERVICE}
    assert run(runtime, TERMINATE, kwargs, "t0")["status"] == "succeeded"
    assert run(runtime, TERMINATE, kwargs, "t1")["status"] == "succeeded"
    with pytest.raises(Reschedule) as held:  # a bucket of 2 per second is empty after two calls
        run(runtime, TERMINATE, kwargs, "t2")
    assert held.value.kind == "busy"
    assert 0 < held.value.countdown <= 1


def test_a_connection_concurrency_cap_admits_one_job_at_a_time(redis_client: Any) -> None:
    runtime = _limited_runtime(redis_client, max_concurrency=1)
    kwargs = {"connection": "echo", "service": SERVICE}
    seen: list[str] = []

    def create_while_another_runs(self: Echo, service: Any, job: Any) -> OperationResult:
        with pytest.raises(Reschedule) as held:
            run(runtime, TERMINATE, kwargs, "inner")
        seen.append(held.value.kind)
        return OperationResult(data={})

    Echo.create = create_while_another_runs  # type: ignore[method-assign, assignment]
    try:
        run(runtime, CREATE, kwargs, "outer")
    finally:
        del Echo.create
    assert seen == ["busy"]
    assert run(runtime, TERMINATE, kwargs, "after")["status"] == "succeeded"  # the slot was released


def test_limits_in_a_profile_are_validated(tmp_path: Any) -> None:
    from extensions.errors import InvalidConfig

    path = tmp_path / "c.toml"
    path.write_text(
        '[connections.p]\nextension = "servers.pterodactyl"\nhost = "https://x"\napi_key = "k"\nrate_limit = 0\n'
    )
    with pytest.raises(InvalidConfig, match="rate_limit"):
        Profiles.load(path)
    path.write_text(
        '[connections.p]\nextension = "servers.pterodactyl"\nhost = "https://x"\napi_key = "k"\n'
        "rate_limit = 5\nmax_concurrency = 2\n"
    )
    limits = Profiles.load(path).get_any("p").limits  # type: ignore[union-attr]
    assert (limits.rate_limit, limits.max_concurrency) == (5.0, 2)
