"""The runtime's gateway paths on a tiny in-test gateway: request models, natural-key claims inside an
operation, replays of re-delivered events, payment status moving only forward, connection state."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from extensions.base import ExtensionConfig, GatewayExtension, JobContext, OperationResult, config_field
from extensions.errors import SignatureInvalid
from extensions.payments import PayRequest, WebhookRequest, payment_event, provider_reference
from worker.errors import JobFailed
from worker.operations import OperationSpec, RequestPayload
from worker.runtime import Delivery, Runtime


class TinyConfig(ExtensionConfig):
    secret: SecretStr = config_field(type="password", label="Secret")


class Tiny(GatewayExtension):
    """Webhook bodies are JSON {"id", "status", "txn", "sig"}; sig must equal the configured secret."""

    slug = "tiny"
    display_name = "Tiny"
    Config = TinyConfig
    operations = frozenset({"pay", "webhook"})
    calls: ClassVar[int] = 0

    def pay(self, request: PayRequest, job: JobContext) -> OperationResult:
        reference = provider_reference(job.installation_id, request.invoice.id)
        open_payment = job.recall(f"open:{reference}")
        if open_payment is None:
            Tiny.calls += 1
            open_payment = f"pay_{Tiny.calls}"
            job.remember(f"open:{reference}", open_payment)
        return OperationResult(data={"transaction_id": open_payment, "redirect_url": f"https://x/{open_payment}"})

    def webhook(self, request: WebhookRequest, job: JobContext) -> OperationResult:
        body = json.loads(request.webhook.body)
        if body.get("sig") != self.config.secret.get_secret_value():  # type: ignore[attr-defined]
            raise SignatureInvalid("bad signature")
        job.claim(body["id"])
        Tiny.calls += 1
        event = payment_event(
            f"payment.{body['status']}",
            gateway="tiny",
            invoice_id=7,
            amount=Decimal("5.00"),
            currency="EUR",
            transaction_id=body["txn"],
            provider_event_id=body["id"],
        )
        return OperationResult(data={"event": body["id"]}, events=[event])


PAY = OperationSpec("gateways.tiny.pay", Tiny, "pay", RequestPayload, None)
WEBHOOK = OperationSpec("gateways.tiny.webhook", Tiny, "webhook", RequestPayload, None)
SECRET = "tiny-webhook-secret-1234"
INVOICE = {"id": 7, "total": "5.00", "currency": "EUR", "user": {"id": 1, "email": "a@b.c"}}


@pytest.fixture
def tiny(runtime: Runtime) -> Runtime:
    Tiny.calls = 0
    runtime.bind("t", Tiny({"secret": SECRET}))
    return runtime


def hook(event_id: str, status: str, txn: str = "txn_1", sig: str = SECRET, stamp: int = 0) -> dict[str, Any]:
    body = json.dumps({"id": event_id, "status": status, "txn": txn, "sig": sig, "t": stamp})
    return {"connection": "t", "webhook": {"body": body, "headers": {"X-Stamp": str(stamp)}}}


def run(runtime: Runtime, spec: OperationSpec, kwargs: dict[str, Any], task_id: str) -> Any:
    return runtime.execute(spec, (), kwargs, Delivery(task_id))


def published(runtime: Runtime) -> list[str]:
    return [e["type"] for e in runtime.events.read()]


def test_a_redelivered_event_with_a_new_signature_stamp_is_a_replay(tiny: Runtime) -> None:
    first = run(tiny, WEBHOOK, hook("evt_1", "succeeded", stamp=1), "a")
    again = run(tiny, WEBHOOK, hook("evt_1", "succeeded", stamp=2), "b")
    assert first["replayed"] is False
    assert again["replayed"] is True
    assert again["data"] == first["data"]
    assert first["idempotency_key"] == "gateways.tiny.webhook:t:evt_1"
    assert Tiny.calls == 1
    assert published(tiny) == ["payment.succeeded"]
    assert first["data"]["events"][0]["data"]["amount"] == "5.00"


def test_a_late_backwards_event_is_stale_and_a_repeat_is_not_news(tiny: Runtime) -> None:
    run(tiny, WEBHOOK, hook("evt_1", "succeeded"), "a")
    late = run(tiny, WEBHOOK, hook("evt_0", "processing"), "b")
    repeat = run(tiny, WEBHOOK, hook("evt_2", "succeeded"), "c")
    refund = run(tiny, WEBHOOK, hook("evt_3", "refunded"), "d")
    assert late["data"]["events"][0]["stale"] is True
    assert repeat["data"]["events"][0]["duplicate"] is True
    assert "stale" not in refund["data"]["events"][0]
    assert published(tiny) == ["payment.succeeded", "payment.refunded"]


def test_a_forged_webhook_fails_and_emits_nothing(tiny: Runtime) -> None:
    with pytest.raises(JobFailed) as info:
        run(tiny, WEBHOOK, hook("evt_9", "succeeded", sig="forged"), "f")
    assert info.value.error["code"] == "signature_invalid"
    assert published(tiny) == ["job.failed"]
    assert SECRET not in json.dumps(tiny.dead_letters.list())


def test_request_models_validate_the_rest_of_the_payload(tiny: Runtime) -> None:
    with pytest.raises(JobFailed) as info:
        run(tiny, PAY, {"connection": "t", "invoice": {**INVOICE, "total": 5.0}, "return_url": "https://x"}, "p")
    assert info.value.error["code"] == "invalid_payload"
    assert "invoice.total" in info.value.error["message"]
    with pytest.raises(JobFailed):
        run(tiny, PAY, {"connection": "t", "invoice": INVOICE, "return_url": "not a url"}, "p2")


def test_connection_state_lets_pay_reuse_the_open_payment(tiny: Runtime) -> None:
    kwargs = {"connection": "t", "invoice": INVOICE, "return_url": "https://shop.example/return"}
    first = run(tiny, PAY, kwargs, "p1")
    second = run(tiny, PAY, kwargs, "p2")
    assert first["data"]["transaction_id"] == second["data"]["transaction_id"] == "pay_1"
    assert Tiny.calls == 1
