"""PayPal IPN's own quirks; the shared gateway contract suite covers the rest."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import fakeredis
import httpx
import pytest

from extensions import get_extension
from extensions.base import LocalContext
from extensions.errors import InvalidConfig
from extensions.gateways.paypal_ipn import PayPalIPN
from extensions.gateways.paypal_ipn import mapping as m
from extensions.payments import PayRequest, WebhookDelivery
from tests.conftest import JobDriver, make_settings
from tests.fakes.paypal_ipn import PREFIX, FakePayment, FakePayPalIPN
from worker.profiles import Profiles
from worker.runtime import Runtime

EMAIL = "shop@example.com"
CONN = "ipn"
PAY = "gateways.paypal_ipn.pay"
WEBHOOK = "gateways.paypal_ipn.webhook"


@pytest.fixture
def fake() -> FakePayPalIPN:
    return FakePayPalIPN(EMAIL, sandbox=True)


def bind(runtime: Runtime, fake: FakePayPalIPN, **config: Any) -> PayPalIPN:
    ext = get_extension(
        "gateways", "paypal_ipn", {"email": EMAIL, "test_mode": "1", **config}, transport=fake.transport()
    )
    assert isinstance(ext, PayPalIPN)
    runtime.bind(CONN, ext)
    return ext


@pytest.fixture
def ipn(runtime: Runtime, fake: FakePayPalIPN) -> PayPalIPN:
    return bind(runtime, fake)


def pay_kwargs(invoice_id: int = 42, total: str = "19.95", currency: str = "EUR", **extra: Any) -> dict[str, Any]:
    return {
        "connection": CONN,
        "invoice": {
            "id": invoice_id,
            "total": total,
            "currency": currency,
            "user": {"id": 7, "email": "alice@example.com"},
        },
        "return_url": f"https://billing.example.com/invoices/{invoice_id}",
        "webhook_url": "https://hooks.example.com/webhooks/paypal_ipn/ipn",
        **extra,
    }


def pay(driver: JobDriver, task_id: str = "pay", **kwargs: Any) -> dict[str, Any]:
    data: dict[str, Any] = driver.run(PAY, pay_kwargs(**kwargs), task_id=task_id)["data"]
    return data


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def webhook(driver: JobDriver, body: bytes, task_id: str) -> dict[str, Any]:
    return driver.run(WEBHOOK, {"connection": CONN, "webhook": FakePayPalIPN.deliver(body)}, task_id=task_id)


def refused(driver: JobDriver, body: bytes | str, task_id: str = "bad") -> dict[str, Any]:
    delivery = FakePayPalIPN.deliver(body if isinstance(body, bytes) else body.encode())
    return driver.fail(WEBHOOK, {"connection": CONN, "webhook": delivery}, task_id=task_id)


def published(runtime: Runtime) -> list[dict[str, Any]]:
    return [e for e in runtime.events.read() if e["type"].startswith("payment.")]


def paid(fake: FakePayPalIPN, driver: JobDriver, task_id: str = "pay", **kwargs: Any) -> FakePayment:
    return fake.checkout(pay(driver, task_id=task_id, **kwargs)["redirect_url"])


# --- pay ---------------------------------------------------------------------------------------------


def test_pay_builds_a_fully_encoded_checkout_url(runtime: Runtime, fake: FakePayPalIPN, driver: JobDriver) -> None:
    fake.secondary_emails.add("billing+eu@example.com")
    bind(runtime, fake, email="billing+eu@example.com")
    data = pay(driver, cancel_url="https://billing.example.com/invoices/42?cancelled=1&x=y")
    url = data["redirect_url"]
    assert url.startswith("https://www.sandbox.paypal.com/cgi-bin/webscr?cmd=_xclick&")
    assert "business=billing%2Beu%40example.com" in url  # a raw '+' would reach PayPal as a space
    params = query(url)
    assert params["item_name"] == "Invoice #42"
    assert params["item_number"] == "42"
    assert params["custom"] == "pm:default:42"
    assert params["invoice"] == data["transaction_id"]
    assert data["transaction_id"].startswith("pm:default:42:")
    assert (params["amount"], params["currency_code"]) == ("19.95", "EUR")
    assert params["notify_url"] == "https://hooks.example.com/webhooks/paypal_ipn/ipn"
    assert params["return"] == "https://billing.example.com/invoices/42"
    assert params["cancel_return"] == "https://billing.example.com/invoices/42?cancelled=1&x=y"
    assert fake.checkout(url).amount == Decimal("19.95")


def test_live_mode_uses_paypal_hosts(runtime: Runtime, fake: FakePayPalIPN, driver: JobDriver) -> None:
    ext = bind(runtime, fake, test_mode="0")
    assert pay(driver)["redirect_url"].startswith("https://www.paypal.com/cgi-bin/webscr?")
    assert ext.config.verify_url == "https://ipnpb.paypal.com/cgi-bin/webscr"


@pytest.mark.parametrize(
    ("total", "currency", "sent"),
    [
        ("1500", "JPY", "1500"),
        ("1500.00", "HUF", "1500"),  # ISO gives HUF two decimals; PayPal refuses them
        ("99.50", "TWD", "100"),  # rounded half-up once, and the IPN is checked against what was sent
        ("19.995", "EUR", "20.00"),
        ("5", "USD", "5.00"),
    ],
)
def test_amounts_are_written_with_paypal_decimals(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, total: str, currency: str, sent: str
) -> None:
    data = pay(driver, total=total, currency=currency)
    assert query(data["redirect_url"])["amount"] == sent == data["amount"]
    with httpx.Client(transport=fake.transport()) as browser:  # PayPal's checkout page accepts it
        assert browser.get(data["redirect_url"]).status_code == 200


@pytest.mark.parametrize("currency", ["KWD", "BHD", "KRW", "CLP"])
def test_currencies_paypal_does_not_take_are_refused(ipn: PayPalIPN, driver: JobDriver, currency: str) -> None:
    error = driver.fail(PAY, pay_kwargs(total="10.000", currency=currency))
    assert error["code"] == "invalid_payload"
    assert currency in error["message"]


def test_notify_url_defaults_to_the_public_webhook_route(
    fake: FakePayPalIPN, redis_client: fakeredis.FakeRedis
) -> None:
    runtime = Runtime(make_settings(public_url="https://worker.example.com/"), Profiles(), redis_client)
    bind(runtime, fake)
    kwargs = pay_kwargs()
    del kwargs["webhook_url"]
    data = JobDriver(runtime).run(PAY, kwargs)["data"]
    assert query(data["redirect_url"])["notify_url"] == "https://worker.example.com/webhooks/paypal_ipn/ipn"


def test_pay_without_any_notify_url_is_refused(ipn: PayPalIPN, driver: JobDriver) -> None:
    kwargs = pay_kwargs()
    del kwargs["webhook_url"]
    assert driver.fail(PAY, kwargs)["code"] == "invalid_payload"


def test_pay_reuses_the_open_offer_until_amount_currency_or_outcome_changes(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver
) -> None:
    first = pay(driver, task_id="p1")["transaction_id"]
    assert pay(driver, task_id="p2")["transaction_id"] == first
    assert pay(driver, task_id="p3", total="25.00")["transaction_id"] not in (first,)
    assert pay(driver, task_id="p4", currency="USD")["transaction_id"] != first
    offer = pay(driver, task_id="p5")
    assert offer["transaction_id"] not in (first,)  # the 19.95 EUR offer was replaced by others meanwhile
    payment = fake.checkout(offer["redirect_url"])
    webhook(driver, fake.notify(payment, "Pending"), "w-pending")
    assert pay(driver, task_id="p6")["transaction_id"] == offer["transaction_id"]  # an e-check in flight
    webhook(driver, fake.notify(payment, "Completed"), "w-completed")
    assert pay(driver, task_id="p7")["transaction_id"] != offer["transaction_id"]  # paid: not offered again


def test_a_failed_payment_closes_the_offer(ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver) -> None:
    offer = pay(driver, task_id="p1")
    webhook(driver, fake.notify(fake.checkout(offer["redirect_url"]), "Failed"), "w")
    again = pay(driver, task_id="p2")
    assert again["transaction_id"] != offer["transaction_id"]
    assert fake.checkout(again["redirect_url"]).status == "Created"  # a fresh payment, not the failed one


def test_the_offer_id_is_stable_across_retries_of_one_job(fake: FakePayPalIPN) -> None:
    ext = get_extension("gateways", "paypal_ipn", {"email": EMAIL}, transport=fake.transport())
    assert isinstance(ext, PayPalIPN)
    request = PayRequest.model_validate({k: v for k, v in pay_kwargs().items() if k != "connection"})
    # A retry whose first run was lost before its state was written still offers the same id.
    retry_a = ext.pay(request, LocalContext("pay-job-1")).data["transaction_id"]
    retry_b = ext.pay(request, LocalContext("pay-job-1")).data["transaction_id"]
    other = ext.pay(request, LocalContext("pay-job-2")).data["transaction_id"]
    assert retry_a == retry_b != other


# --- verification ------------------------------------------------------------------------------------


def test_the_postback_echoes_the_raw_body_byte_for_byte(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime
) -> None:
    body = fake.notify(paid(fake, driver), "Completed")
    assert b"first_name=J%FCrgen" in body
    assert b"payer_email=j.mueller%2Bshop%40example.de" in body
    result = webhook(driver, body, "w")
    assert fake.postbacks == [PREFIX + body]
    (event,) = published(runtime)
    assert event["type"] == "payment.succeeded"
    assert event["data"]["invoice_id"] == "42"
    assert (event["data"]["amount"], event["data"]["fee"], event["data"]["currency"]) == ("19.95", "1.19", "EUR")
    assert event["data"]["transaction_id"] == result["data"]["txn_id"]


def test_a_utf8_message_is_verified_and_read_in_its_charset(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver
) -> None:
    body = fake.notify(paid(fake, driver), "Completed", charset="UTF-8")
    assert b"first_name=J%C3%BCrgen" in body
    assert m.parse_ipn(body)["first_name"] == "Jürgen"
    assert (
        m.parse_ipn(FakePayPalIPN.encode({"last_name": "Müller", "charset": "windows-1252"}))["last_name"] == "Müller"
    )
    assert webhook(driver, body, "w")["replayed"] is False


def test_raw_bytes_that_are_not_utf8_are_echoed_unchanged() -> None:
    sent = b"first_name=J\xfcrgen&payer_email=a+b%2Bc%40example.com"  # a sender that did not percent-encode
    delivery = WebhookDelivery(body_base64=base64.b64encode(sent).decode())
    assert delivery.raw_body == sent
    assert m.postback("https://ipnpb.paypal.com/cgi-bin/webscr", delivery.raw_body).content == PREFIX + sent


@pytest.mark.parametrize("charset", ["rot13", "no-such-charset", "hex"])
def test_a_charset_that_is_no_text_encoding_falls_back_to_windows_1252(charset: str) -> None:
    assert m.parse_ipn(f"charset={charset}&first_name=J%FCrgen".encode())["first_name"] == "Jürgen"


def test_invalid_is_a_forgery_and_is_not_retried(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime
) -> None:
    genuine = fake.notify(paid(fake, driver), "Completed")
    reencoded = genuine.replace(b"J%FCrgen", b"J%C3%BCrgen")  # what re-encoding the parsed fields would send
    assert refused(driver, reencoded)["code"] == "signature_invalid"
    assert refused(driver, genuine.replace(b"mc_gross=19.95", b"mc_gross=0.01"), "b2")["code"] == "signature_invalid"
    assert published(runtime) == []
    assert driver.retries == []


@pytest.mark.parametrize(
    ("status", "text"), [(500, ""), (503, "Service Unavailable"), (200, ""), (200, "verified"), (200, "<html>")]
)
def test_an_unknown_postback_answer_is_retried(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime, status: int, text: str
) -> None:
    body = fake.notify(paid(fake, driver), "Completed")
    fake.answer_next(status, text)
    assert webhook(driver, body, "w")["replayed"] is False
    assert len(driver.retries) == 1
    assert [e["type"] for e in published(runtime)] == ["payment.succeeded"]


def test_a_lost_postback_is_retried_and_gives_up_with_no_effect(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime
) -> None:
    body = fake.notify(paid(fake, driver), "Completed")
    fake.drop_response_next("POST")
    webhook(driver, body, "w1")
    assert len(driver.retries) == 1
    for _ in range(10):
        fake.answer_next(502, "Bad Gateway")
    error = driver.fail(WEBHOOK, {"connection": CONN, "webhook": FakePayPalIPN.deliver(body)}, task_id="w2")
    assert error["code"] == "provider_unavailable"
    assert len(published(runtime)) == 1


@pytest.mark.parametrize("body", ["garbage without fields", "", '{"txn_id": "1"}'])
def test_a_malformed_body_fails_before_any_postback(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime, body: str
) -> None:
    assert refused(driver, body)["code"] == "invalid_payload"
    assert fake.postbacks == []
    assert runtime.dead_letters.list()


# --- checks after VERIFIED ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"receiver_email": "other@example.com", "business": "other@example.com"}, "receiver_email"),
        ({"test_ipn": None}, "test_ipn"),
        ({"mc_currency": "USD"}, "mc_currency"),
        ({"mc_gross": "19.96"}, "mc_gross"),
    ],
)
def test_a_verified_message_that_does_not_match_has_no_effect(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime, overrides: dict[str, Any], why: str
) -> None:
    body = fake.notify(paid(fake, driver), "Completed", **overrides)
    error = refused(driver, body)
    assert error["code"] == "invalid_payload"
    assert why in error["message"]
    assert published(runtime) == []


def test_a_sandbox_message_is_refused_in_live_mode(runtime: Runtime, fake: FakePayPalIPN, driver: JobDriver) -> None:
    bind(runtime, fake, test_mode="0")
    error = refused(driver, fake.notify(paid(fake, driver), "Completed"))
    assert error["code"] == "invalid_payload"
    assert published(runtime) == []


def test_receiver_matched_by_business_for_a_secondary_address(
    runtime: Runtime, fake: FakePayPalIPN, driver: JobDriver
) -> None:
    fake.secondary_emails.add("Sales@Example.com")
    bind(runtime, fake, email="sales@example.com")
    body = fake.notify(paid(fake, driver), "Completed")
    assert b"receiver_email=shop%40example.com" in body
    webhook(driver, body, "w")
    assert [e["type"] for e in published(runtime)] == ["payment.succeeded"]


def test_a_buyer_who_edits_the_checkout_amount_pays_nothing_off(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime
) -> None:
    url = pay(driver)["redirect_url"].replace("amount=19.95", "amount=0.01")
    error = refused(driver, fake.notify(fake.checkout(url), "Completed"))
    assert error["code"] == "invalid_payload"
    assert published(runtime) == []


def test_an_ipn_for_an_offer_pay_never_made_is_not_found(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime
) -> None:
    payment = paid(fake, driver)
    forged_offer = fake.notify(payment, "Completed", invoice="pm:default:42:000000000000")
    assert refused(driver, forged_offer)["code"] == "not_found"
    legacy = fake.notify(payment, "Completed", invoice=None, custom=None)  # a PHP-era checkout: item_number only
    assert refused(driver, legacy, "b2")["code"] == "not_found"
    assert published(runtime) == []


def test_another_installations_payment_is_acknowledged_with_no_effect(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime
) -> None:
    payment = paid(fake, driver)
    body = fake.notify(payment, "Completed", custom="pm:shop-b:42", invoice="pm:shop-b:42:0123456789ab")
    result = webhook(driver, body, "w")
    assert result["replayed"] is False
    assert result["data"]["ignored"] == "another installation's payment"
    assert published(runtime) == []


@pytest.mark.parametrize("status", ["Canceled_Reversal", "Voided", "Expired", "Processed"])
def test_statuses_without_a_booking_are_acknowledged(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime, status: str
) -> None:
    result = webhook(driver, fake.notify(paid(fake, driver), status), "w")
    assert result["data"]["ignored"] == f"payment_status {status} has no effect"
    assert published(runtime) == []


def test_a_message_about_no_payment_is_acknowledged(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime
) -> None:
    body = fake.register(
        FakePayPalIPN.encode({"txn_type": "new_case", "case_id": "PP-D-1234", "receiver_email": EMAIL})
    )
    assert webhook(driver, body, "w")["data"]["ignored"] == "not a payment notification"
    assert published(runtime) == []


# --- sequences, dedupe and mapping -------------------------------------------------------------------


def test_pending_then_completed_upgrades_and_duplicates_replay(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime
) -> None:
    payment = paid(fake, driver)
    pending = fake.notify(payment, "Pending")
    completed = fake.notify(payment, "Completed")
    assert webhook(driver, pending, "w1")["replayed"] is False
    assert webhook(driver, completed, "w2")["replayed"] is False
    assert webhook(driver, completed, "w3")["replayed"] is True  # PayPal re-sends until it gets its 200
    assert webhook(driver, pending, "w4")["replayed"] is True
    events = published(runtime)
    assert [e["type"] for e in events] == ["payment.processing", "payment.succeeded"]
    assert {e["data"]["transaction_id"] for e in events} == {payment.txn_id}
    assert events[0]["data"]["pending_reason"] == "echeck"
    assert events[0]["data"]["fee"] is None


def test_a_late_pending_after_completed_is_stale(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime
) -> None:
    payment = paid(fake, driver)
    pending = fake.notify(payment, "Pending")
    webhook(driver, fake.notify(payment, "Completed"), "w1")
    late = webhook(driver, pending, "w2")
    assert [e.get("stale") for e in late["data"]["events"]] == [True]
    assert [e["type"] for e in published(runtime)] == ["payment.succeeded"]


@pytest.mark.parametrize("status", ["Failed", "Denied"])
def test_failed_and_denied_are_failed_payments(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime, status: str
) -> None:
    payment = paid(fake, driver)
    webhook(driver, fake.notify(payment, "Pending"), "w1")
    webhook(driver, fake.notify(payment, status), "w2")
    events = published(runtime)
    assert [e["type"] for e in events] == ["payment.processing", "payment.failed"]
    assert events[1]["data"]["payment_status"] == status


def test_refunds_name_the_original_payment(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime
) -> None:
    payment = paid(fake, driver)
    webhook(driver, fake.notify(payment, "Completed"), "w1")
    first = fake.refund(payment, Decimal("5.00"))
    second = fake.refund(payment, Decimal("4.95"))
    webhook(driver, first, "w2")
    webhook(driver, second, "w3")
    assert webhook(driver, first, "w4")["replayed"] is True
    refunds = [e["data"] for e in published(runtime) if e["type"] == "payment.refunded"]
    assert [(r["amount"], r["transaction_id"]) for r in refunds] == [("5.00", payment.txn_id), ("4.95", payment.txn_id)]
    assert refunds[0]["refund_transaction_id"] == m.parse_ipn(first)["txn_id"] != payment.txn_id
    assert refunds[0]["fee"] is None


def test_a_chargeback_is_a_refund_and_more_than_was_paid_is_refused(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime
) -> None:
    payment = paid(fake, driver)
    webhook(driver, fake.notify(payment, "Completed"), "w1")
    assert refused(driver, fake.refund(payment, Decimal("19.96")))["code"] == "invalid_payload"
    webhook(driver, fake.refund(payment, status="Reversed"), "w2")
    (reversal,) = [e["data"] for e in published(runtime) if e["type"] == "payment.refunded"]
    assert (reversal["amount"], reversal["reason_code"]) == ("19.95", "chargeback")


@pytest.mark.parametrize(
    ("total", "currency", "gross", "fee"), [("1500", "JPY", "1500", "53"), ("990", "HUF", "990", "35.00")]
)
def test_zero_decimal_currencies_are_paid_in_whole_units(
    ipn: PayPalIPN,
    fake: FakePayPalIPN,
    driver: JobDriver,
    runtime: Runtime,
    total: str,
    currency: str,
    gross: str,
    fee: str,
) -> None:
    body = fake.notify(paid(fake, driver, total=total, currency=currency), "Completed")
    assert f"mc_gross={gross}&".encode() in body
    webhook(driver, body, "w")
    (event,) = published(runtime)
    # Events are in the billing system's (ISO) notation: HUF keeps two decimals there.
    assert Decimal(event["data"]["amount"]) == Decimal(gross)
    assert (event["data"]["fee"], event["data"]["currency"]) == (fee, currency)


def test_occurred_at_is_the_payment_date_in_utc(
    ipn: PayPalIPN, fake: FakePayPalIPN, driver: JobDriver, runtime: Runtime
) -> None:
    body = fake.notify(paid(fake, driver), "Completed", payment_date="10:15:00 Mar 02, 2025 PST")
    webhook(driver, body, "w")
    assert published(runtime)[0]["data"]["occurred_at"] == "2025-03-02T18:15:00Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("23:59:59 Jun 30, 2025 PDT", datetime(2025, 7, 1, 6, 59, 59, tzinfo=UTC)),
        ("1:02:03 Jan 5, 2024 PST", datetime(2024, 1, 5, 9, 2, 3, tzinfo=UTC)),
        ("10:15:00 Feb 30, 2025 PST", None),
        ("10:15:00 Mar 02, 2025 CET", None),
        ("yesterday", None),
    ],
)
def test_payment_date_parsing(text: str, expected: datetime | None) -> None:
    assert m.payment_date(text) == expected


# --- config ------------------------------------------------------------------------------------------


def test_config_fields_and_defaults() -> None:
    assert [f["name"] for f in PayPalIPN.get_config()] == ["email", "test_mode", "api_base", "postback_url"]
    live = PayPalIPN.parse_config({"email": " shop@example.com ", "test_mode": "0", "api_base": "", "postback_url": ""})
    assert live.model_dump() == {
        "email": "shop@example.com",
        "test_mode": False,
        "api_base": None,
        "postback_url": None,
    }
    local = PayPalIPN.parse_config(
        {"email": EMAIL, "api_base": "http://127.0.0.1:9/", "postback_url": "http://127.0.0.1:9/x"}
    )
    ext = PayPalIPN(local)
    assert (ext.config.checkout_url, ext.config.verify_url) == (
        "http://127.0.0.1:9/cgi-bin/webscr",
        "http://127.0.0.1:9/x",
    )
    assert PayPalIPN.operations == {"pay", "webhook"}


@pytest.mark.parametrize("config", [{}, {"email": "not-an-address"}, {"email": EMAIL, "postback_url": "ftp://x"}])
def test_bad_config_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfig):
        PayPalIPN(config)


@pytest.mark.parametrize("operation", ["refund", "charge", "create_billing_agreement", "cancel_subscription"])
def test_operations_paypal_ipn_does_not_have_are_unsupported(operation: str) -> None:
    from extensions.errors import UnsupportedOperation

    with pytest.raises(UnsupportedOperation):
        PayPalIPN({"email": EMAIL}).operation(operation)
