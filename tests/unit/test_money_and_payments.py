from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from extensions.money import format_amount, from_minor, parse_amount, to_minor
from extensions.payments import Invoice, parse_reference, payment_event, provider_reference


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("19.99", "EUR", 1999), ("19.995", "usd", 2000), ("1500", "JPY", 1500), ("1.2345", "KWD", 1235), ("0", "EUR", 0)],
)
def test_minor_units_follow_the_currency_exponent(amount: str, currency: str, minor: int) -> None:
    assert to_minor(Decimal(amount), currency) == minor


def test_round_trip_and_provider_overrides() -> None:
    assert from_minor(1999, "EUR") == Decimal("19.99")
    assert from_minor(1500, "JPY") == Decimal("1500")
    assert str(from_minor(1235, "KWD")) == "1.235"
    assert format_amount(Decimal("10"), "EUR") == "10.00"
    assert format_amount(Decimal("10"), "HUF", {"HUF": 0}) == "10"
    assert to_minor(Decimal("10.5"), "HUF", {"HUF": 0}) == 11


def test_floats_are_refused_on_money_paths() -> None:
    with pytest.raises(ValueError, match="float"):
        parse_amount(19.99)
    with pytest.raises(ValidationError):
        Invoice.model_validate({"id": 1, "total": 19.99, "currency": "EUR", "user": {"id": 1, "email": "a@b"}})
    invoice = Invoice.model_validate({"id": 1, "total": "19.99", "currency": "eur", "user": {"id": 1, "email": "a@b"}})
    assert invoice.total == Decimal("19.99")
    assert invoice.currency == "EUR"
    assert invoice.model_dump(mode="json")["total"] == "19.99"


def test_references_are_namespaced_by_installation() -> None:
    reference = provider_reference("shop-a", 42)
    assert reference == "pm:shop-a:42"
    assert parse_reference(reference) == ("shop-a", "42")
    assert parse_reference("42") is None
    assert parse_reference("pm::42") is None


def test_payment_event_is_normalised() -> None:
    event_type, data = payment_event(
        "payment.succeeded",
        gateway="stripe",
        invoice_id=42,
        amount=Decimal("1500"),
        currency="jpy",
        transaction_id="pi_1",
        fee=Decimal("45"),
        provider_event_id="evt_1",
    )
    assert event_type == "payment.succeeded"
    assert data["amount"] == "1500"
    assert data["fee"] == "45"
    assert data["currency"] == "JPY"
    assert data["invoice_id"] == "42"
    assert data["occurred_at"].endswith("Z")
