"""The contract every server integration keeps, run through the runtime (ledger, retries, events)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from extensions.registry import get_extension
from tests.conftest import RESULT_KEY, JobDriver
from tests.contract.harness import ServerHarness
from tests.contract.harnesses import SERVER_HARNESSES
from tests.fakes.base import FakeProvider
from worker.runtime import Runtime
from worker.sealing import Sealer

pytestmark = pytest.mark.parametrize("harness", SERVER_HARNESSES, ids=lambda h: h.slug)
CONNECTION = "panel"


@pytest.fixture
def fake(harness: ServerHarness, runtime: Runtime) -> FakeProvider:
    fake = harness.make_fake()
    extension = get_extension("servers", harness.slug, harness.config(fake.base_url), transport=fake.transport())
    runtime.bind(CONNECTION, extension)
    return fake


def task(harness: ServerHarness, op: str) -> str:
    return f"servers.{harness.slug}.{op}"


def job(harness: ServerHarness, service: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"connection": CONNECTION, "service": service, **extra}


def events(runtime: Runtime, event_type: str | None = None) -> list[dict[str, Any]]:
    found = runtime.events.read()
    return [e for e in found if event_type is None or e["type"] == event_type]


def test_lifecycle_each_step_changes_the_provider_once(
    harness: ServerHarness, fake: FakeProvider, driver: JobDriver, runtime: Runtime
) -> None:
    service = harness.service(101)
    created = driver.run(task(harness, "create"), job(harness, service), task_id="c1")
    assert created["status"] == "succeeded"
    assert created["replayed"] is False
    assert harness.resources(fake, 101) == 1
    service = {**service, "properties": {**service["properties"], **created["data"].get("properties", {})}}

    for step in range(2):  # every step twice: repeating one must change nothing
        driver.run(task(harness, "suspend"), job(harness, service), task_id=f"s{step}")
        assert harness.is_suspended(fake, 101)
    for step in range(2):
        driver.run(task(harness, "unsuspend"), job(harness, service), task_id=f"u{step}")
        assert not harness.is_suspended(fake, 101)

    upgraded = harness.upgrade_service(service)
    driver.run(task(harness, "upgrade"), job(harness, upgraded), task_id="up")
    assert harness.is_upgraded(fake, 101)

    for step in range(2):
        done = driver.run(task(harness, "terminate"), job(harness, upgraded), task_id=f"t{step}")
        assert done["status"] == "succeeded"
        assert harness.resources(fake, 101) == 0
        # The billing system is told to forget what named the deleted resource.
        cleared = set(done["data"]["properties_cleared"])
        assert cleared
        assert cleared <= set(created["data"].get("properties", {})) | set(
            runtime._instances[CONNECTION].resource_properties
        )

    types = [e["type"] for e in events(runtime)]
    assert types.count("service.created") == 1
    assert "service.suspended" in types
    assert "service.unsuspended" in types
    assert "service.upgraded" in types
    assert "service.terminated" in types


def test_create_again_with_same_payload_is_a_replay(
    harness: ServerHarness, fake: FakeProvider, driver: JobDriver, runtime: Runtime
) -> None:
    kwargs = job(harness, harness.service(102))
    first = driver.run(task(harness, "create"), kwargs, task_id="a")
    calls_after_first = len(fake.calls)
    second = driver.run(task(harness, "create"), kwargs, task_id="b")
    assert second["replayed"] is True
    assert second["data"] == first["data"]
    assert len(fake.calls) == calls_after_first, "a replay must not call the provider"
    assert harness.resources(fake, 102) == 1
    assert len(events(runtime, "service.created")) == 1


def test_create_whose_answer_was_lost_makes_one_resource(
    harness: ServerHarness, fake: FakeProvider, driver: JobDriver
) -> None:
    fake.drop_response_next(harness.create_call)
    result = driver.run(task(harness, "create"), job(harness, harness.service(103)))
    assert result["status"] == "succeeded"
    assert driver.retries, "the lost answer must have been retried"
    assert harness.resources(fake, 103) == 1


def test_create_after_ledger_loss_adopts_the_existing_resource(
    harness: ServerHarness, fake: FakeProvider, driver: JobDriver, runtime: Runtime
) -> None:
    kwargs = job(harness, harness.service(104))
    driver.run(task(harness, "create"), kwargs, task_id="first")
    for key in runtime.redis.scan_iter("paymenter:ledger:*"):
        runtime.redis.delete(key)  # as if the worker died between the provider call and the ledger write
    again = driver.run(task(harness, "create"), kwargs, task_id="second")
    assert again["replayed"] is False
    assert harness.resources(fake, 104) == 1


def test_transient_errors_are_retried_until_success(
    harness: ServerHarness, fake: FakeProvider, driver: JobDriver
) -> None:
    fake.fail_next(503, times=2, match=harness.any_call)
    result = driver.run(task(harness, "create"), job(harness, harness.service(105)))
    assert result["status"] == "succeeded"
    assert result["attempts"] == 3
    assert len(driver.retries) == 2
    assert harness.resources(fake, 105) == 1


def test_retry_after_is_honoured(harness: ServerHarness, fake: FakeProvider, driver: JobDriver) -> None:
    fake.fail_next(429, times=1, match=harness.any_call, headers={"Retry-After": "7"})
    driver.run(task(harness, "create"), job(harness, harness.service(106)))
    assert driver.retries[0].countdown >= 7


def test_exhausted_retries_fail_with_provider_unavailable_and_dead_letter(
    harness: ServerHarness, fake: FakeProvider, driver: JobDriver, runtime: Runtime
) -> None:
    fake.fail_next(503, times=100, match=harness.any_call)
    error = driver.fail(task(harness, "create"), job(harness, harness.service(107)))
    assert error["code"] == "provider_unavailable"
    assert error["retryable"] is True
    assert len(driver.retries) == runtime.settings.max_retries
    assert harness.resources(fake, 107) == 0
    (dead,) = runtime.dead_letters.list()
    assert dead["error"]["code"] == "provider_unavailable"
    assert [e["data"]["dead_letter_id"] for e in events(runtime, "job.failed")] == [dead["id"]]


def test_permanent_error_is_not_retried(
    harness: ServerHarness, fake: FakeProvider, driver: JobDriver, runtime: Runtime
) -> None:
    fake.fail_next(401, times=1, match=harness.any_call)
    error = driver.fail(task(harness, "create"), job(harness, harness.service(108)))
    assert error["code"] == "auth_failed"
    assert error["retryable"] is False
    assert error["provider_status"] == 401
    assert driver.retries == []
    assert len(runtime.dead_letters.list()) == 1


def test_failure_frees_the_key_so_the_same_job_can_run_again(
    harness: ServerHarness, fake: FakeProvider, driver: JobDriver
) -> None:
    kwargs = job(harness, harness.service(109))
    fake.fail_next(401, times=1, match=harness.any_call)
    driver.fail(task(harness, "create"), kwargs)
    result = driver.run(task(harness, "create"), kwargs, task_id="again")
    assert result["replayed"] is False
    assert harness.resources(fake, 109) == 1


def test_same_key_with_another_payload_is_refused(
    harness: ServerHarness, fake: FakeProvider, driver: JobDriver
) -> None:
    driver.run(task(harness, "create"), job(harness, harness.service(110), idempotency_key="order-1"))
    error = driver.fail(task(harness, "create"), job(harness, harness.service(111), idempotency_key="order-1"))
    assert error["code"] == "idempotency_key_reused"
    assert harness.resources(fake, 111) == 0


def test_terminate_releases_the_create_key(harness: ServerHarness, fake: FakeProvider, driver: JobDriver) -> None:
    kwargs = job(harness, harness.service(112))
    created = driver.run(task(harness, "create"), kwargs, task_id="c1")
    service = {**kwargs["service"], "properties": created["data"].get("properties", {})}
    driver.run(task(harness, "terminate"), job(harness, service), task_id="t1")
    again = driver.run(task(harness, "create"), kwargs, task_id="c2")
    assert again["replayed"] is False
    assert harness.resources(fake, 112) == 1


def test_no_secret_in_redis_logs_results_events_or_dead_letters(
    harness: ServerHarness,
    fake: FakeProvider,
    driver: JobDriver,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    checkout_password = "Chk0ut-Pa55word-xyz"
    service = harness.service(113)
    service["properties"]["password"] = checkout_password
    outputs = [driver.run(task(harness, "create"), job(harness, service))]
    if "login_url" in runtime._instances[CONNECTION].operations:
        outputs.append(driver.run(task(harness, "login_url"), job(harness, service), task_id="l1"))
    fake.fail_next(401, times=1, match=harness.any_call)
    error = driver.fail(task(harness, "suspend"), job(harness, service))
    fake.fail_next(503, times=100, match=harness.any_call)
    driver.fail(task(harness, "terminate"), job(harness, service), task_id="t-exhaust")

    stored = []
    for key in runtime.redis.scan_iter("*"):
        kind = runtime.redis.type(key).decode()
        if kind == "string":
            stored.append(runtime.redis.get(key))
        elif kind == "hash":
            stored.append(json.dumps({k.decode(): v.decode() for k, v in runtime.redis.hgetall(key).items()}))
        elif kind == "stream":
            stored.append(repr(runtime.redis.xrange(key)))
        elif kind == "zset":
            stored.append(repr(runtime.redis.zrange(key, 0, -1)))
    haystack = "\n".join(str(s) for s in stored) + caplog.text + json.dumps(outputs) + json.dumps(error)
    assert harness.secret not in haystack
    assert checkout_password not in haystack
    # Credentials the provider or the integration generated travel only sealed: look for their plain values.
    sealer = Sealer(RESULT_KEY)
    generated = [sealer.unseal(token) for out in outputs for token in out["data"].get("sealed", {}).values()]
    for value in generated:
        assert value not in haystack
    assert runtime.dead_letters.list()[0]["sealed_kwargs"], "the dead letter keeps the payload sealed for replay"
