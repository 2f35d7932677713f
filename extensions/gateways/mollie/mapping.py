"""Pure request builders, response parsers and webhook checks for the Mollie v2 API (no I/O here)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from extensions.errors import InvalidPayload, ProviderRejected, SignatureInvalid
from extensions.http import ApiRequest, ApiResponse
from extensions.money import THREE_DECIMAL, ZERO_DECIMAL, format_amount, parse_amount
from extensions.payments import Invoice, parse_reference, payment_event

GATEWAY = "mollie"
# Mollie's "Multicurrency" table: 0 decimals for JPY and ISK, 2 for every other currency it takes.
EXPONENTS: dict[str, int] = {code: 2 for code in ZERO_DECIMAL | THREE_DECIMAL} | {"JPY": 0, "ISK": 0}
PAYMENT_ID = re.compile(r"tr_[A-Za-z0-9]{1,64}")
REFERENCE_KEY = "paymenter_reference"  # metadata key holding pm:<installation>:<invoice id>
STATUS_EVENTS = {
    "paid": "payment.succeeded",
    "authorized": "payment.processing",
    "failed": "payment.failed",
    "expired": "payment.failed",
    "canceled": "payment.failed",
}


@dataclass(frozen=True)
class Payment:
    id: str
    status: str
    amount: Decimal
    currency: str
    refunded: Decimal
    charged_back: Decimal
    remaining: Decimal | None
    metadata: Mapping[str, Any]
    checkout_url: str | None
    changed_at: datetime | None  # when it reached its current status (Mollie's ``<status>At``)

    @property
    def state(self) -> str:
        """What a webhook can have changed: status, and the amounts refunded and charged back."""
        refunded, charged_back = (amount_text(a, self.currency) for a in (self.refunded, self.charged_back))
        return f"{self.status}:{refunded}:{charged_back}"


# --- money ----------------------------------------------------------------------------------------------


def amount_text(amount: Decimal, currency: str) -> str:
    return format_amount(amount, currency, EXPONENTS)


def mollie_amount(amount: Decimal, currency: str) -> str:
    """``amount.value`` with Mollie's decimals; refuses an amount that would need rounding."""
    if amount <= 0:
        raise InvalidPayload(f"mollie: amount must be positive, got {amount} {currency}")
    text = amount_text(amount, currency)
    if Decimal(text) != amount:
        decimals = EXPONENTS.get(currency, 2)
        raise InvalidPayload(f"mollie: {amount} {currency} cannot be charged exactly ({decimals} decimals at Mollie)")
    return text


def _money(value: Any, currency: str | None, where: str) -> tuple[Decimal, str]:
    if not isinstance(value, Mapping) or not isinstance(value.get("currency"), str):
        raise ProviderRejected(f"mollie: {where} is not an amount object")
    code = value["currency"].upper()
    if currency is not None and code != currency:
        raise ProviderRejected(f"mollie: {where} is in {code}, the payment in {currency}")
    try:
        return parse_amount(value.get("value")), code
    except ValueError:
        raise ProviderRejected(f"mollie: {where} has no decimal value") from None


def _optional_money(value: Any, currency: str, where: str) -> Decimal | None:
    return None if value is None else _money(value, currency, where)[0]


# --- requests -------------------------------------------------------------------------------------------


def idempotency_key(job_key: str, purpose: str, *parts: object) -> str:
    """A provider key that is the same on every retry of one job and differs between payloads."""
    material = "|".join([job_key, purpose, *(str(p) for p in parts)])
    return f"paymenter-{purpose}-{hashlib.sha256(material.encode()).hexdigest()[:40]}"


def payment_body(
    invoice: Invoice, value: str, reference: str, redirect_url: str, cancel_url: str | None, webhook_url: str
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": {"currency": invoice.currency, "value": value},
        "description": f"Invoice #{invoice.label}",
        "redirectUrl": redirect_url,
        "webhookUrl": webhook_url,
        "metadata": {"invoice_id": invoice.id, REFERENCE_KEY: reference},
    }
    if cancel_url:
        body["cancelUrl"] = cancel_url
    return body


