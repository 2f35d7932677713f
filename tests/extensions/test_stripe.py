"""Stripe's own quirks; the shared gateway contract suite covers pay, settle, replay, forge and stale."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import fakeredis
import pytest
from cryptography.fernet import Fernet

from extensions import get_extension
from extensions.errors import Conflict, InvalidConfig, InvalidPayload
from extensions.gateways.stripe import Stripe
from extensions.gateways.stripe import mapping as m
from tests.conftest import RESULT_KEY, JobDriver, make_settings
from tests.fakes.stripe import FakeStripe
from worker.profiles import Profiles
from worker.runtime import Runtime

SECRET_KEY = "sk_test_quirksecret00000000000000"
WEBHOOK_SECRET = "whsec_quirkwebhooksecret000000000"
PUBLISHABLE_KEY = "pk_test_quirkpublishable000000000"
GW = "gw"
USER = {"id": 42, "email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"}


def config(base_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "stripe_secret_key": SECRET_KEY,
        "stripe_publishable_key": PUBLISHABLE_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "api_base": base_url,
        **overrides,
    }


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    stripe = FakeStripe(SECRET_KEY, WEBHOOK_SECRET, PUBLISHABLE_KEY)
    with stripe.serve():
        yield stripe


def bind(runtime: Runtime, fake: FakeStripe, **overrides: Any) -> None:
    runtime.bind(GW, get_extension("gateways", "stripe", config(fake.base_url, **overrides)))


@pytest.fixture
def gw(runtime: Runtime, fake: FakeStripe) -> FakeStripe:
    bind(runtime, fake)
    return fake


def invoice(invoice_id: int = 7, total: str = "12.50", currency: str = "EUR", **user: Any) -> dict[str, Any]:
    return {"id": invoice_id, "number": f"INV-{invoice_id}", "total": total, "currency": currency, "user": USER | user}


def pay(driver: JobDriver, task_id: str = "pay", **kwargs: Any) -> dict[str, Any]:
    payload = {"connection": GW, "invoice": invoice(**kwargs), "return_url": "https://billing.example.com/i/7"}
    return driver.run("gateways.stripe.pay", payload, task_id=task_id)["data"]


def run(driver: JobDriver, op: str, task_id: str = "job", **kwargs: Any) -> dict[str, Any]:
    return driver.run(f"gateways.stripe.{op}", {"connection": GW, **kwargs}, task_id=task_id)


def fail(driver: JobDriver, op: str, task_id: str = "job-f", **kwargs: Any) -> dict[str, Any]:
    return driver.fail(f"gateways.stripe.{op}", {"connection": GW, **kwargs}, task_id=task_id)


def hook(driver: JobDriver, delivery: dict[str, Any], task_id: str = "hook") -> dict[str, Any]:
    return run(driver, "webhook", task_id, webhook=delivery)


def hook_fails(driver: JobDriver, delivery: dict[str, Any], task_id: str = "hook-f") -> dict[str, Any]:
    return fail(driver, "webhook", task_id, webhook=delivery)


def published(runtime: Runtime, prefix: str = "") -> list[dict[str, Any]]:
    return [e for e in runtime.events.read() if e["type"].startswith(prefix) and e["type"] != "job.failed"]


def paid_intent(fake: FakeStripe, driver: JobDriver, runtime: Runtime, **kwargs: Any) -> str:
    """Pay an invoice and book its success through the webhook; the PaymentIntent id."""
    intent_id = str(pay(driver, **kwargs)["transaction_id"])
    hook(driver, fake.deliver(fake.settle(intent_id, "succeeded")), task_id=f"settle-{intent_id}")
    return intent_id


# --- webhook verification ----------------------------------------------------------------------------


def test_signature_from_another_secret_is_rejected(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    intent = pay(driver)["transaction_id"]
    error = hook_fails(driver, gw.deliver(gw.settle(intent, "succeeded"), secret="whsec_someoneelse000000000"))
    assert error["code"] == "signature_invalid"
    assert error["retryable"] is False
    assert published(runtime, "payment.") == []


def test_a_body_altered_by_one_byte_is_rejected(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    intent = pay(driver)["transaction_id"]
    delivery = gw.deliver(gw.settle(intent, "succeeded"))
    delivery["body"] = delivery["body"].replace('"amount": 1250', '"amount": 1251', 1)
    assert hook_fails(driver, delivery)["code"] == "signature_invalid"
    assert published(runtime, "payment.") == []


@pytest.mark.parametrize(
    "header",
    ["", "t=1700000000", "v1=abc", "t=notanumber,v1=abc", "t={t},v0={sig}", "t={t},v1=", "garbage"],
    ids=["empty", "no-v1", "no-t", "bad-t", "only-v0", "empty-v1", "garbage"],
)
def test_incomplete_signature_headers_are_rejected(
    gw: FakeStripe, driver: JobDriver, runtime: Runtime, header: str
) -> None:
    event = gw.event("payment_intent.succeeded", {"id": "pi_x", "amount": 100, "currency": "eur", "metadata": {}})
    body = json.dumps(event)
    t = int(time.time())
    sig = gw.signature(WEBHOOK_SECRET, t, body)
    assert hook_fails(driver, gw.deliver(body, header=header.format(t=t, sig=sig)))["code"] == "signature_invalid"


def test_any_matching_v1_passes_during_secret_rotation(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    intent = pay(driver)["transaction_id"]
    body = json.dumps(gw.settle(intent, "succeeded"))
    t = int(time.time())
    old = gw.signature("whsec_previoussecret0000000000000", t, body)
    header = f"t={t},v1={old},v1={gw.signature(WEBHOOK_SECRET, t, body)},v0=deadbeef"
    assert hook(driver, gw.deliver(body, header=header))["data"]["handled"] is True
    assert [e["type"] for e in published(runtime)] == ["payment.succeeded"]


def test_a_stamp_older_than_300s_at_receipt_is_stale(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    intent = pay(driver)["transaction_id"]
    event = gw.settle(intent, "succeeded")
    t = int(time.time()) - 301
    assert hook_fails(driver, gw.deliver(event, timestamp=t))["code"] == "signature_invalid"
    assert published(runtime, "payment.") == []


def test_tolerance_is_measured_from_receipt_not_from_when_the_job_runs(
    gw: FakeStripe, driver: JobDriver, runtime: Runtime
) -> None:
    intent = pay(driver)["transaction_id"]
    event = gw.settle(intent, "succeeded")
    t = int(time.time()) - 3600  # delivered an hour ago and queued since
    received = datetime.fromtimestamp(t + 5, UTC)
    assert hook(driver, gw.deliver(event, timestamp=t, received_at=received))["data"]["handled"] is True
    # ...but a receipt time far after the stamp is a replayed capture.
    late = gw.deliver(gw.settle(intent, "succeeded"), timestamp=t, received_at=received + timedelta(seconds=300))
    assert hook_fails(driver, late)["code"] == "signature_invalid"


def test_no_webhook_secret_configured_verifies_nothing(fake: FakeStripe, runtime: Runtime, driver: JobDriver) -> None:
    bind(runtime, fake, stripe_webhook_secret="")
    intent = pay(driver)["transaction_id"]
    assert hook_fails(driver, fake.deliver(fake.settle(intent, "succeeded")))["code"] == "signature_invalid"


def test_a_redelivery_re_signed_later_is_a_replay(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    intent = pay(driver)["transaction_id"]
    delivery = gw.deliver(gw.settle(intent, "succeeded"))
    first = hook(driver, delivery, "h1")
    again = hook(driver, gw.resign(delivery, timestamp=int(time.time()) + 60), "h2")
    assert again["replayed"] is True
    assert again["data"]["events"] == first["data"]["events"]
    assert len(published(runtime, "payment.")) == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "invalid_payload"),
        ('{"id": "evt_1", "type": "payment_intent.succeeded"}', "invalid_payload"),
        ('{"id": "nope", "type": "x", "data": {"object": {}}}', "invalid_payload"),
        ("[1, 2, 3]", "invalid_payload"),
    ],
    ids=["not-json", "no-data", "not-an-event-id", "array"],
)
def test_signed_garbage_is_invalid_payload(
    gw: FakeStripe, driver: JobDriver, runtime: Runtime, body: str, code: str
) -> None:
    assert hook_fails(driver, gw.deliver(body))["code"] == code
    assert runtime.dead_letters.list()
    assert published(runtime, "payment.") == []


def test_a_float_amount_is_refused_not_rounded(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    obj = {"id": "pi_float", "amount": 12.5, "currency": "eur", "metadata": {"invoice_id": "7"}}
    error = hook_fails(driver, gw.deliver(gw.event("payment_intent.succeeded", obj)))
    assert error["code"] == "invalid_payload"
    assert published(runtime, "payment.") == []


# --- event mapping -----------------------------------------------------------------------------------


def test_processing_then_success_then_a_late_failure(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    intent = pay(driver)["transaction_id"]
    processing = gw.deliver(gw.settle(intent, "processing"))
    succeeded = gw.deliver(gw.settle(intent, "succeeded"))
    failed = gw.deliver(gw.event("payment_intent.payment_failed", gw.intents[intent]))
    hook(driver, processing, "h1")
    hook(driver, succeeded, "h2")
    late = hook(driver, failed, "h3")
    assert [e["type"] for e in published(runtime)] == ["payment.processing", "payment.succeeded"]
    assert [e.get("stale") for e in late["data"]["events"]] == [True]
    assert {e["data"]["transaction_id"] for e in published(runtime)} == {intent}


def test_a_failed_payment_is_reported(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    intent = pay(driver, total="30.00")["transaction_id"]
    hook(driver, gw.deliver(gw.settle(intent, "failed")))
    (event,) = published(runtime)
    assert event["type"] == "payment.failed"
    assert (event["data"]["amount"], event["data"]["invoice_id"]) == ("30.00", "7")


def test_another_installations_event_is_acknowledged_with_no_effect(
    gw: FakeStripe, driver: JobDriver, runtime: Runtime
) -> None:
    intent = pay(driver)["transaction_id"]
    gw.intents[intent]["metadata"][m.INSTALLATION_KEY] = "other-install"
    result = hook(driver, gw.deliver(gw.settle(intent, "succeeded")))
    assert result["data"]["handled"] is False
    assert "another installation" in result["data"]["ignored"]
    assert published(runtime) == []


def test_pay_names_this_installation_and_an_unnamed_event_counts_as_ours(
    gw: FakeStripe, driver: JobDriver, runtime: Runtime
) -> None:
    intent = pay(driver)["transaction_id"]
    assert gw.intents[intent]["metadata"] == {"invoice_id": "7", m.INSTALLATION_KEY: "default"}
    del gw.intents[intent]["metadata"][m.INSTALLATION_KEY]  # made by the PHP extension, say
    hook(driver, gw.deliver(gw.settle(intent, "succeeded")))
    assert [e["data"]["invoice_id"] for e in published(runtime)] == ["7"]


def test_events_that_are_not_paymenters_have_no_effect(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    foreign_pi = {"id": "pi_shop", "amount": 500, "currency": "usd", "metadata": {}}
    other_setup = {"id": "seti_x", "status": "succeeded", "metadata": {}}
    deliveries = [
        gw.deliver(gw.event("payment_intent.succeeded", foreign_pi)),
        gw.deliver(gw.event("customer.created", {"id": "cus_x", "metadata": {}})),
        gw.deliver(gw.event("setup_intent.succeeded", other_setup)),  # PHP crashed on these
    ]
    for n, delivery in enumerate(deliveries):
        assert hook(driver, delivery, f"h{n}")["data"]["handled"] is False
    assert published(runtime) == []


def test_charge_updated_reports_the_fee_from_the_balance_transaction(
    gw: FakeStripe, driver: JobDriver, runtime: Runtime
) -> None:
    intent = paid_intent(gw, driver, runtime, total="100.00")
    hook(driver, gw.deliver(gw.charge_updated_event(intent)), "fee")
    (fee,) = published(runtime, "payment.fee")
    assert fee["data"]["transaction_id"] == intent
    assert (fee["data"]["fee"], fee["data"]["currency"]) == ("3.20", "EUR")  # 2.9 % + 0.30
    assert fee["data"]["invoice_id"] == "7"


def test_charge_updated_before_settlement_has_no_fee_yet(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    intent = paid_intent(gw, driver, runtime)
    event = gw.charge_updated_event(intent)
    event["data"]["object"]["balance_transaction"] = None
    assert hook(driver, gw.deliver(event), "fee")["data"]["handled"] is False
    assert published(runtime, "payment.fee") == []


# --- money -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "currency", "minor", "reported"),
    [
        ("1500", "JPY", 1500, "1500"),
        ("2000", "MGA", 2000, "2000.00"),  # zero-decimal for Stripe, two decimals in ISO 4217
        ("5.124", "KWD", 5120, "5.120"),  # three-decimal: Stripe wants the last digit 0
        ("5.125", "KWD", 5130, "5.130"),
        ("1234.56", "ISK", 123500, "1235"),  # two decimals in the API, whole krona only
        ("19.995", "EUR", 2000, "20.00"),
    ],
)
def test_amounts_follow_stripes_currency_rules(
    gw: FakeStripe, driver: JobDriver, runtime: Runtime, total: str, currency: str, minor: int, reported: str
) -> None:
    intent = pay(driver, total=total, currency=currency)["transaction_id"]
    assert (gw.intents[intent]["amount"], gw.intents[intent]["currency"]) == (minor, currency.lower())
    hook(driver, gw.deliver(gw.settle(intent, "succeeded")))
    (event,) = published(runtime)
    assert (event["data"]["amount"], event["data"]["currency"]) == (reported, currency)


def test_money_helpers_are_exact() -> None:
    assert m.to_stripe_minor(Decimal("0.005"), "usd") == 1
    assert m.from_stripe_minor(1, "BHD") == Decimal("0.001")
    assert m.from_stripe_minor(99, "JPY") == Decimal(99)
    with pytest.raises(InvalidPayload):
        m.from_stripe_minor(True, "EUR")


def test_a_total_that_rounds_to_nothing_is_refused(gw: FakeStripe, driver: JobDriver) -> None:
    error = fail(driver, "pay", invoice=invoice(total="0.001"), return_url="https://billing.example.com/i/7")
    assert error["code"] == "invalid_payload"
    assert gw.intents == {}


# --- pay: reuse and idempotency keys -----------------------------------------------------------------


def test_pay_returns_stripe_js_values_sealed(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    data = pay(driver)
    intent = gw.intents[data["transaction_id"]]
    assert runtime.sealer.unseal(data["sealed"]["client_secret"]) == intent["client_secret"]
    assert data["publishable_key"] == PUBLISHABLE_KEY  # public by design
    assert "client_secret" not in data  # it lets its holder confirm the payment: only sealed
    assert intent["description"] == "Payment for Invoice #INV-7"
    assert intent["customer"] == data["customer_id"]
    assert gw.customers[data["customer_id"]]["metadata"] == {"user_id": "42", m.INSTALLATION_KEY: "default"}


def test_a_changed_amount_makes_a_new_intent_and_cancels_the_old_one(
    gw: FakeStripe, driver: JobDriver, runtime: Runtime
) -> None:
    first = pay(driver, task_id="p1")["transaction_id"]
    second = pay(driver, task_id="p2", total="10.00")["transaction_id"]
    third = pay(driver, task_id="p3", total="10.00", currency="USD")["transaction_id"]
    assert len({first, second, third}) == 3
    assert [gw.intents[i]["status"] for i in (first, second, third)] == [
        "canceled",
        "canceled",
        "requires_payment_method",
    ]
    assert pay(driver, task_id="p4", total="10.00", currency="USD")["transaction_id"] == third


def test_a_payment_under_way_is_not_made_again(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    first = pay(driver, task_id="p1")["transaction_id"]
    gw.settle(first, "succeeded")  # the webhook has not arrived yet
    again = pay(driver, task_id="p2")
    assert (again["transaction_id"], again["status"]) == (first, "succeeded")
    assert gw.count("POST", "/v1/payment_intents") == 1


def test_an_intent_cancelled_at_stripe_is_replaced(gw: FakeStripe, driver: JobDriver) -> None:
    first = pay(driver, task_id="p1")["transaction_id"]
    gw.intents[first]["status"] = "canceled"
    assert pay(driver, task_id="p2")["transaction_id"] != first


def test_a_lost_answer_is_retried_with_the_same_key_and_makes_one_intent(
    gw: FakeStripe, driver: JobDriver, runtime: Runtime
) -> None:
    gw.drop_response_next(r"POST /v1/payment_intents$")
    data = pay(driver)
    assert len(gw.intents) == 1
    assert data["transaction_id"] in gw.intents
    keys = gw.keys_for("/v1/payment_intents")
    assert len(keys) == 2
    assert len(set(keys)) == 1
    assert keys[0] == "task:pay:pi:7:1250:EUR"


def test_transient_errors_retry_and_permanent_ones_do_not(gw: FakeStripe, driver: JobDriver) -> None:
    gw.error_next(500, match=r"POST /v1/payment_intents$")
    gw.error_next(429, "invalid_request_error", "rate_limit", match=r"POST /v1/payment_intents$")
    gw.error_next(409, "idempotency_error", match=r"POST /v1/payment_intents$")
    assert pay(driver, task_id="p1")["transaction_id"]
    assert len(driver.reschedules) == 3
    gw.error_next(500, match=r"POST /v1/payment_intents$", headers={"Stripe-Should-Retry": "false"})
    error = fail(driver, "pay", "p2", invoice=invoice(8), return_url="https://billing.example.com/i/8")
    assert (error["code"], error["retryable"]) == ("provider_rejected", False)
    assert len(driver.reschedules) == 3


def test_a_wrong_key_is_auth_failed(fake: FakeStripe, runtime: Runtime, driver: JobDriver) -> None:
    bind(runtime, fake, stripe_secret_key="sk_test_wrongwrongwrong000000000")
    error = fail(driver, "pay", invoice=invoice(), return_url="https://billing.example.com/i/7")
    assert error["code"] == "auth_failed"
    assert "sk_test_wrong" not in json.dumps(error)


def test_a_key_reused_with_other_parameters_is_a_conflict(gw: FakeStripe) -> None:
    ext = get_extension("gateways", "stripe", config(gw.base_url))
    assert isinstance(ext, Stripe)
    ext.client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "k1"})
    with pytest.raises(Conflict):
        ext._call(ext.client.v1.customers.create, params={"email": "b@example.com"}, key="k1")


def test_a_known_customer_is_reused_and_a_deleted_one_replaced(gw: FakeStripe, driver: JobDriver) -> None:
    known = gw.add_customer()
    data = pay(driver, task_id="p1", properties={"stripe_id": known["id"]})
    assert data["customer_id"] == known["id"]
    assert gw.count("POST", "/v1/customers") == 0
    known["deleted"] = True
    replaced = pay(driver, invoice_id=8, task_id="p2", properties={"stripe_id": known["id"]})["customer_id"]
    assert replaced != known["id"]
    assert replaced in gw.customers


def test_full_customers_carry_address_phone_and_company(fake: FakeStripe, runtime: Runtime, driver: JobDriver) -> None:
    bind(runtime, fake, stripe_create_customers="1")
    props = {"address": "1 Main St", "address2": "", "city": "Springfield", "zip": "12345", "country": "US"}
    customer_id = pay(driver, properties={**props, "phone": "+1555", "company_name": "ACME"})["customer_id"]
    customer = fake.customers[customer_id]
    assert customer["address"] == {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
    assert (customer["phone"], customer["description"]) == ("+1555", "ACME")


def test_a_failing_customer_does_not_stop_the_payment(gw: FakeStripe, driver: JobDriver) -> None:
    gw.error_next(400, "invalid_request_error", match=r"POST /v1/customers$")
    data = pay(driver)
    assert data["customer_id"] is None
    assert gw.intents[data["transaction_id"]]["customer"] is None


# --- refunds -----------------------------------------------------------------------------------------


def test_partial_then_full_refund_and_their_webhooks(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    intent = paid_intent(gw, driver, runtime, total="1500", currency="JPY")
    part = run(driver, "refund", "r1", transaction_id=intent, amount="500", currency="JPY", reason="duplicate")
    assert (part["data"]["amount"], part["data"]["currency"]) == ("500", "JPY")
    rest = run(driver, "refund", "r2", transaction_id=intent)  # the rest, currency not needed
    assert rest["data"]["amount"] == "1000"
    assert gw.refunds[part["data"]["refund_id"]]["reason"] == "duplicate"
    assert published(runtime, "payment.refunded") == []  # booked from the webhook only
    hook(driver, gw.deliver(gw.refunded_event(part["data"]["refund_id"])), "hr1")
    hook(driver, gw.deliver(gw.refunded_event(rest["data"]["refund_id"])), "hr2")
    refunds = [e["data"] for e in published(runtime, "payment.refunded")]
    assert [(r["amount"], r["refunded_total"], r["refund_complete"]) for r in refunds] == [
        ("500", "500", False),
        ("1000", "1500", True),
    ]
    assert {r["transaction_id"] for r in refunds} == {intent}


def test_a_refund_amount_without_currency_reads_the_intents_currency(
    gw: FakeStripe, driver: JobDriver, runtime: Runtime
) -> None:
    intent = paid_intent(gw, driver, runtime, total="5.120", currency="KWD")
    refund = run(driver, "refund", transaction_id=intent, amount="1.5")
    assert gw.refunds[refund["data"]["refund_id"]]["amount"] == 1500


def test_a_refund_retried_after_a_lost_answer_refunds_once(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    intent = paid_intent(gw, driver, runtime, total="20.00")
    gw.drop_response_next(r"POST /v1/refunds$")
    run(driver, "refund", "r1", transaction_id=intent, amount="5.00", currency="EUR")
    assert len(gw.refunds) == 1
    keys = gw.keys_for("/v1/refunds")
    assert len(keys) == 2
    assert keys[0] == keys[1] == f"task:r1:refund:{intent}:500"


def test_refunding_more_than_is_left_is_rejected(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    intent = paid_intent(gw, driver, runtime, total="5.00")
    error = fail(driver, "refund", transaction_id=intent, amount="6.00", currency="EUR")
    assert (error["code"], error["retryable"]) == ("provider_rejected", False)
    assert gw.refunds == {}


# --- billing agreements and off-session charges ------------------------------------------------------


def agreement(driver: JobDriver, gw: FakeStripe, runtime: Runtime, type_: str = "card", **details: Any) -> str:
    """Create an agreement and complete it through the webhook; the agreement's external reference."""
    data = run(driver, "create_billing_agreement", "ba", user=USER, return_url="https://b.example.com/x")["data"]
    hook(driver, gw.deliver(gw.complete_setup(data["setup_intent_id"], type_, **details)), "ba-hook")
    (created,) = published(runtime, "billing_agreement.created")
    return str(created["data"]["external_reference"])


