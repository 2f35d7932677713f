"""PayPal (REST) quirks beyond the shared gateway contract: PayPal-side verification with the raw body
spliced verbatim, transmission-time tolerance, PayPal's decimals, PayPal-Request-Id stability, the token
cache, installation namespaces, capture outcomes, refunds, saved accounts and subscriptions."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from extensions.errors import InvalidConfig, ProviderRejected
from extensions.gateways.paypal import PayPal
from extensions.gateways.paypal import mapping as m
from extensions.gateways.paypal.config import LIVE_BASE, SANDBOX_BASE, PayPalConfig
from tests.conftest import JobDriver
from tests.fakes.paypal import FakePayPal, stale
from worker.runtime import Runtime

CONNECTION = "pp"
VERIFY = r"/v1/notifications/verify-webhook-signature"
ORDERS = r"/v2/checkout/orders"


def settings(fake: FakePayPal, **overrides: Any) -> dict[str, Any]:
    return {
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "webhook_id": fake.webhook_id,
        "test_mode": "1",
        "paypal_support_billing_agreements": "1",
        "api_base": "https://api-m.sandbox.paypal.test",
        **overrides,
    }


@pytest.fixture
def fake() -> FakePayPal:
    return FakePayPal()


@pytest.fixture
def connect(fake: FakePayPal, runtime: Runtime) -> Callable[..., PayPal]:
    def bind(connection: str = CONNECTION, **overrides: Any) -> PayPal:
        extension = PayPal(settings(fake, **overrides), transport=fake.transport())
        runtime.bind(connection, extension)
        return extension

    return bind


@pytest.fixture
def paypal(connect: Callable[..., PayPal]) -> PayPal:
    return connect()


def run(driver: JobDriver, op: str, task_id: str, connection: str = CONNECTION, **kwargs: Any) -> dict[str, Any]:
    return driver.run(f"gateways.paypal.{op}", {"connection": connection, **kwargs}, task_id=task_id)


def fail(driver: JobDriver, op: str, task_id: str = "f", **kwargs: Any) -> dict[str, Any]:
    return driver.fail(f"gateways.paypal.{op}", {"connection": CONNECTION, **kwargs}, task_id=task_id)


def invoice(invoice_id: int = 1001, total: str = "19.99", currency: str = "EUR") -> dict[str, Any]:
    user = {"id": 42, "email": "alice@example.com"}
    return {"id": invoice_id, "number": f"INV-{invoice_id}", "total": total, "currency": currency, "user": user}


def pay(driver: JobDriver, task_id: str = "pay", connection: str = CONNECTION, **inv: Any) -> dict[str, Any]:
    kwargs = {"invoice": invoice(**inv), "return_url": "https://billing.example.com/invoices/1"}
    return run(driver, "pay", task_id, connection, **kwargs)["data"]


def published(runtime: Runtime, prefix: str = "") -> list[dict[str, Any]]:
    return [e for e in runtime.events.read() if e["type"].startswith(prefix) and e["type"] != "job.failed"]


def hook(driver: JobDriver, delivery: dict[str, Any], task_id: str) -> dict[str, Any]:
    return run(driver, "webhook", task_id, webhook=delivery)


def paid(fake: FakePayPal, driver: JobDriver, status: str = "COMPLETED", **inv: Any) -> dict[str, Any]:
    """Pay an invoice and settle its capture at PayPal; returns the capture."""
    return fake.settle(pay(driver, f"pay-{inv.get('invoice_id', 1001)}", **inv)["order_id"], status)


# --- webhook verification -------------------------------------------------------------------------


def test_a_completed_capture_books_the_invoice_amount_and_fee_from_the_order(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    capture = paid(fake, driver)
    body = fake.capture_event(capture)
    result = hook(driver, fake.deliver(body), "w")
    (event,) = published(runtime)
    data = event["data"]
    assert event["type"] == "payment.succeeded"
    assert (data["invoice_id"], data["amount"], data["currency"]) == ("1001", "19.99", "EUR")
    assert data["transaction_id"] == capture["id"]
    assert Decimal(data["fee"]) == Decimal(capture["seller_receivable_breakdown"]["paypal_fee"]["value"])
    assert data["provider_event_id"] == json.loads(body)["id"] == result["data"]["event_id"]
    assert result["idempotency_key"].endswith(json.loads(body)["id"])


def test_the_raw_body_reaches_paypal_byte_for_byte_with_empty_objects_floats_and_unicode(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    capture = paid(fake, driver)
    resource = json.dumps(capture)
    # Re-encoding this would change it: `{}` kept, 10.10 not 10.1, no \u escapes, odd spacing kept.
    body = (
        '{ "id":"WH-RAW-1","event_type" : "PAYMENT.CAPTURE.COMPLETED","summary":"Zahlung über 19,99 €",'
        f'"create_time":"2030-01-01T00:00:00Z","rate": 10.10,"extensions": {{}},"resource": {resource} }}'
    )
    hook(driver, fake.deliver(body), "w")
    assert [e["type"] for e in published(runtime)] == ["payment.succeeded"]
    assert body in fake.verify_bodies[-1]


def test_a_body_re_encoded_in_transit_does_not_verify(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    body = fake.event("PAYMENT.CAPTURE.COMPLETED", paid(fake, driver))[:-1] + ', "rate": 10.10, "breakdown": {}}'
    delivery = fake.deliver(body)
    delivery["body"] = json.dumps(json.loads(body))  # the same JSON, re-encoded: 10.1, \u escapes
    assert fail(driver, "webhook", webhook=delivery)["code"] == "signature_invalid"
    assert published(runtime) == []


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d["headers"].update({"Paypal-Transmission-Sig": "bm90IGEgc2lnbmF0dXJl"}),
        lambda d: d["headers"].update({"Paypal-Transmission-Id": "4cb8ae90-0000-11ee-0000-000000000000"}),
        lambda d: d.update(body=d["body"].replace("PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.COMPLETED")),
    ],
    ids=["signature", "transmission-id", "body"],
)
def test_forged_webhooks_fail_and_have_no_effect(
    tamper: Callable[[dict[str, Any]], None], fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    delivery = fake.deliver(fake.capture_event(paid(fake, driver), "PAYMENT.CAPTURE.DENIED"))
    tamper(delivery)
    assert fail(driver, "webhook", webhook=delivery)["code"] == "signature_invalid"
    assert published(runtime) == []
    assert driver.retries == []


def test_another_webhook_id_does_not_verify(
    fake: FakePayPal, connect: Callable[..., PayPal], driver: JobDriver, runtime: Runtime
) -> None:
    connect(webhook_id="WEBHOOKOFANOTHERAPP")
    delivery = fake.deliver(fake.capture_event(paid(fake, driver)))
    assert fail(driver, "webhook", webhook=delivery)["code"] == "signature_invalid"
    assert published(runtime) == []


@pytest.mark.parametrize("sent_minutes_ago", [6, -6, 60 * 24])
def test_a_transmission_outside_five_minutes_is_refused_without_asking_paypal(
    sent_minutes_ago: int, fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    delivery = fake.deliver(fake.capture_event(paid(fake, driver)), sent_at=stale(sent_minutes_ago))
    assert fail(driver, "webhook", webhook=delivery)["code"] == "signature_invalid"
    assert fake.count("POST", VERIFY) == 0
    assert published(runtime) == []


def test_the_tolerance_is_measured_from_received_at(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    # Queued for an hour before the worker ran it: still genuine, the receiver got it in time.
    hour_ago = stale(60)
    delivery = fake.deliver(fake.capture_event(paid(fake, driver)), sent_at=hour_ago, received_at=hour_ago)
    hook(driver, delivery, "w")
    assert [e["type"] for e in published(runtime)] == ["payment.succeeded"]


def test_a_delivery_without_the_paypal_headers_is_refused(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    delivery = fake.deliver(fake.capture_event(paid(fake, driver)))
    del delivery["headers"]["Paypal-Cert-Url"]
    error = fail(driver, "webhook", webhook=delivery)
    assert error["code"] == "signature_invalid"
    assert "PAYPAL-CERT-URL" in error["message"]
    assert fake.count("POST", VERIFY) == 0


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"event_type": "X", "resource": {}}', '{"id": "WH-1"}'])
def test_malformed_bodies_fail_cleanly(
    body: str, fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    delivery = {**fake.deliver("{}"), "body": body}
    assert fail(driver, "webhook", webhook=delivery)["code"] == "invalid_payload"
    assert published(runtime) == []
    assert runtime.dead_letters.list()


def test_a_re_sent_event_replays_and_a_verify_outage_is_retried(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    body = fake.capture_event(paid(fake, driver))
    fake.fail_next(503, match=f"POST {VERIFY}")
    first = hook(driver, fake.deliver(body), "w1")
    again = hook(driver, fake.deliver(body), "w2")  # new transmission id and time, same event
    assert len(driver.retries) == 1
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert len(published(runtime)) == 1


def test_events_out_of_order_only_move_a_payment_forward(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    capture = paid(fake, driver, status="PENDING")
    pending = fake.capture_event(capture)
    fake.settle(capture["supplementary_data"]["related_ids"]["order_id"], "COMPLETED")
    completed = fake.capture_event(capture)
    refund = fake.event(
        "PAYMENT.CAPTURE.REFUNDED",
        {
            "id": "RF1",
            "amount": capture["amount"],
            "links": [{"rel": "up", "href": f"/v2/payments/captures/{capture['id']}"}],
        },
        resource_type="refund",
    )
    for n, body in enumerate([completed, refund, pending, completed.replace("WH-", "WH-X")]):
        hook(driver, fake.deliver(body), f"w{n}")
    types = [(e["type"], e["data"]["transaction_id"]) for e in published(runtime)]
    assert types == [("payment.succeeded", capture["id"]), ("payment.refunded", capture["id"])]


def test_a_denied_capture_is_a_failed_payment(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    capture = paid(fake, driver, status="DECLINED")
    hook(driver, fake.deliver(fake.capture_event(capture, "PAYMENT.CAPTURE.DENIED")), "w")
    (event,) = published(runtime)
    assert (event["type"], event["data"]["invoice_id"], event["data"]["fee"]) == ("payment.failed", "1001", None)


# --- installation namespace -----------------------------------------------------------------------


def test_orders_carry_the_installation_reference(fake: FakePayPal, paypal: PayPal, driver: JobDriver) -> None:
    order_id = pay(driver)["order_id"]
    assert fake.orders[order_id]["purchase_units"][0]["invoice_id"] == "pm:default:1001"


@pytest.mark.parametrize(("reference", "booked"), [("pm:other:1001", None), ("1001", "1001"), ("pm:default:7~3", "7")])
def test_references_of_other_installations_are_acknowledged_with_no_effect(
    reference: str, booked: str | None, fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    capture = {**paid(fake, driver), "invoice_id": reference, "supplementary_data": {}}
    result = hook(driver, fake.deliver(fake.capture_event(capture)), "w")
    assert result["replayed"] is False
    assert [e["data"]["invoice_id"] for e in published(runtime)] == ([booked] if booked else [])
    assert ("ignored" in result["data"]) is (booked is None)


# --- money -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "currency", "sent"),
    [("1500.00", "JPY", "1500"), ("12990", "HUF", "12990"), ("300", "TWD", "300"), ("10", "EUR", "10.00")],
)
def test_amounts_use_paypal_decimals(
    total: str, currency: str, sent: str, fake: FakePayPal, paypal: PayPal, driver: JobDriver
) -> None:
    order_id = pay(driver, total=total, currency=currency)["order_id"]
    assert fake.orders[order_id]["purchase_units"][0]["amount"] == {"currency_code": currency, "value": sent}


@pytest.mark.parametrize(
    ("total", "currency"), [("1500.50", "JPY"), ("19.999", "EUR"), ("1.234", "KWD"), ("5.00", "ISK"), ("0", "EUR")]
)
def test_amounts_paypal_cannot_take_are_refused_not_rounded(
    total: str, currency: str, fake: FakePayPal, paypal: PayPal, driver: JobDriver
) -> None:
    kwargs = {"invoice": invoice(total=total, currency=currency), "return_url": "https://billing.example.com/i/1"}
    assert fail(driver, "pay", **kwargs)["code"] == "invalid_payload"
    assert fake.count("POST", ORDERS) == 0


def test_a_zero_decimal_capture_books_exact_amounts(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    capture = paid(fake, driver, total="1500", currency="JPY")
    hook(driver, fake.deliver(fake.capture_event(capture)), "w")
    (event,) = published(runtime)
    assert (event["data"]["amount"], event["data"]["currency"]) == ("1500", "JPY")
    fee = capture["seller_receivable_breakdown"]["paypal_fee"]["value"]
    assert event["data"]["fee"] == fee
    assert fee.isdigit()


# --- pay: reuse, request ids, tokens ---------------------------------------------------------------


def test_pay_reuses_an_open_order_and_makes_a_new_one_when_it_changed_or_closed(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver
) -> None:
    first = pay(driver, "p1")
    assert pay(driver, "p2")["order_id"] == first["order_id"]
    changed = pay(driver, "p3", total="25.00")
    assert changed["order_id"] != first["order_id"]
    fake.settle(changed["order_id"])
    again = pay(driver, "p4", total="25.00")
    assert again["order_id"] not in (first["order_id"], changed["order_id"])
    refs = [fake.orders[o["order_id"]]["purchase_units"][0]["invoice_id"] for o in (first, changed, again)]
    assert refs == ["pm:default:1001", "pm:default:1001~2", "pm:default:1001~3"]
    assert (again["client_id"], again["currency"]) == (fake.client_id, "EUR")
    assert again["approve_url"].startswith("https://www.sandbox.paypal.com/")


def test_a_duplicate_invoice_id_gets_an_attempt_suffix(
    fake: FakePayPal, connect: Callable[..., PayPal], driver: JobDriver
) -> None:
    connect()
    connect("pp2")  # a second connection to the same account, without the first one's state
    fake.settle(pay(driver, "p1")["order_id"])
    order_id = pay(driver, "p2", connection="pp2")["order_id"]
    assert fake.orders[order_id]["purchase_units"][0]["invoice_id"] == "pm:default:1001~2"


def test_every_post_carries_a_request_id_that_a_retry_repeats(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver
) -> None:
    fake.fail_next(503, match=f"POST {ORDERS}$")
    fake.drop_response_next(f"POST {ORDERS}$")
    order_id = pay(driver, "p1")["order_id"]
    assert len(driver.retries) == 2
    assert len(fake.orders) == 1, "the lost answer is replayed by PayPal, not a second order"
    ids = [rid for path, rid in fake.request_ids if path == ORDERS]
    assert len(ids) == 3
    assert len(set(ids)) == 1
    assert ids[0].startswith("task:p1:")
    assert list(fake.orders) == [order_id]
    assert all(rid for _path, rid in fake.request_ids)


def test_the_token_is_cached_refreshed_once_on_401_and_never_stored(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    pay(driver, "p1", invoice_id=1)
    pay(driver, "p2", invoice_id=2)
    assert len(fake.tokens) == 1
    fake.expire_tokens()
    pay(driver, "p3", invoice_id=3)
    assert len(fake.tokens) == 2
    assert driver.retries == []
    stored = [str(runtime.redis.get(k)) for k in runtime.redis.scan_iter("*") if runtime.redis.type(k) == b"string"]
    assert not any(token in s for token in fake.tokens for s in stored)


def test_bad_credentials_fail_at_once(fake: FakePayPal, connect: Callable[..., PayPal], driver: JobDriver) -> None:
    connect(client_secret="EWrongSecret000000")
    kwargs = {"invoice": invoice(), "return_url": "https://billing.example.com/i/1"}
    error = fail(driver, "pay", **kwargs)
    assert error["code"] == "auth_failed"
    assert "Client Authentication failed" in error["message"]
    assert driver.retries == []


# --- capture -----------------------------------------------------------------------------------------


def test_capture_books_at_once_and_the_webhook_after_it_is_not_news(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    order_id = pay(driver)["order_id"]
    fake.approve(order_id)
    fake.drop_response_next(f"POST {ORDERS}/{order_id}/capture")  # captured, answer lost
    result = run(driver, "capture", "c1", order_id=order_id)["data"]
    assert result["capture_status"] == "COMPLETED"
    assert fake.count("POST", f"{ORDERS}/{order_id}/capture") == 1
    capture = fake.captures[result["transaction_id"]]
    run(driver, "capture", "c2", order_id=order_id)
    hook(driver, fake.deliver(fake.capture_event(capture)), "w")
    assert [e["type"] for e in published(runtime)] == ["payment.succeeded"]


@pytest.mark.parametrize(("outcome", "event"), [("PENDING", "payment.processing"), ("DECLINED", "payment.failed")])
def test_capture_reports_the_capture_status_not_the_order_status(
    outcome: str, event: str, fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    order_id = pay(driver)["order_id"]
    fake.approve(order_id)
    fake.capture_outcome = outcome
    result = run(driver, "capture", "c", order_id=order_id)["data"]
    assert (result["status"], result["capture_status"]) == ("COMPLETED", outcome)
    assert [e["type"] for e in published(runtime)] == [event]


def test_a_declined_instrument_asks_the_payer_to_try_again(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    order_id = pay(driver)["order_id"]
    fake.approve(order_id)
    fake.capture_outcome = "INSTRUMENT_DECLINED"
    result = run(driver, "capture", "c", order_id=order_id)["data"]
    assert (result["restart"], result["issue"]) == (True, "INSTRUMENT_DECLINED")
    assert published(runtime) == []


def test_order_already_captured_counts_as_success(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    order_id = pay(driver)["order_id"]
    fake.settle(order_id)
    fake.orders[order_id]["status"] = "APPROVED"  # a stale read: the capture raced us
    result = run(driver, "capture", "c", order_id=order_id)["data"]
    assert result["capture_status"] == "COMPLETED"
    assert [e["type"] for e in published(runtime)] == ["payment.succeeded"]


def test_capture_refuses_another_installations_order(fake: FakePayPal, paypal: PayPal, driver: JobDriver) -> None:
    order_id = pay(driver)["order_id"]
    fake.approve(order_id)
    fake.orders[order_id]["purchase_units"][0]["invoice_id"] = "pm:other:1001"
    assert fail(driver, "capture", order_id=order_id)["code"] == "not_found"
    assert fake.captures == {}


# --- refunds -----------------------------------------------------------------------------------------


def test_a_refund_counts_once_whether_the_operation_or_the_webhook_reports_it(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    capture = paid(fake, driver, total="1500", currency="JPY")
    kwargs = {"transaction_id": capture["id"], "amount": "500", "currency": "JPY", "invoice_id": 1001}
    result = run(driver, "refund", "r1", **kwargs)["data"]
    refund = fake.refunds[result["refund_id"]]
    assert refund["amount"] == {"currency_code": "JPY", "value": "500"}
    body = fake.event("PAYMENT.CAPTURE.REFUNDED", {k: v for k, v in refund.items() if k != "capture"})
    hook(driver, fake.deliver(body), "w")
    (event,) = published(runtime)
    data = event["data"]
    assert (event["type"], data["transaction_id"], data["amount"], data["invoice_id"]) == (
        "payment.refunded",
        capture["id"],
        "500",
        "1001",
    )
    assert data["refund_id"] == refund["id"]
    ids = [rid for path, rid in fake.request_ids if path.endswith("/refund")]
    assert len(ids) == 1


def test_a_refund_or_reversal_webhook_alone_finds_its_invoice(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    capture = paid(fake, driver)
    up = [{"rel": "up", "href": f"https://api-m.paypal.com/v2/payments/captures/{capture['id']}"}]
    reversal = {"id": "RV1", "amount": capture["amount"], "links": up, "status": "COMPLETED"}
    hook(driver, fake.deliver(fake.event("PAYMENT.CAPTURE.REVERSED", reversal, resource_type="refund")), "w")
    (event,) = published(runtime)
    assert (event["data"]["invoice_id"], event["data"]["reversal"], event["data"]["amount"]) == ("1001", True, "19.99")


def test_refund_rules(fake: FakePayPal, paypal: PayPal, driver: JobDriver) -> None:
    capture = paid(fake, driver)
    assert fail(driver, "refund", transaction_id=capture["id"], amount="5.00")["code"] == "invalid_payload"
    error = fail(driver, "refund", "f2", transaction_id=capture["id"], amount="50.00", currency="EUR")
    assert (error["code"], "REFUND_AMOUNT_EXCEEDED" in error["message"]) == ("provider_rejected", True)
    assert "debug_id" in error["message"]
    full = run(driver, "refund", "r", transaction_id=capture["id"])["data"]
    assert fake.refunds[full["refund_id"]]["amount"]["value"] == "19.99"
    assert fake.captures[capture["id"]]["status"] == "REFUNDED"


# --- saved accounts (billing agreements) ------------------------------------------------------------


def test_billing_agreements_need_the_setting(
    fake: FakePayPal, connect: Callable[..., PayPal], driver: JobDriver
) -> None:
    connect(paypal_support_billing_agreements="0")
    user = {"id": 42, "email": "alice@example.com"}
    error = fail(driver, "create_billing_agreement", user=user, return_url="https://billing.example.com/a")
    assert error["code"] == "unsupported_operation"


def test_a_saved_account_is_created_charged_and_cancelled(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    user = {"id": 42, "email": "alice@example.com"}
    created = run(driver, "create_billing_agreement", "a1", user=user, return_url="https://billing.example.com/a")
    setup_id = created["data"]["setup_id"]
    assert created["data"]["redirect_url"].endswith(f"approval_session_id={setup_id}")  # by rel, not links[1]
    fake.approve_setup_token(setup_id, "alice@paypal.example")
    done = run(driver, "complete_billing_agreement", "a2", user=user, approval_token_id=setup_id)["data"]
    vault_id = done["external_reference"]
    assert done["name"] == "PayPal alice@paypal.example"
    agreement = {"id": 5, "external_reference": vault_id}

    fake.fail_next(503, match=f"POST {ORDERS}$")
    charged = run(driver, "charge", "c1", invoice=invoice(2002, "9.99"), agreement=agreement)["data"]
    assert charged["capture_status"] == "COMPLETED"
    assert len(fake.orders) == 1
    assert len(driver.retries) == 1
    fake.capture_outcome = "DECLINED"
    declined = run(driver, "charge", "c2", invoice=invoice(2003, "9.99"), agreement=agreement)["data"]
    assert declined["capture_status"] == "DECLINED"

    run(driver, "cancel_billing_agreement", "x1", agreement=agreement)
    assert vault_id not in fake.payment_tokens
    deleted = fake.event("VAULT.PAYMENT-TOKEN.DELETED", {"id": vault_id}, resource_type="payment_token")
    hook(driver, fake.deliver(deleted), "w")
    again = run(driver, "cancel_billing_agreement", "x2", agreement=agreement)
    assert again["data"]["already_gone"] is True
    types = [(e["type"], e["data"].get("invoice_id")) for e in published(runtime)]
    assert types == [
        ("billing_agreement.created", None),
        ("payment.succeeded", "2002"),
        ("payment.failed", "2003"),
        ("billing_agreement.cancelled", None),
    ]


def test_an_account_deleted_at_paypal_cancels_the_agreement(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    body = fake.event("VAULT.PAYMENT-TOKEN.DELETED", {"id": "8KT12345AB"}, resource_type="payment_token")
    hook(driver, fake.deliver(body), "w")
    (event,) = published(runtime)
    assert (event["type"], event["data"]["external_reference"]) == ("billing_agreement.cancelled", "8KT12345AB")


# --- subscriptions and sales ------------------------------------------------------------------------


def test_cancel_subscription_once_whoever_reports_it(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    fake.add_subscription("I-BW452GLLEP1G")
    run(driver, "cancel_subscription", "s1", subscription_id="I-BW452GLLEP1G", service_id=9)
    assert fake.subscriptions["I-BW452GLLEP1G"]["status"] == "CANCELLED"
    again = run(driver, "cancel_subscription", "s2", subscription_id="I-BW452GLLEP1G")
    assert again["data"]["already_cancelled"] is True
    body = fake.event("BILLING.SUBSCRIPTION.CANCELLED", {"id": "I-BW452GLLEP1G"}, resource_type="subscription")
    hook(driver, fake.deliver(body), "w")
    assert [e["type"] for e in published(runtime)] == ["subscription.cancelled"]
    assert fail(driver, "cancel_subscription", subscription_id="sub_stripe_1")["code"] == "not_found"


SUB = "I-BW452GLLEP1G"
SUBSCRIPTIONS = r"/v1/billing/subscriptions/.*"


def reprice(driver: JobDriver, task_id: str, total: str, currency: str = "USD", **kwargs: Any) -> dict[str, Any]:
    data: dict[str, Any] = run(
        driver, "update_subscription", task_id, subscription_id=SUB, total=total, currency=currency, **kwargs
    )["data"]
    return data


@pytest.mark.parametrize(("trials", "sequence"), [((), 1), (("0",), 2), (("0", "4.99"), 3)])
def test_a_price_change_patches_the_regular_cycle_once_wherever_it_is(
    trials: tuple[str, ...], sequence: int, fake: FakePayPal, paypal: PayPal, driver: JobDriver
) -> None:
    fake.add_subscription(SUB, plan_id=fake.add_plan("10.00", trials=trials))
    data = reprice(driver, "u1", "24.5", service_id=9)
    assert data == {
        "subscription_id": SUB,
        "plan_id": fake.subscriptions[SUB]["plan_id"],
        "sequence": sequence,
        "currency": "USD",
        "old_price": "10.00",
        "new_price": "24.50",
        "changed": True,
    }
    assert fake.count("PATCH", SUBSCRIPTIONS) == 1
    (patch,) = fake.subscriptions[SUB]["patches"]
    path = f"/plan/billing_cycles/@sequence=={sequence}/pricing_scheme/fixed_price"
    assert patch == [{"op": "replace", "path": path, "value": {"currency_code": "USD", "value": "24.50"}}]
    assert fake.price_of(SUB, sequence) == {"currency_code": "USD", "value": "24.50"}
    assert [fake.price_of(SUB, n)["value"] for n in range(1, sequence)] == list(trials)  # trials untouched
    regular = fake.plans[data["plan_id"]]["billing_cycles"][-1]
    assert regular["pricing_scheme"]["fixed_price"]["value"] == "10.00", "the plan's other subscribers keep theirs"


def test_the_same_price_again_sends_no_patch(fake: FakePayPal, paypal: PayPal, driver: JobDriver) -> None:
    fake.add_subscription(SUB, price="25.00")  # its own price, not the plan's 10.00
    data = reprice(driver, "u1", "25")
    assert (data["changed"], data["old_price"], data["new_price"]) == (False, "25.00", "25.00")
    assert fake.count("PATCH", SUBSCRIPTIONS) == 0
    assert reprice(driver, "u2", "30.00")["old_price"] == "25.00"
    assert reprice(driver, "u3", "30.00")["changed"] is False
    assert fake.count("PATCH", SUBSCRIPTIONS) == 1


def test_a_lost_patch_answer_is_retried_and_converges(fake: FakePayPal, paypal: PayPal, driver: JobDriver) -> None:
    fake.add_subscription(SUB, plan_id=fake.add_plan("10.00", trials=()))
    fake.drop_response_next(f"PATCH {SUBSCRIPTIONS}")  # the price changed, the answer is lost
    data = reprice(driver, "u1", "12.00", idempotency_key="service-9-price-12")
    assert len(driver.retries) == 1
    assert fake.count("PATCH", SUBSCRIPTIONS) == 1, "the retry reads the new price and sends nothing"
    assert fake.price_of(SUB, 1) == {"currency_code": "USD", "value": "12.00"}
    assert (data["changed"], data["old_price"], data["new_price"]) == (True, "10.00", "12.00")


@pytest.mark.parametrize("status", ["CANCELLED", "EXPIRED"])
def test_a_finished_subscription_cannot_be_repriced(
    status: str, fake: FakePayPal, paypal: PayPal, driver: JobDriver
) -> None:
    fake.add_subscription(SUB, status=status)
    error = fail(driver, "update_subscription", subscription_id=SUB, total="12.00", currency="USD")
    assert (error["code"], error["retryable"]) == ("provider_rejected", False)
    assert f"{SUB} is {status}" in error["message"]
    assert fake.count("PATCH", SUBSCRIPTIONS) == 0
    assert driver.retries == []


def test_an_unknown_subscription_is_not_found(fake: FakePayPal, paypal: PayPal, driver: JobDriver) -> None:
    error = fail(driver, "update_subscription", subscription_id="I-UNKNOWN", total="12.00", currency="USD")
    assert (error["code"], error["provider_status"]) == ("not_found", 404)
    assert driver.retries == []


@pytest.mark.parametrize(
    "request_",
    [
        {"total": "12.00", "currency": "USD"},
        {"subscription_id": SUB, "currency": "USD"},
        {"subscription_id": SUB, "total": 12.5, "currency": "USD"},
        {"subscription_id": SUB, "total": "12.00", "currency": "DOLLAR"},
        {"subscription_id": SUB, "total": "0", "currency": "USD"},
        {"subscription_id": SUB, "total": "12.999", "currency": "USD"},
        {"subscription_id": SUB, "total": "1500.50", "currency": "JPY"},
    ],
    ids=["no-subscription", "no-total", "float", "currency", "zero", "decimals", "jpy-decimals"],
)
def test_a_bad_price_update_is_refused_before_any_call(
    request_: dict[str, Any], fake: FakePayPal, paypal: PayPal, driver: JobDriver
) -> None:
    fake.add_subscription(SUB)
    assert fail(driver, "update_subscription", **request_)["code"] == "invalid_payload"
    assert fake.calls == []


def test_a_price_in_another_currency_is_refused(fake: FakePayPal, paypal: PayPal, driver: JobDriver) -> None:
    fake.add_subscription(SUB)
    error = fail(driver, "update_subscription", subscription_id=SUB, total="12.00", currency="EUR")
    assert (error["code"], "bills in USD, not EUR" in error["message"]) == ("invalid_payload", True)
    assert fake.count("PATCH", SUBSCRIPTIONS) == 0


def test_price_updates_never_carry_credentials(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    fake.add_subscription(SUB)
    fake.add_subscription("I-GONE", status="CANCELLED")
    texts = [json.dumps(reprice(driver, "u1", "12.00"))]
    for sub in ("I-GONE", "I-UNKNOWN"):
        texts.append(
            json.dumps(fail(driver, "update_subscription", sub, subscription_id=sub, total="1", currency="USD"))
        )
    texts += [json.dumps(letter, default=str) for letter in runtime.dead_letters.list()]
    assert len(texts) == 5
    secrets = [fake.client_secret, *fake.tokens]
    assert fake.tokens
    assert not [s for s in secrets for text in texts if s in text]


def test_regular_cycle_and_price_parsing() -> None:
    cycles = [
        {"tenure_type": tenure, "sequence": n, "pricing_scheme": {"fixed_price": {"value": v, "currency_code": "EUR"}}}
        for n, (tenure, v) in enumerate([("TRIAL", "0"), ("REGULAR", "9.9")], 1)
    ]
    assert m.regular_sequence({"billing_cycles": cycles}) == 2
    assert m.cycle_price(cycles, 2) == (Decimal("9.9"), "EUR")
    assert m.cycle_price([{"sequence": 1}], 1) is None
    with pytest.raises(ProviderRejected, match="no single REGULAR"):
        m.regular_sequence({"id": "P-1", "billing_cycles": cycles[:1]})
    with pytest.raises(ProviderRejected, match="is CANCELLED"):
        m.priceable_plan({"status": "CANCELLED", "plan_id": "P-1"}, SUB)
    assert m.priceable_plan({"status": "SUSPENDED", "plan_id": "P-1"}, SUB) == "P-1"


@pytest.mark.parametrize(("fields", "booked"), [({"custom": "pm:default:77"}, "77"), ({"invoice_number": "78"}, "78")])
def test_a_subscription_sale_credits_the_one_invoice_it_names(
    fields: dict[str, str], booked: str, fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    sale = {
        "id": "80021663DE681814L",
        "state": "completed",
        "amount": {"total": "10.00", "currency": "USD"},
        "transaction_fee": {"value": "0.59", "currency": "USD"},
        "billing_agreement_id": "I-BW452GLLEP1G",
        **fields,
    }
    hook(driver, fake.deliver(fake.event("PAYMENT.SALE.COMPLETED", sale, resource_type="sale")), "w")
    (event,) = published(runtime)
    data = event["data"]
    assert (data["invoice_id"], data["amount"], data["fee"], data["transaction_id"]) == (
        booked,
        "10.00",
        "0.59",
        sale["id"],
    )
    assert data["subscription_id"] == "I-BW452GLLEP1G"


def test_a_sale_without_an_invoice_reference_and_unknown_events_are_acknowledged(
    fake: FakePayPal, paypal: PayPal, driver: JobDriver, runtime: Runtime
) -> None:
    sale = {"id": "S1", "amount": {"total": "10.00", "currency": "USD"}, "billing_agreement_id": "I-1"}
    first = hook(driver, fake.deliver(fake.event("PAYMENT.SALE.COMPLETED", sale, resource_type="sale")), "w1")
    other = hook(driver, fake.deliver(fake.event("CUSTOMER.DISPUTE.CREATED", {"id": "PP-D-1"})), "w2")
    assert first["data"]["ignored"] == "no invoice reference"
    assert "not handled" in other["data"]["ignored"]
    assert published(runtime) == []


# --- config and pure parts ----------------------------------------------------------------------------


def test_config_uses_paymenter_names_and_picks_the_base(fake: FakePayPal) -> None:
    names = [f["name"] for f in PayPal.get_config()]
    assert names[:5] == ["client_id", "client_secret", "webhook_id", "test_mode", "paypal_support_billing_agreements"]
    base = {k: v for k, v in settings(fake).items() if k != "api_base"}
    assert PayPalConfig.model_validate({**base, "test_mode": "0"}).base_url == LIVE_BASE
    assert PayPalConfig.model_validate(base).base_url == SANDBOX_BASE
    assert PayPalConfig.model_validate({**base, "api_base": "http://127.0.0.1:9/"}).base_url == "http://127.0.0.1:9"
    with pytest.raises(InvalidConfig):
        PayPal({**base, "client_secret": " "})


def test_request_ids_stay_within_paypal_limits() -> None:
    assert m.request_id("task:abc", "order-1") == "task:abc:order-1"
    long = m.request_id("k" * 200, "order-1")
    assert len(long) <= 100
    assert long == m.request_id("k" * 200, "order-1")


def test_transmission_time_parsing_accepts_paypal_formats() -> None:
    moment = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    for text in ("2030-01-01T12:00:00Z", "2030-01-01T12:00:00.123Z", "2030-01-01T13:00:00+01:00"):
        parsed = m.parse_time(text)
        assert parsed is not None
        assert abs(parsed - moment) < timedelta(seconds=1)
    assert m.parse_time("yesterday") is None