def refund_body(value: str, currency: str, description: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {"amount": {"currency": currency, "value": value}, "description": description[:140], "metadata": metadata}


def create_payment(body: Mapping[str, Any], key: str) -> ApiRequest:
    return ApiRequest("POST", "/v2/payments", json=body, headers={"Idempotency-Key": key})


def get_payment(payment_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/v2/payments/{payment_id}")


def create_refund(payment_id: str, body: Mapping[str, Any], key: str) -> ApiRequest:
    return ApiRequest("POST", f"/v2/payments/{payment_id}/refunds", json=body, headers={"Idempotency-Key": key})


def list_methods() -> ApiRequest:
    return ApiRequest("GET", "/v2/methods")


# --- responses ------------------------------------------------------------------------------------------


def error_message(response: ApiResponse) -> str | None:
    """Mollie's problem JSON (``detail`` and the culprit ``field``); None for a non-JSON body."""
    body = response.body
    if isinstance(body, Mapping) and isinstance(body.get("detail"), str):
        field = body.get("field")
        return f"{body['detail']} (field {field})" if isinstance(field, str) else str(body["detail"])
    return None


def is_problem(body: Any, status: int) -> bool:
    """Mollie's own problem JSON for ``status`` (not a proxy's page for a wrong ``api_base``)."""
    return isinstance(body, Mapping) and body.get("status") == status and "title" in body


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_payment(body: Any) -> Payment:
    if not isinstance(body, Mapping) or body.get("resource") != "payment" or not isinstance(body.get("id"), str):
        raise ProviderRejected("mollie: the answer is not a payment object")
    amount, currency = _money(body.get("amount"), None, "amount")
    status = str(body.get("status") or "")
    checkout = (body.get("_links") or {}).get("checkout") or {}
    metadata = body.get("metadata")
    return Payment(
        id=body["id"],
        status=status,
        amount=amount,
        currency=currency,
        refunded=_optional_money(body.get("amountRefunded"), currency, "amountRefunded") or Decimal(0),
        charged_back=_optional_money(body.get("amountChargedBack"), currency, "amountChargedBack") or Decimal(0),
        remaining=_optional_money(body.get("amountRemaining"), currency, "amountRemaining"),
        metadata=metadata if isinstance(metadata, Mapping) else {},
        checkout_url=checkout.get("href") if isinstance(checkout, Mapping) else None,
        changed_at=_timestamp(body.get(f"{status}At")),
    )


def refund_data(body: Any, payment_id: str) -> dict[str, Any]:
    if not isinstance(body, Mapping) or body.get("resource") != "refund" or not isinstance(body.get("id"), str):
        raise ProviderRejected("mollie: the answer is not a refund object")
    amount, currency = _money(body.get("amount"), None, "refund amount")
    return {
        "refund_id": body["id"],
        "transaction_id": payment_id,
        "status": body.get("status"),
        "amount": amount_text(amount, currency),
        "currency": currency,
    }


# --- webhooks -------------------------------------------------------------------------------------------


def webhook_payment_id(body: str) -> str:
    """The ``id`` of Mollie's form-encoded webhook; the only thing in it, and not trusted until fetched."""
    try:
        form = parse_qs(body, keep_blank_values=True, max_num_fields=10)
    except ValueError:
        raise InvalidPayload("mollie webhook: body is not a Mollie webhook form") from None
    ids = form.get("id", [])
    if len(ids) != 1 or not ids[0].strip():
        raise InvalidPayload("mollie webhook: expected a form-encoded body with one id=tr_… field")
    if not PAYMENT_ID.fullmatch(ids[0]):
        raise SignatureInvalid("mollie webhook: id is not a Mollie payment id, so it cannot be verified")
    return ids[0]


def owner(metadata: Mapping[str, Any], installation: str) -> tuple[str | None, str]:
    """``(invoice id, "")`` for this installation's payment, else ``(None, why it is not ours)``."""
    reference = metadata.get(REFERENCE_KEY)
    if reference is not None:
        parsed = parse_reference(str(reference))
        if parsed is None:
            return None, "metadata reference is not a Paymenter reference"
        if parsed[0] != installation:
            return None, f"payment of installation {parsed[0]!r}"
        return parsed[1], ""
    # Made by Paymenter's PHP gateway (bare invoice_id): counts as this installation's.
    invoice = metadata.get("invoice_id")
    if isinstance(invoice, str | int) and not isinstance(invoice, bool) and str(invoice).strip():
        return str(invoice), ""
    return None, "payment carries no Paymenter invoice"


def payment_events(payment: Payment, invoice_id: str, received_at: datetime | None) -> list[tuple[str, dict[str, Any]]]:
    common: dict[str, Any] = {
        "gateway": GATEWAY,
        "invoice_id": invoice_id,
        "currency": payment.currency,
        "transaction_id": payment.id,
        "provider_event_id": f"{payment.id}:{payment.state}",
        "provider_status": payment.status,
    }
    events = []
    kind = STATUS_EVENTS.get(payment.status)
    if kind is not None:
        events.append(payment_event(kind, amount=payment.amount, occurred_at=payment.changed_at, **common))
    reversed_total = payment.refunded + payment.charged_back
    if reversed_total > 0:
        # Cumulative, as Mollie reports it: refunds and chargebacks both give money back.
        events.append(
            payment_event(
                "payment.refunded",
                amount=reversed_total,
                occurred_at=received_at,
                amount_refunded=amount_text(payment.refunded, payment.currency),
                amount_charged_back=amount_text(payment.charged_back, payment.currency),
                **common,
            )
        )
    return events
