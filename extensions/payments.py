"""What every gateway shares: payload models, provider references namespaced by installation, and the
normalised payment events of DESIGN §3 (``payment.succeeded|processing|failed|refunded``, ``payment.fee``,
``billing_agreement.*``, ``subscription.cancelled``).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import AnyHttpUrl, Field

from extensions.base import Payload
from extensions.money import Currency, Money, format_amount


class InvoiceUser(Payload):
    id: int | str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class InvoiceItem(Payload):
    description: str | None = None
    price: Money = Decimal(0)
    quantity: int = 1
    service_id: int | str | None = None


class Invoice(Payload):
    id: int | str
    number: str | None = None
    total: Money
    currency: Currency
    user: InvoiceUser
    items: list[InvoiceItem] = Field(default_factory=list)

    @property
    def label(self) -> str:
        return str(self.number or self.id)


class BillingAgreement(Payload):
    id: int | str
    external_reference: str


class PayRequest(Payload):
    invoice: Invoice
    return_url: AnyHttpUrl
    cancel_url: AnyHttpUrl | None = None
    webhook_url: AnyHttpUrl | None = None


class WebhookDelivery(Payload):
    """A webhook as the receiver got it. ``body`` is the raw body as text when it is UTF-8 (the usual case:
    JSON, form posts); a body that is not UTF-8 travels as ``body_base64`` so no byte is lost."""

    body: str = Field("", max_length=1_000_000)
    body_base64: str | None = Field(None, max_length=1_400_000)
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str | list[str]] = Field(default_factory=dict)
    received_at: datetime | None = None

    @property
    def raw_body(self) -> bytes:
        """The exact bytes delivered: what signatures and postbacks are computed over."""
        if self.body_base64 is not None:
            try:
                return base64.b64decode(self.body_base64, validate=True)
            except ValueError:
                raise ValueError("webhook.body_base64 is not valid base64") from None
        return self.body.encode("utf-8", "surrogateescape")

    def header(self, name: str) -> str | None:
        """Header lookup, case-insensitive as HTTP says."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


class WebhookRequest(Payload):
    webhook: WebhookDelivery


class RefundRequest(Payload):
    transaction_id: str = Field(min_length=1)
    amount: Money | None = None
    currency: Currency | None = None
    invoice_id: int | str | None = None
    reason: str | None = None


class CreateAgreementRequest(Payload):
    user: InvoiceUser
    return_url: AnyHttpUrl
    cancel_url: AnyHttpUrl | None = None


class ChargeRequest(Payload):
    invoice: Invoice
    agreement: BillingAgreement


class CancelAgreementRequest(Payload):
    agreement: BillingAgreement


class CancelSubscriptionRequest(Payload):
    subscription_id: str = Field(min_length=1)
    service_id: int | str | None = None


GATEWAY_PAYLOADS: dict[str, type[Payload]] = {
    "pay": PayRequest,
    "webhook": WebhookRequest,
    "refund": RefundRequest,
    "create_billing_agreement": CreateAgreementRequest,
    "charge": ChargeRequest,
    "cancel_billing_agreement": CancelAgreementRequest,
    "cancel_subscription": CancelSubscriptionRequest,
}


# --- provider references -----------------------------------------------------------------------------

REFERENCE_PREFIX = "pm"


def provider_reference(installation_id: str, invoice_id: int | str) -> str:
    """The invoice reference sent to a provider: ``pm:<installation>:<invoice id>``.

    Two installations sharing one provider account see each other's events; the installation part lets
    each acknowledge the other's with no effect.
    """
    return f"{REFERENCE_PREFIX}:{installation_id}:{invoice_id}"


def parse_reference(reference: str | None) -> tuple[str, str] | None:
    """``(installation, invoice id)`` from a provider reference, or None when it is not ours."""
    if not reference:
        return None
    parts = reference.split(":", 2)
    if len(parts) != 3 or parts[0] != REFERENCE_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


# --- events ------------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str:
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def payment_event(
    event_type: str,
    *,
    gateway: str,
    invoice_id: int | str | None,
    amount: Decimal | None,
    currency: str | None,
    transaction_id: str | None,
    fee: Decimal | None = None,
    provider_event_id: str | None = None,
    occurred_at: datetime | None = None,
    **extra: Any,
) -> tuple[str, dict[str, Any]]:
    """One normalised payment event; amounts as decimal strings in major units, currency upper-case."""
    code = currency.upper() if currency else None
    data = {
        "gateway": gateway,
        "invoice_id": str(invoice_id) if invoice_id is not None else None,
        "amount": format_amount(amount, code) if amount is not None and code else None,
        "currency": code,
        "transaction_id": transaction_id,
        "fee": format_amount(fee, code) if fee is not None and code else None,
        "provider_event_id": provider_event_id,
        "occurred_at": _iso(occurred_at),
        **extra,
    }
    return event_type, data
