"""Mollie's own quirks; the shared gateway contract suite covers pay, replay, forgery and redaction."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import fakeredis
import httpx
import pytest

from extensions import get_extension
from extensions.base import LocalContext
from extensions.errors import AuthFailed, InvalidConfig, InvalidPayload, UnsupportedOperation
from extensions.gateways.mollie import Mollie
from extensions.gateways.mollie import mapping as m
from extensions.payments import PayRequest
from tests.conftest import JobDriver, make_settings
from tests.fakes.mollie import FakeMollie
from worker.profiles import Profiles
from worker.runtime import Runtime

KEY = "test_quirksmolliekey0000000000"
CONN = "mollie"
WEBHOOK_URL = "https://billing.example.com/webhooks/mollie/mollie"


@pytest.fixture
def fake() -> FakeMollie:
    return FakeMollie(api_key=KEY)


def gateway(fake: FakeMollie, key: str = KEY) -> Mollie:
    ext = get_extension("gateways", "mollie", {"api_key": key}, transport=fake.transport())
    assert isinstance(ext, Mollie)
    return ext


@pytest.fixture
def bound(fake: FakeMollie, runtime: Runtime) -> FakeMollie:
    runtime.bind(CONN, gateway(fake))
    return fake


def invoice(invoice_id: int = 42, total: str = "12.50", currency: str = "EUR") -> dict[str, Any]:
    return {
        "id": invoice_id,
        "number": f"INV-{invoice_id}",
        "total": total,
        "currency": currency,
        "user": {"id": 7, "email": "alice@example.com"},
    }


def pay_kwargs(invoice_id: int = 42, total: str = "12.50", currency: str = "EUR", **extra: Any) -> dict[str, Any]:
    kwargs = {
        "connection": CONN,
        "invoice": invoice(invoice_id, total, currency),
        "return_url": f"https://billing.example.com/invoices/INV-{invoice_id}?checkPayment=true",
        "webhook_url": WEBHOOK_URL,
    }
    return {**kwargs, **extra}


def pay(driver: JobDriver, task_id: str = "pay", **kwargs: Any) -> dict[str, Any]:
    return driver.run("gateways.mollie.pay", pay_kwargs(**kwargs), task_id=task_id)["data"]


def webhook(driver: JobDriver, delivery: dict[str, Any], task_id: str = "wh") -> dict[str, Any]:
    return driver.run("gateways.mollie.webhook", {"connection": CONN, "webhook": delivery}, task_id=task_id)


def fail_webhook(driver: JobDriver, delivery: dict[str, Any], task_id: str = "wh-f") -> dict[str, Any]:
    return driver.fail("gateways.mollie.webhook", {"connection": CONN, "webhook": delivery}, task_id=task_id)


def published(runtime: Runtime) -> list[dict[str, Any]]:
    return [e for e in runtime.events.read() if e["type"].startswith("payment.")]


def delivery(body: str) -> dict[str, Any]:
    return {"body": body, "headers": dict(FakeMollie.WEBHOOK_HEADERS), "query": {}, "received_at": None}


def creations(fake: FakeMollie) -> list[tuple[str, str, dict[str, str], Any]]:
    return [r for r in fake.requests if r[0] == "POST" and r[1] == "/v2/payments"]


# --- config ---------------------------------------------------------------------------------------------


def test_config_takes_paymenters_field_and_refuses_a_key_without_mode_prefix(fake: FakeMollie) -> None:
    fields = {f["name"]: f for f in Mollie.get_config()}
    assert fields["api_key"]["type"] == "password"
    assert fields["api_key"]["required"] is True
    with pytest.raises(InvalidConfig):
        Mollie({"api_key": "sk_not_a_mollie_key_123"})
    ext = Mollie({"api_key": KEY, "api_base": "https://api.mollie.com/v2/"})
    assert ext.config.api_base == "https://api.mollie.com"
    assert ext.config.mode == "test"


def test_test_config_checks_the_key(fake: FakeMollie) -> None:
    assert gateway(fake).test_config().data == {"ok": True, "mode": "test"}
    with pytest.raises(AuthFailed):
        gateway(fake, key="test_revokedkey000000000000").test_config()


def test_test_config_runs_as_a_task(bound: FakeMollie, driver: JobDriver) -> None:
    assert driver.run("gateways.mollie.test_config", {"connection": CONN})["data"] == {"ok": True, "mode": "test"}


def test_operations_mollie_does_not_have_are_unsupported(fake: FakeMollie) -> None:
    ext = gateway(fake)
    for op in ("charge", "create_billing_agreement", "cancel_billing_agreement", "cancel_subscription"):
        with pytest.raises(UnsupportedOperation):
            ext.operation(op)


# --- pay ------------------------------------------------------------------------------------------------


def test_pay_creates_a_namespaced_payment_and_returns_the_checkout(bound: FakeMollie, driver: JobDriver) -> None:
    data = pay(driver, cancel_url="https://billing.example.com/invoices/INV-42")
    (payment,) = bound.payments.values()
    assert data["transaction_id"] == payment["id"]
    assert data["redirect_url"] == payment["_links"]["checkout"]["href"]
    assert payment["amount"] == {"value": "12.50", "currency": "EUR"}
    assert payment["description"] == "Invoice #INV-42"
    assert payment["metadata"] == {"invoice_id": 42, "paymenter_reference": "pm:default:42"}
    assert payment["webhookUrl"] == WEBHOOK_URL
    assert payment["redirectUrl"] == "https://billing.example.com/invoices/INV-42?checkPayment=true"
    assert payment["cancelUrl"] == "https://billing.example.com/invoices/INV-42"


def test_the_idempotency_key_is_stable_across_retries_so_a_lost_answer_makes_one_payment(
    bound: FakeMollie, driver: JobDriver
) -> None:
    bound.fail_next(503, match=r"POST /v2/payments$")
    bound.drop_response_next(r"POST /v2/payments$")
    data = pay(driver, task_id="lossy")
    assert len(driver.retries) == 2
    assert list(bound.payments) == [data["transaction_id"]]
    keys = {r[2]["idempotency-key"] for r in creations(bound)}
    assert len(creations(bound)) == 2  # the injected 503 never reaches the API
    assert len(keys) == 1
    assert next(iter(keys)).startswith("paymenter-payment-")


def test_another_job_for_a_changed_amount_gets_a_new_payment_and_key(bound: FakeMollie, driver: JobDriver) -> None:
    first = pay(driver, task_id="p1")
    second = pay(driver, task_id="p2", total="15.00")
    assert first["transaction_id"] != second["transaction_id"]
    assert second["reused"] is False
    assert len({r[2]["idempotency-key"] for r in creations(bound)}) == 2
    third = pay(driver, task_id="p3", total="15.00")
    assert third["transaction_id"] == second["transaction_id"]
    assert third["reused"] is True


def test_a_payment_no_longer_open_is_not_reused(bound: FakeMollie, driver: JobDriver) -> None:
    first = pay(driver, task_id="p1")
    bound.set_status(first["transaction_id"], "expired")
    second = pay(driver, task_id="p2")
    assert second["transaction_id"] != first["transaction_id"]
    assert len(bound.payments) == 2


@pytest.mark.parametrize(
    ("total", "currency", "sent"),
    [("1000", "JPY", "1000"), ("1000.00", "JPY", "1000"), ("990", "ISK", "990"), ("0.10", "EUR", "0.10")],
)
def test_amounts_use_mollies_decimals(
    bound: FakeMollie, driver: JobDriver, total: str, currency: str, sent: str
) -> None:
    pay(driver, total=total, currency=currency)
    (payment,) = bound.payments.values()
    assert payment["amount"] == {"value": sent, "currency": currency}


@pytest.mark.parametrize(
    ("total", "currency"),
    [("1000.50", "JPY"), ("19.995", "EUR"), ("1.234", "KWD"), ("0", "EUR"), ("-5.00", "EUR")],
)
def test_an_amount_mollie_cannot_take_exactly_is_refused_before_any_call(
    bound: FakeMollie, driver: JobDriver, total: str, currency: str
) -> None:
    error = driver.fail("gateways.mollie.pay", pay_kwargs(total=total, currency=currency))
    assert error["code"] == "invalid_payload"
    assert bound.calls == []


def test_a_three_decimal_currency_mollie_does_not_support_is_rejected_without_retry(
    bound: FakeMollie, driver: JobDriver
) -> None:
    error = driver.fail("gateways.mollie.pay", pay_kwargs(total="1.230", currency="KWD"))
    assert error["code"] == "provider_rejected"
    assert "amount.currency" in error["message"]
    assert driver.retries == []
    assert bound.payments == {}


def test_a_localhost_webhook_url_is_refused_by_mollie(bound: FakeMollie, driver: JobDriver) -> None:
    error = driver.fail("gateways.mollie.pay", pay_kwargs(webhook_url="http://localhost:8000/webhooks/mollie/x"))
    assert error["code"] == "provider_rejected"
    assert "webhookUrl" in error["message"]


def test_the_webhook_url_defaults_to_the_public_url(fake: FakeMollie) -> None:
    request = PayRequest.model_validate({k: v for k, v in pay_kwargs().items() if k not in ("connection",)})
    request = request.model_copy(update={"webhook_url": None})
    job = LocalContext("k", connection="shop", public_url="https://pay.example.com/")
    gateway(fake).pay(request, job)
    (payment,) = fake.payments.values()
    assert payment["webhookUrl"] == "https://pay.example.com/webhooks/mollie/shop"
    with pytest.raises(InvalidPayload):
        gateway(fake).pay(request, LocalContext("k2"))


# --- webhook: verification ------------------------------------------------------------------------------


def test_an_unknown_id_is_acknowledged_with_no_effect_and_no_retry(
    bound: FakeMollie, driver: JobDriver, runtime: Runtime
) -> None:
    result = webhook(driver, delivery("id=tr_doesnotexist"))
    assert result["data"]["ignored"] == "unknown payment"
    assert published(runtime) == []
    assert driver.reschedules == []


def test_another_accounts_payment_is_unknown_to_our_key(bound: FakeMollie, driver: JobDriver, runtime: Runtime) -> None:
    theirs = bound.create_payment("10.00", metadata={"invoice_id": 42}, api_key="test_someoneelse000000000000")
    bound.set_status(theirs["id"], "paid")
    result = webhook(driver, bound.webhook(theirs["id"]))
    assert result["data"]["ignored"] == "unknown payment"
    assert published(runtime) == []


@pytest.mark.parametrize("body", ["id=ord_abc123", "id=tr_abc%2F..%2Frefunds", "id=tr_abc%3Fx%3D1", "id=re_abc"])
def test_an_id_that_is_not_a_payment_id_cannot_be_verified(
    bound: FakeMollie, driver: JobDriver, runtime: Runtime, body: str
) -> None:
    assert fail_webhook(driver, delivery(body))["code"] == "signature_invalid"
    assert bound.calls == []
    assert published(runtime) == []


@pytest.mark.parametrize(
    "body", ["", "id=", "tr_abc", "id=tr_a&id=tr_b", '{"resource":"event","id":"event_1"}', "&".join(["x=1"] * 50)]
)
def test_a_malformed_body_is_invalid(bound: FakeMollie, driver: JobDriver, body: str) -> None:
    assert fail_webhook(driver, delivery(body))["code"] == "invalid_payload"
    assert bound.calls == []


def test_a_provider_outage_is_retried_then_booked_once(bound: FakeMollie, driver: JobDriver, runtime: Runtime) -> None:
    paid = pay(driver)
    bound.set_status(paid["transaction_id"], "paid")
    bound.fail_next(500, match=r"GET /v2/payments/")
    result = webhook(driver, bound.webhook(paid["transaction_id"]))
    assert len(driver.retries) == 1
    assert result["replayed"] is False
    assert [e["type"] for e in published(runtime)] == ["payment.succeeded"]


def test_a_revoked_key_fails_at_once(fake: FakeMollie, runtime: Runtime, driver: JobDriver) -> None:
    payment = fake.create_payment("5.00", metadata={"invoice_id": 1})
    runtime.bind(CONN, gateway(fake, key="test_revokedkey000000000000"))
    assert fail_webhook(driver, fake.webhook(payment["id"]))["code"] == "auth_failed"
    assert driver.retries == []


def test_a_proxy_404_is_not_taken_for_an_unknown_payment(fake: FakeMollie, runtime: Runtime, driver: JobDriver) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(404, text="<html>no such route</html>"))
    runtime.bind(CONN, get_extension("gateways", "mollie", {"api_key": KEY}, transport=transport))
    assert fail_webhook(driver, delivery("id=tr_abc"))["code"] == "not_found"


# --- webhook: mapping and dedupe ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "event"),
    [("failed", "payment.failed"), ("expired", "payment.failed"), ("canceled", "payment.failed")],
)
def test_final_failures_are_reported(
    bound: FakeMollie, driver: JobDriver, runtime: Runtime, status: str, event: str
) -> None:
    paid = pay(driver)
    bound.set_status(paid["transaction_id"], status)
    webhook(driver, bound.webhook(paid["transaction_id"]))
    (published_event,) = published(runtime)
    assert published_event["type"] == event
    assert published_event["data"]["provider_status"] == status
    assert published_event["data"]["amount"] == "12.50"
    assert published_event["data"]["invoice_id"] == "42"


def test_authorized_then_paid_are_two_events_each_once(bound: FakeMollie, driver: JobDriver, runtime: Runtime) -> None:
    tr = pay(driver)["transaction_id"]
    bound.set_status(tr, "authorized")
    webhook(driver, bound.webhook(tr), "w1")
    bound.set_status(tr, "paid")
    webhook(driver, bound.webhook(tr), "w2")
    assert webhook(driver, bound.webhook(tr), "w3")["replayed"] is True
    events = published(runtime)
    assert [e["type"] for e in events] == ["payment.processing", "payment.succeeded"]
    assert events[1]["data"]["provider_event_id"] == f"{tr}:paid:0.00:0.00"


def test_an_open_payment_is_acknowledged_without_an_event(
    bound: FakeMollie, driver: JobDriver, runtime: Runtime
) -> None:
    tr = pay(driver)["transaction_id"]
    result = webhook(driver, bound.webhook(tr))
    assert result["data"]["status"] == "open"
    assert published(runtime) == []


def test_refunds_and_chargebacks_are_reported_as_cumulative_refunds(
    bound: FakeMollie, driver: JobDriver, runtime: Runtime
) -> None:
    tr = pay(driver, total="100.00")["transaction_id"]
    bound.set_status(tr, "paid")
    webhook(driver, bound.webhook(tr), "paid")
    bound.refund(tr, "30.00")
    webhook(driver, bound.webhook(tr), "refund-1")
    assert webhook(driver, bound.webhook(tr), "refund-1-again")["replayed"] is True
    bound.chargeback(tr, "20.00")
    webhook(driver, bound.webhook(tr), "chargeback")
    refunds = [e["data"] for e in published(runtime) if e["type"] == "payment.refunded"]
    assert [(r["amount"], r["amount_refunded"], r["amount_charged_back"]) for r in refunds] == [
        ("30.00", "30.00", "0.00"),
        ("50.00", "30.00", "20.00"),
    ]
    assert [e["type"] for e in published(runtime)].count("payment.succeeded") == 1


def test_a_payment_first_seen_already_refunded_reports_success_then_refund(
    bound: FakeMollie, driver: JobDriver, runtime: Runtime
) -> None:
    tr = pay(driver, total="10.00")["transaction_id"]
    bound.set_status(tr, "paid")
    bound.refund(tr, "10.00")
    webhook(driver, bound.webhook(tr))
    assert [(e["type"], e["data"]["amount"]) for e in published(runtime)] == [
        ("payment.succeeded", "10.00"),
        ("payment.refunded", "10.00"),
    ]


def test_zero_decimal_currency_events_keep_whole_units(bound: FakeMollie, driver: JobDriver, runtime: Runtime) -> None:
    tr = pay(driver, total="1500", currency="JPY")["transaction_id"]
    bound.set_status(tr, "paid")
    webhook(driver, bound.webhook(tr))
    (event,) = published(runtime)
    assert (event["data"]["amount"], event["data"]["currency"]) == ("1500", "JPY")


def test_a_late_delivery_for_an_earlier_state_replays_the_current_one(
    bound: FakeMollie, driver: JobDriver, runtime: Runtime
) -> None:
    tr = pay(driver)["transaction_id"]
    bound.set_status(tr, "authorized")
    early = bound.webhook(tr)
    bound.set_status(tr, "paid")
    webhook(driver, bound.webhook(tr), "paid")
    late = webhook(driver, early, "late")  # it fetches "paid", which was booked already
    assert late["replayed"] is True
    assert [e["type"] for e in published(runtime)] == ["payment.succeeded"]


def test_a_late_delivery_processed_first_still_books_the_current_state_once(
    bound: FakeMollie, driver: JobDriver, runtime: Runtime
) -> None:
    tr = pay(driver)["transaction_id"]
    bound.set_status(tr, "authorized")
    early = bound.webhook(tr)
    bound.set_status(tr, "paid")
    first = webhook(driver, early, "early")  # nothing handled yet: the fetched state is news
    assert first["replayed"] is False
    assert webhook(driver, bound.webhook(tr), "paid")["replayed"] is True
    assert [e["type"] for e in published(runtime)] == ["payment.succeeded"]


# --- webhook: whose payment -----------------------------------------------------------------------------


def test_another_installations_payment_is_acknowledged_with_no_effect(
    bound: FakeMollie, driver: JobDriver, runtime: Runtime
) -> None:
    theirs = bound.create_payment("10.00", metadata={"invoice_id": 42, "paymenter_reference": "pm:shop-b:42"})
    bound.set_status(theirs["id"], "paid")
    result = webhook(driver, bound.webhook(theirs["id"]))
    assert "shop-b" in result["data"]["ignored"]
    assert published(runtime) == []


@pytest.mark.parametrize("metadata", [None, {}, {"order": "x"}, {"paymenter_reference": "not-ours"}])
def test_a_payment_without_a_paymenter_invoice_is_acknowledged_with_no_effect(
    bound: FakeMollie, driver: JobDriver, runtime: Runtime, metadata: dict[str, Any] | None
) -> None:
    other = bound.create_payment("10.00", metadata=metadata)
    bound.set_status(other["id"], "paid")
    assert webhook(driver, bound.webhook(other["id"]))["data"]["ignored"]
    assert published(runtime) == []


def test_a_payment_made_by_paymenters_php_gateway_counts_as_ours(
    bound: FakeMollie, driver: JobDriver, runtime: Runtime
) -> None:
    legacy = bound.create_payment("25.00", metadata={"invoice_id": 77})
    bound.set_status(legacy["id"], "paid")
    webhook(driver, bound.webhook(legacy["id"]))
    (event,) = published(runtime)
    assert (event["data"]["invoice_id"], event["data"]["amount"]) == ("77", "25.00")


def test_a_payment_that_no_longer_matches_its_invoice_has_no_effect(
    bound: FakeMollie, driver: JobDriver, runtime: Runtime
) -> None:
    tr = pay(driver)["transaction_id"]
    bound.set_status(tr, "paid")
    bound.payments[tr]["amount"] = {"value": "1.00", "currency": "EUR"}
    assert fail_webhook(driver, bound.webhook(tr))["code"] == "conflict"
    assert published(runtime) == []


# --- refund ---------------------------------------------------------------------------------------------


def refund(driver: JobDriver, task_id: str = "refund", **request: Any) -> dict[str, Any]:
    return driver.run("gateways.mollie.refund", {"connection": CONN, **request}, task_id=task_id)


def test_a_full_refund_takes_the_remaining_amount_and_the_webhook_reports_it(
    bound: FakeMollie, driver: JobDriver, runtime: Runtime
) -> None:
    tr = pay(driver, total="20.00")["transaction_id"]
    bound.set_status(tr, "paid")
    bound.refund(tr, "5.00")
    data = refund(driver, transaction_id=tr, invoice_id=42)["data"]
    assert (data["amount"], data["currency"], data["transaction_id"]) == ("15.00", "EUR", tr)
    (made,) = bound.refunds[tr]
    assert made["metadata"] == {"invoice_id": 42, "paymenter_reference": "pm:default:42"}
    assert made["description"] == "Refund of invoice #42"
    assert bound.payments[tr]["amountRemaining"]["value"] == "0.00"
    webhook(driver, bound.webhook(tr))
    refunded = [e["data"]["amount"] for e in published(runtime) if e["type"] == "payment.refunded"]
    assert refunded == ["20.00"]


def test_a_refund_retried_after_a_lost_answer_refunds_once(bound: FakeMollie, driver: JobDriver) -> None:
    tr = pay(driver, total="20.00")["transaction_id"]
    bound.set_status(tr, "paid")
    bound.drop_response_next(r"POST /v2/payments/tr_\w+/refunds")
    data = refund(driver, transaction_id=tr, amount="7.50", currency="EUR", reason="goodwill")["data"]
    assert len(driver.retries) == 1
    (made,) = bound.refunds[tr]
    assert (made["id"], made["description"], made["amount"]["value"]) == (data["refund_id"], "goodwill", "7.50")
    sent = {r[2]["idempotency-key"] for r in bound.requests if r[1].endswith("/refunds")}
    assert len(sent) == 1
    assert next(iter(sent)).startswith("paymenter-refund-")


def test_refund_refusals(bound: FakeMollie, driver: JobDriver) -> None:
    tr = pay(driver, total="20.00")["transaction_id"]
    bound.set_status(tr, "paid")
    fail = driver.fail
    assert fail("gateways.mollie.refund", {"connection": CONN, "transaction_id": "pi_123"})["code"] == "invalid_payload"
    wrong_currency = {"connection": CONN, "transaction_id": tr, "currency": "USD"}
    assert fail("gateways.mollie.refund", wrong_currency, "t2")["code"] == "invalid_payload"
    too_much = {"connection": CONN, "transaction_id": tr, "amount": "25.00", "currency": "EUR"}
    error = fail("gateways.mollie.refund", too_much, "t3")
    assert error["code"] == "provider_rejected"
    assert "amount.value" in error["message"]
    unknown = {"connection": CONN, "transaction_id": "tr_unknown1", "amount": "1.00", "currency": "EUR"}
    assert fail("gateways.mollie.refund", unknown, "t4")["code"] == "not_found"
    assert bound.refunds == {}
    assert driver.retries == []


# --- the fake's test-control endpoint, as an HTTP-level test would use it ---------------------------------


def test_the_control_endpoint_settles_a_payment_over_loopback(fake: FakeMollie) -> None:
    payment = fake.create_payment("9.99", metadata={"invoice_id": 5})
    with fake.serve() as base_url:
        answer = httpx.post(f"{base_url}/_test/payments/{payment['id']}/status", json={"status": "paid"})
        assert answer.json()["status"] == "paid"
        redis = fakeredis.FakeRedis()
        runtime = Runtime(make_settings(), Profiles(), redis)
        runtime.bind(CONN, get_extension("gateways", "mollie", {"api_key": KEY, "api_base": base_url}))
        body = urlencode({"id": payment["id"]})
        result = JobDriver(runtime).run("gateways.mollie.webhook", {"connection": CONN, "webhook": delivery(body)})
    assert result["data"]["status"] == "paid"
    (event,) = published(runtime)
    assert Decimal(event["data"]["amount"]) == Decimal("9.99")


def test_mapping_state_key_normalises_amounts() -> None:
    body = {
        "resource": "payment",
        "id": "tr_x1",
        "status": "paid",
        "amount": {"value": "10.00", "currency": "EUR"},
        "amountRefunded": {"value": "2.5", "currency": "EUR"},
    }
    assert m.parse_payment(body).state == "paid:2.50:0.00"
