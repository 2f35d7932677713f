"""The contract every gateway keeps, run through the runtime: pay, genuine webhooks have their effect
once, re-deliveries replay, forged and malformed ones have none, a late backwards event is stale."""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
from decimal import Decimal
from typing import Any

import pytest

import tests.contract
from extensions.registry import get_extension
from tests.conftest import JobDriver
from tests.contract.gateway_harness import GatewayHarness
from tests.fakes.base import FakeProvider
from worker.runtime import Runtime

CONNECTION = "gw"


def _discover() -> list[GatewayHarness]:
    found = []
    for module in sorted(pkgutil.iter_modules(tests.contract.__path__), key=lambda m: m.name):
        if module.name.startswith("gateway_harness_"):
            found.append(importlib.import_module(f"tests.contract.{module.name}").HARNESS)
    return found


GATEWAY_HARNESSES = _discover()
pytestmark = pytest.mark.parametrize("harness", GATEWAY_HARNESSES, ids=lambda h: h.slug)


@pytest.fixture
def fake(harness: GatewayHarness, runtime: Runtime) -> Any:
    fake = harness.make_fake()
    with fake.serve() as base_url:  # a loopback server: the stripe library cannot take a MockTransport
        runtime.bind(CONNECTION, get_extension("gateways", harness.slug, harness.config(base_url)))
        yield fake


def task(harness: GatewayHarness, op: str) -> str:
    return f"gateways.{harness.slug}.{op}"


def pay(
    harness: GatewayHarness,
    driver: JobDriver,
    invoice_id: int,
    total: str = "12.50",
    currency: str = "EUR",
    task_id: str = "pay",
) -> dict[str, Any]:
    kwargs = {"connection": CONNECTION, **harness.pay_kwargs(invoice_id, total, currency)}
    return driver.run(task(harness, "pay"), kwargs, task_id=task_id)


def webhook(harness: GatewayHarness, driver: JobDriver, delivery: dict[str, Any], task_id: str) -> dict[str, Any]:
    return driver.run(task(harness, "webhook"), {"connection": CONNECTION, "webhook": delivery}, task_id=task_id)


def published(runtime: Runtime, prefix: str = "payment.") -> list[dict[str, Any]]:
    return [e for e in runtime.events.read() if e["type"].startswith(prefix)]


def test_pay_returns_a_transaction_and_a_way_to_pay(
    harness: GatewayHarness, fake: FakeProvider, driver: JobDriver
) -> None:
    result = pay(harness, driver, 1001)
    data = result["data"]
    assert data["transaction_id"]
    assert data.get("redirect_url") or data.get("sealed", {}).get("client_secret") or data.get("order_id")


def test_pay_again_for_the_same_invoice_reuses_the_open_payment(
    harness: GatewayHarness, fake: FakeProvider, driver: JobDriver
) -> None:
    first = pay(harness, driver, 1002, task_id="p1")
    second = pay(harness, driver, 1002, task_id="p2")
    assert second["data"]["transaction_id"] == first["data"]["transaction_id"]
    if harness.pay_call is not None:
        method, path = harness.pay_call
        assert fake.count(method, path) == 1, "the open payment must be reused, not made again"


def test_a_genuine_webhook_has_its_effect_once_and_a_redelivery_replays(
    harness: GatewayHarness, fake: FakeProvider, driver: JobDriver, runtime: Runtime
) -> None:
    paid = pay(harness, driver, 1003, total="19.99", currency="EUR")
    delivery = harness.settle(fake, paid["data"], "succeeded")
    first = webhook(harness, driver, delivery, "w1")
    assert first["replayed"] is False
    (event,) = published(runtime)
    assert event["type"] == "payment.succeeded"
    data = event["data"]
    assert data["gateway"] == harness.slug
    assert data["invoice_id"] == "1003"
    assert Decimal(data["amount"]) == Decimal("19.99")
    assert data["currency"] == "EUR"
    assert data["transaction_id"]
    assert data["occurred_at"]
    assert [e["id"] for e in first["data"]["events"]] == [event["id"]]

    again = webhook(harness, driver, harness.redeliver(fake, delivery), "w2")
    assert again["replayed"] is True
    assert len(published(runtime)) == 1


def test_a_forged_webhook_fails_and_has_no_effect(
    harness: GatewayHarness, fake: FakeProvider, driver: JobDriver, runtime: Runtime
) -> None:
    paid = pay(harness, driver, 1004)
    delivery = harness.settle(fake, paid["data"], "succeeded")
    error = driver.fail(task(harness, "webhook"), {"connection": CONNECTION, "webhook": harness.forge(fake, delivery)})
    assert error["code"] == "signature_invalid"
    assert published(runtime) == []
    assert driver.reschedules == []


def test_a_malformed_webhook_fails_cleanly(
    harness: GatewayHarness, fake: FakeProvider, driver: JobDriver, runtime: Runtime
) -> None:
    error = driver.fail(task(harness, "webhook"), {"connection": CONNECTION, "webhook": harness.malformed()})
    assert error["code"] in {"signature_invalid", "invalid_payload"}
    assert published(runtime) == []
    assert runtime.dead_letters.list()


def test_a_late_processing_event_after_success_is_stale(
    harness: GatewayHarness, fake: FakeProvider, driver: JobDriver, runtime: Runtime
) -> None:
    paid = pay(harness, driver, 1005)
    processing = harness.settle(fake, paid["data"], "processing")
    succeeded = harness.settle(fake, paid["data"], "succeeded")
    webhook(harness, driver, succeeded, "w-succeeded")
    late = webhook(harness, driver, processing, "w-processing")
    types = [e["type"] for e in published(runtime)]
    assert types == ["payment.succeeded"]
    # A gateway that re-fetches state (Mollie) sees the current state again: a replay; one that trusts the
    # delivery reports the older state, which the runtime marks stale and does not publish.
    assert late["replayed"] or all(e.get("stale") or e.get("duplicate") for e in late["data"].get("events", []))


def test_no_secret_in_redis_logs_results_or_events(
    harness: GatewayHarness,
    fake: FakeProvider,
    driver: JobDriver,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    paid = pay(harness, driver, 1006)
    outputs = [paid, webhook(harness, driver, harness.settle(fake, paid["data"], "succeeded"), "w")]
    driver.fail(task(harness, "webhook"), {"connection": CONNECTION, "webhook": harness.malformed()})
    stored = []
    for key in runtime.redis.scan_iter("*"):
        kind = runtime.redis.type(key).decode()
        if kind == "string":
            stored.append(str(runtime.redis.get(key)))
        elif kind == "hash":
            stored.append(repr(runtime.redis.hgetall(key)))
        elif kind == "stream":
            stored.append(repr(runtime.redis.xrange(key)))
    haystack = "\n".join(stored) + caplog.text + json.dumps(outputs)
    for secret in harness.secrets:
        assert secret not in haystack