def test_a_setup_intent_becomes_a_billing_agreement(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    result = run(driver, "create_billing_agreement", user=USER, return_url="https://b.example.com/x")["data"]
    setup = gw.setup_intents[result["setup_intent_id"]]
    assert setup["metadata"] == {"user_id": "42", "is_billing_agreement": "1", m.INSTALLATION_KEY: "default"}
    assert setup["usage"] == "off_session"
    assert setup["customer"] == result["customer_id"]
    assert runtime.sealer.unseal(result["sealed"]["client_secret"]) == setup["client_secret"]
    hook(driver, gw.deliver(gw.complete_setup(setup["id"], "card", brand="amex", last4="0005", exp_month=2)))
    (created,) = published(runtime, "billing_agreement.created")
    data = created["data"]
    assert data["external_reference"] == setup["payment_method"]
    assert (data["name"], data["type"], data["expiry"]) == ("American Express **** 0005", "amex", "2028-02-29")
    assert (data["user_id"], data["customer_id"]) == ("42", setup["customer"])


def test_an_ideal_agreement_keeps_the_generated_sepa_mandate(
    gw: FakeStripe, driver: JobDriver, runtime: Runtime
) -> None:
    reference = agreement(driver, gw, runtime, "ideal", bank_code="INGB")
    method = gw.methods[reference]
    assert method["type"] == "sepa_debit"
    (created,) = published(runtime, "billing_agreement.created")
    assert (created["data"]["name"], created["data"]["expiry"]) == ("SEPA Direct Debit **** 5264", None)


@pytest.mark.parametrize(
    ("method", "name", "type_"),
    [
        (
            {"type": "card", "card": {"brand": "cartes_bancaires", "last4": "1"}},
            "Cartes_bancaires **** 1",
            "cartes_bancaires",
        ),
        (
            {"type": "us_bank_account", "us_bank_account": {"last4": "6789"}},
            "US Bank Account **** 6789",
            "us_bank_account",
        ),
        ({"type": "bancontact", "bancontact": {"bank_code": "VAPE"}}, "Bancontact **** VAPE", "bancontact"),
        ({"type": "sofort", "sofort": {"country": "de"}}, "SOFORT **** DE", "sofort"),
        ({"type": "amazon_pay", "amazon_pay": {}}, "Amazon pay", "amazon_pay"),
    ],
)
def test_agreement_names_follow_paymenter(method: dict[str, Any], name: str, type_: str) -> None:
    described = m.describe_method(method)
    assert (described["name"], described["type"]) == (name, type_)


def test_charge_books_through_the_intent_once(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    reference = agreement(driver, gw, runtime)
    request = {"invoice": invoice(9, "25.00"), "agreement": {"id": 3, "external_reference": reference}}
    result = run(driver, "charge", "c1", **request)["data"]
    intent = gw.intents[result["transaction_id"]]
    assert intent["status"] == "succeeded"
    assert intent["_params"]["off_session"] == "true"
    assert intent["_params"]["confirm"] == "true"
    assert intent["metadata"]["billing_agreement_id"] == "3"
    assert intent["_params"]["automatic_payment_methods"] == {"enabled": "true", "allow_redirects": "never"}
    assert gw.keys_for("/v1/payment_intents") == ["task:c1:charge:9:3:2500:EUR"]
    hook(driver, gw.deliver(gw.event("payment_intent.succeeded", intent)), "late")
    succeeded = published(runtime, "payment.succeeded")
    assert [(e["data"]["invoice_id"], e["data"]["amount"]) for e in succeeded] == [("9", "25.00")]


def test_a_declined_charge_fails_with_the_decline_code(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    reference = agreement(driver, gw, runtime)
    gw.decline_next("insufficient_funds")
    request = {"invoice": invoice(9), "agreement": {"id": 3, "external_reference": reference}}
    error = fail(driver, "charge", **request)
    assert (error["code"], error["retryable"], error["provider_status"]) == ("provider_rejected", False, 402)
    assert "card_declined/insufficient_funds" in error["message"]
    assert driver.reschedules == []
    assert published(runtime, "payment.") == []


def test_a_sepa_charge_is_processing(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    reference = agreement(driver, gw, runtime, "sofort", country="DE")
    request = {"invoice": invoice(9), "agreement": {"id": 3, "external_reference": reference}}
    assert run(driver, "charge", **request)["data"]["status"] == "processing"
    assert [e["type"] for e in published(runtime, "payment.")] == ["payment.processing"]


def test_charging_a_method_without_customer_is_refused(gw: FakeStripe, driver: JobDriver) -> None:
    loose = gw.add_payment_method(None)
    request = {"invoice": invoice(9), "agreement": {"id": 3, "external_reference": loose["id"]}}
    error = fail(driver, "charge", **request)
    assert error["code"] == "provider_rejected"
    assert "customer not found" in error["message"]
    assert gw.intents == {}


def test_every_post_carries_an_idempotency_key(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    pay(driver, task_id="p1")
    pay(driver, task_id="p2", total="3.00")  # cancels the first intent
    reference = agreement(driver, gw, runtime)
    charged = run(driver, "charge", "c1", invoice=invoice(9), agreement={"id": 3, "external_reference": reference})
    run(driver, "refund", "r1", transaction_id=charged["data"]["transaction_id"])
    run(driver, "cancel_billing_agreement", "x1", agreement={"id": 3, "external_reference": reference})
    posts = {path for method, path in gw.calls if method == "POST"}
    assert len(posts) == 6
    assert gw.count("POST") == len(gw.idempotency_keys)
    assert all(key.startswith("task:") for _, key in gw.idempotency_keys)


def test_cancelling_an_agreement_detaches_and_is_repeatable(
    gw: FakeStripe, driver: JobDriver, runtime: Runtime
) -> None:
    method = gw.add_payment_method(gw.add_customer()["id"])
    request = {"agreement": {"id": 3, "external_reference": method["id"]}}
    assert run(driver, "cancel_billing_agreement", "x1", **request)["data"]["detached"] is True
    assert gw.methods[method["id"]]["customer"] is None
    assert run(driver, "cancel_billing_agreement", "x2", **request)["data"]["detached"] is False
    events = published(runtime, "billing_agreement.cancelled")
    assert [e["data"]["external_reference"] for e in events] == [method["id"]] * 2


def test_cancel_subscription(gw: FakeStripe, driver: JobDriver, runtime: Runtime) -> None:
    subscription = gw.add_subscription(gw.add_customer()["id"])
    result = run(driver, "cancel_subscription", subscription_id=subscription["id"], service_id=5)
    assert result["data"]["status"] == "canceled"
    (event,) = published(runtime, "subscription.cancelled")
    assert (event["data"]["subscription_id"], event["data"]["service_id"]) == (subscription["id"], "5")
    assert fail(driver, "cancel_subscription", subscription_id="sub_missing")["code"] == "not_found"


# --- webhook endpoint registration -------------------------------------------------------------------

PUBLIC_URL = "https://worker.example.com/"
HOOK_URL = "https://worker.example.com/webhooks/stripe/gw"
HANDLED = [
    "charge.refunded",
    "charge.updated",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.succeeded",
    "setup_intent.succeeded",
]


@pytest.fixture
def public(fake: FakeStripe, redis_client: fakeredis.FakeRedis) -> JobDriver:
    """A driver whose runtime knows the worker's public URL, as the webhook receiver is reached."""
    runtime = Runtime(make_settings(public_url=PUBLIC_URL), Profiles(), redis_client)
    bind(runtime, fake)
    return JobDriver(runtime)


def register(driver: JobDriver, task_id: str = "reg", **kwargs: Any) -> dict[str, Any]:
    return run(driver, "register_webhook", task_id, **kwargs)["data"]


def test_registering_subscribes_our_url_to_the_handled_events(fake: FakeStripe, public: JobDriver) -> None:
    data = register(public)
    (endpoint,) = fake.webhook_endpoints.values()
    assert (endpoint["url"], endpoint["enabled_events"]) == (HOOK_URL, HANDLED)
    assert (endpoint["description"], endpoint["api_version"]) == ("Paymenter Stripe Webhook", m.API_VERSION)
    assert (data["endpoint_id"], data["url"], data["enabled_events"]) == (endpoint["id"], HOOK_URL, HANDLED)
    assert (data["replaced"], data["profile_field"]) == ([], "stripe_webhook_secret")
    assert "'gw'" in data["next_step"]
    assert public.runtime.sealer.unseal(data["sealed"]["webhook_secret"]) == endpoint["_secret"]
    # The subscription is the webhook's own dispatch table, not a second list.
    ext = get_extension("gateways", "stripe", config(fake.base_url))
    assert isinstance(ext, Stripe)
    assert sorted(ext._handlers()) == HANDLED


def test_a_stale_endpoint_at_our_url_is_replaced_and_other_urls_are_kept(fake: FakeStripe, public: JobDriver) -> None:
    stale = fake.add_webhook_endpoint(HOOK_URL)  # the oldest: on the second page, newest first
    others = [fake.add_webhook_endpoint(f"https://shop{i}.example.com/stripe") for i in range(120)]
    data = register(public)
    assert data["replaced"] == [stale["id"]]
    assert [e["id"] for e in fake.endpoints_at(HOOK_URL)] == [data["endpoint_id"]]
    assert set(fake.webhook_endpoints) == {data["endpoint_id"], *(e["id"] for e in others)}
    assert fake.count("GET", "/v1/webhook_endpoints") == 2


def test_a_lost_create_answer_is_retried_into_one_endpoint(fake: FakeStripe, public: JobDriver) -> None:
    stale = fake.add_webhook_endpoint(HOOK_URL)
    fake.drop_response_next(r"POST /v1/webhook_endpoints$")
    data = register(public)
    (endpoint,) = fake.endpoints_at(HOOK_URL)
    assert stale["id"] not in fake.webhook_endpoints
    assert endpoint["id"] == data["endpoint_id"]
    assert public.runtime.sealer.unseal(data["sealed"]["webhook_secret"]) == endpoint["_secret"]
    assert fake.keys_for("/v1/webhook_endpoints") == [f"task:reg:we:{HOOK_URL}"] * 2
    assert len(public.retries) == 1
    again = register(public, "reg-2")  # a later registration rotates to a fresh endpoint
    assert [e["id"] for e in fake.endpoints_at(HOOK_URL)] == [again["endpoint_id"]]
    assert again["replaced"] == [data["endpoint_id"]]


def test_a_replayed_endpoint_deleted_since_is_a_conflict(fake: FakeStripe, public: JobDriver) -> None:
    stale = fake.add_webhook_endpoint(HOOK_URL)
    fake.error_next(400, "invalid_request_error", match=r"DELETE /v1/webhook_endpoints/")
    assert fail(public, "register_webhook", "reg")["code"] == "provider_rejected"
    made = next(e for e in fake.endpoints_at(HOOK_URL) if e["id"] != stale["id"])
    del fake.webhook_endpoints[made["id"]]  # removed in the Dashboard before the job is run again
    error = fail(public, "register_webhook", "reg")
    assert (error["code"], error["retryable"]) == ("conflict", False)
    assert [e["id"] for e in fake.endpoints_at(HOOK_URL)] == [stale["id"]]  # nothing deleted on a dead replay


def test_the_webhook_url_comes_from_the_payload_without_a_public_url(
    fake: FakeStripe, gw: FakeStripe, driver: JobDriver
) -> None:
    error = fail(driver, "register_webhook")
    assert error["code"] == "invalid_payload"
    assert "webhook_url" in error["message"]
    assert fake.webhook_endpoints == {}
    data = register(driver, webhook_url="https://hooks.example.com/stripe")
    assert [e["id"] for e in fake.endpoints_at("https://hooks.example.com/stripe")] == [data["endpoint_id"]]


def test_endpoint_secrets_and_the_api_key_never_appear_in_plain(
    fake: FakeStripe, public: JobDriver, captured_logs: pytest.LogCaptureFixture
) -> None:
    outputs = [run(public, "register_webhook", "reg-1")]
    fake.error_next(400, "invalid_request_error", match=r"DELETE /v1/webhook_endpoints/")
    error = fail(public, "register_webhook", "reg-2")  # fails after Stripe made (and answered) its endpoint
    assert error["code"] == "provider_rejected"
    assert len(fake.endpoints_at(HOOK_URL)) == 2
    redis = public.runtime.redis
    read: dict[str, Any] = {
        "string": redis.get,
        "hash": redis.hgetall,
        "stream": redis.xrange,
        "list": lambda k: redis.lrange(k, 0, -1),
        "set": redis.smembers,
        "zset": lambda k: redis.zrange(k, 0, -1),
    }
    stored = [repr(read[redis.type(key).decode()](key)) for key in redis.scan_iter("*")]
    haystack = "\n".join(stored) + captured_logs.text + json.dumps(outputs) + json.dumps(error)
    secrets = [e["_secret"] for e in fake.webhook_endpoints.values()]
    for secret in [SECRET_KEY, *secrets]:
        assert secret not in haystack
    sealed = outputs[0]["data"]["sealed"]["webhook_secret"]
    assert Fernet(RESULT_KEY).decrypt(sealed.encode()).decode() in secrets


# --- config ------------------------------------------------------------------------------------------


def test_config_uses_paymenters_names_and_parses_checkboxes() -> None:
    names = [f["name"] for f in Stripe.get_config()]
    assert names[:4] == [
        "stripe_secret_key",
        "stripe_publishable_key",
        "stripe_create_customers",
        "stripe_webhook_secret",
    ]
    parsed = Stripe.parse_config(config("https://api.stripe.com/v1/", stripe_create_customers="0"))
    assert parsed.model_dump()["stripe_create_customers"] is False
    assert parsed.model_dump()["api_base"] == "https://api.stripe.com"
    assert Stripe.get_metadata()["name"] == "Stripe Gateway"


@pytest.mark.parametrize("bad", [{"stripe_secret_key": " "}, {"api_base": "ftp://x"}, {"stripe_publishable_key": ""}])
def test_bad_config_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfig):
        Stripe.parse_config(config("https://api.stripe.com", **bad))
