"""Pure parts of the Stripe gateway: amounts by Stripe's currency rules, request parameters, webhook
signature verification, event parsing and mapping, webhook endpoint registration, and error
classification. No I/O here."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import stripe

from extensions.errors import (
    AuthFailed,
    Conflict,
    ExtensionError,
    InvalidPayload,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
    SignatureInvalid,
)
from extensions.money import exponent_for, format_amount, from_minor, to_minor
from extensions.payments import BillingAgreement, Invoice, InvoiceUser, payment_event

GATEWAY = "stripe"
API_VERSION = "2025-07-30.basil"
TOLERANCE_S = 300
INSTALLATION_KEY = "paymenter_installation"
WEBHOOK_DESCRIPTION = "Paymenter Stripe Webhook"
ENDPOINT_PAGE = 100  # Stripe's largest list page

# Stripe's own minor units ("Supported currencies"), which differ from ISO 4217 for MGA and ISK.
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
EXPONENTS: dict[str, int] = {**dict.fromkeys(ZERO_DECIMAL, 0), **dict.fromkeys(THREE_DECIMAL, 3), "ISK": 2}
# Decimals a charge may carry: ISK only whole krona (sent ×100), three-decimal ones must end in 0.
CHARGE_PLACES: dict[str, int] = {"ISK": 0, **dict.fromkeys(THREE_DECIMAL, 2)}

PAYMENT_INTENT_EVENTS = {
    "payment_intent.processing": "payment.processing",
    "payment_intent.succeeded": "payment.succeeded",
    "payment_intent.payment_failed": "payment.failed",
}
OPEN_STATUSES = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})
CARD_BRANDS = {
    "amex": "American Express",
    "diners": "Diners Club",
    "discover": "Discover",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}
BANK_METHODS = {
    "sepa_debit": "SEPA Direct Debit",
    "us_bank_account": "US Bank Account",
    "bacs_debit": "Bacs Direct Debit",
    "au_becs_debit": "BECS Direct Debit",
}
REDIRECT_METHODS = {"ideal": "iDEAL", "bancontact": "Bancontact", "sofort": "SOFORT"}
ADDRESS = dict(line1="address", line2="address2", city="city", state="state", postal_code="zip", country="country")


# --- money -------------------------------------------------------------------------------------------


def to_stripe_minor(amount: Decimal, currency: str) -> int:
    """Minor units as Stripe counts them, rounded half-up once to what Stripe accepts for the currency."""
    code = currency.upper()
    places = CHARGE_PLACES.get(code, exponent_for(code, EXPONENTS))
    return to_minor(amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP), code, EXPONENTS)


def from_stripe_minor(minor: Any, currency: str) -> Decimal:
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise InvalidPayload("Stripe amount is not an integer")
    return from_minor(minor, currency, EXPONENTS)


# --- request parameters ------------------------------------------------------------------------------


def _user_name(user: InvoiceUser) -> str:
    return user.name or " ".join(p for p in (user.first_name, user.last_name) if p) or user.email


def customer_params(user: InvoiceUser, installation: str, *, full: bool) -> dict[str, Any]:
    params: dict[str, Any] = {
        "email": user.email,
        "name": _user_name(user),
        "metadata": {"user_id": str(user.id), INSTALLATION_KEY: installation},
    }
    if full:  # stripe_create_customers: address, phone and company as well
        props = user.properties
        address = {key: str(props[name]) for key, name in ADDRESS.items() if props.get(name)}
        if address:
            params["address"] = address
        if props.get("phone"):
            params["phone"] = str(props["phone"])
        if props.get("company_name"):
            params["description"] = str(props["company_name"])
    return params


def payment_intent_params(invoice: Invoice, minor: int, installation: str, customer: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "amount": minor,
        "currency": invoice.currency.lower(),
        "description": f"Payment for Invoice #{invoice.label}",
        "automatic_payment_methods": {"enabled": True},
        "metadata": {"invoice_id": str(invoice.id), INSTALLATION_KEY: installation},
    }
    if customer:
        params["customer"] = customer
    return params


def charge_params(
    invoice: Invoice, agreement: BillingAgreement, minor: int, installation: str, customer: str
) -> dict[str, Any]:
    params = payment_intent_params(invoice, minor, installation, customer)
    # Nobody is present to follow a redirect; without this a server-side confirm asks for a return_url.
    params["automatic_payment_methods"]["allow_redirects"] = "never"
    params.update(payment_method=agreement.external_reference, off_session=True, confirm=True)
    params["metadata"]["billing_agreement_id"] = str(agreement.id)
    return params


def setup_intent_params(user: InvoiceUser, customer: str, installation: str) -> dict[str, Any]:
    metadata = {"user_id": str(user.id), "is_billing_agreement": "1", INSTALLATION_KEY: installation}
    return {"customer": customer, "usage": "off_session", "metadata": metadata}


# --- webhooks ----------------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: str) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body.encode(), hashlib.sha256).hexdigest()


def verify_signature(body: str, header: str | None, secret: str | None, now: datetime) -> None:
    """Stripe's scheme: HMAC-SHA256 of ``"<t>." + raw body``, matched against every ``v1`` (secret
    rotation sends several), in constant time; ``t`` older than the tolerance is a replay."""
    if not secret:
        raise SignatureInvalid("no webhook secret configured (stripe_webhook_secret)")
    if not header:
        raise SignatureInvalid("missing Stripe-Signature header")
    timestamp, candidates = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1" and value:
            candidates.append(value.encode())
    if timestamp is None or not timestamp.isdigit():
        raise SignatureInvalid("Stripe-Signature carries no timestamp")
    if not candidates:
        raise SignatureInvalid("Stripe-Signature carries no v1 signature")
    expected = sign(secret, int(timestamp), body).encode()
    if not any([hmac.compare_digest(expected, candidate) for candidate in candidates]):
        raise SignatureInvalid("Stripe-Signature does not match the body")
    if int(timestamp) < int(now.timestamp()) - TOLERANCE_S:
        raise SignatureInvalid(f"Stripe-Signature timestamp is more than {TOLERANCE_S}s old")


def parse_event(body: str) -> dict[str, Any]:
    try:
        event = json.loads(body, parse_float=Decimal)
    except ValueError:
        raise InvalidPayload("webhook body is not JSON") from None
    data = event.get("data") if isinstance(event, dict) else None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("object"), dict)
        or not str(event.get("id", "")).startswith("evt_")
        or not isinstance(event.get("type"), str)
    ):
        raise InvalidPayload("webhook body is not a Stripe event")
    found: dict[str, Any] = event
    return found


def ref(value: Any) -> str | None:
    """The id of a Stripe reference, expanded (an object) or not (a string)."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    found = obj.get("metadata")
    return found if isinstance(found, Mapping) else {}


def foreign(obj: Mapping[str, Any], installation: str) -> bool:
    """Named for another installation sharing the Stripe account; naming none counts as ours."""
    named = metadata(obj).get(INSTALLATION_KEY)
    return bool(named) and named != installation


def occurred_at(event: Mapping[str, Any]) -> datetime | None:
    created = event.get("created")
    return datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None


def _currency(obj: Mapping[str, Any]) -> str:
    currency = obj.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        raise InvalidPayload("Stripe object carries no currency")
    return currency.upper()


def intent_payment(
    intent: Mapping[str, Any], event_type: str, event_id: str | None = None, moment: datetime | None = None
) -> tuple[str, dict[str, Any]] | None:
    """A PaymentIntent as a payment event, its id as the transaction; None when it is not an invoice's."""
    invoice_id = metadata(intent).get("invoice_id")
    if not invoice_id:
        return None
    currency = _currency(intent)
    minor = intent.get("amount")
    if event_type == "payment.succeeded" and intent.get("amount_received"):
        minor = intent["amount_received"]  # a partial capture receives less than was asked
    return payment_event(
        event_type,
        gateway=GATEWAY,
        invoice_id=str(invoice_id),
        amount=from_stripe_minor(minor, currency),
        currency=currency,
        transaction_id=ref(intent.get("id")),
        provider_event_id=event_id,
        occurred_at=moment,
    )


def intent_event(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """payment_intent.processing/succeeded/payment_failed → payment.processing/succeeded/failed."""
    return intent_payment(
        event["data"]["object"], PAYMENT_INTENT_EVENTS[event["type"]], event["id"], occurred_at(event)
    )


def refund_event(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """charge.refunded → payment.refunded for the amount this event refunded (``refunded_total`` = all)."""
    charge = event["data"]["object"]
    intent = ref(charge.get("payment_intent"))
    if intent is None:
        return None
    currency = _currency(charge)
    total = from_stripe_minor(charge.get("amount_refunded"), currency)
    previous = (event["data"].get("previous_attributes") or {}).get("amount_refunded")
    amount = total - from_stripe_minor(previous, currency) if isinstance(previous, int) else total
    return payment_event(
        "payment.refunded",
        gateway=GATEWAY,
        invoice_id=metadata(charge).get("invoice_id"),
        amount=amount,
        currency=currency,
        transaction_id=intent,
        provider_event_id=event["id"],
        occurred_at=occurred_at(event),
        refunded_total=format_amount(total, currency),
        refund_complete=bool(charge.get("refunded")),
    )


def fee_event(event: Mapping[str, Any], balance_transaction: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """charge.updated with a balance transaction → payment.fee, in the settlement currency."""
    charge = event["data"]["object"]
    currency = _currency(balance_transaction)
    return payment_event(
        "payment.fee",
        gateway=GATEWAY,
        invoice_id=metadata(charge).get("invoice_id"),
        amount=None,
        currency=currency,
        transaction_id=ref(charge.get("payment_intent")),
        fee=from_stripe_minor(balance_transaction.get("fee"), currency),
        provider_event_id=event["id"],
        occurred_at=occurred_at(event),
    )


def reusable_method(setup_intent: Mapping[str, Any]) -> str | None:
    """The PaymentMethod to charge later: redirect methods leave a generated SEPA Direct Debit one."""
    attempt = setup_intent.get("latest_attempt")
    details = attempt.get("payment_method_details") if isinstance(attempt, Mapping) else None
    if isinstance(details, Mapping) and details.get("type") in REDIRECT_METHODS:
        generated = ref((details.get(details["type"]) or {}).get("generated_sepa_debit"))
        if generated:
            return generated
    return ref(setup_intent.get("payment_method"))


def agreement_event(event: Mapping[str, Any], method_id: str, method: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """setup_intent.succeeded for a billing agreement → billing_agreement.created (reference = PaymentMethod)."""
    intent = event["data"]["object"]
    data = {
        "gateway": GATEWAY,
        "user_id": metadata(intent).get("user_id"),
        "external_reference": method_id,
        **describe_method(method),
        "customer_id": ref(method.get("customer")),
        "setup_intent_id": ref(intent.get("id")),
        "provider_event_id": event["id"],
        "occurred_at": (occurred_at(event) or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
    }
    return "billing_agreement.created", data


def describe_method(method: Mapping[str, Any]) -> dict[str, str | None]:
    """Paymenter's billing agreement name, type and expiry for a PaymentMethod."""
    kind = str(method.get("type") or "unknown")
    found = method.get(kind)
    details: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    if kind == "card":
        brand = str(details.get("brand") or "card")
        label = CARD_BRANDS.get(brand, brand[:1].upper() + brand[1:])
        year, month = details.get("exp_year"), details.get("exp_month")
        expiry = None
        if isinstance(year, int) and isinstance(month, int) and 1 <= month <= 12:
            expiry = date(year, month, calendar.monthrange(year, month)[1]).isoformat()
        return {"name": f"{label} **** {details.get('last4')}", "type": brand, "expiry": expiry}
    if kind in BANK_METHODS:
        name = f"{BANK_METHODS[kind]} **** {details.get('last4')}"
    elif kind == "sofort":
        name = f"SOFORT **** {str(details.get('country') or '').upper()}"
    elif kind in REDIRECT_METHODS:
        name = f"{REDIRECT_METHODS[kind]} **** {details.get('bank_code')}"
    else:
        name = kind.replace("_", " ")
        name = name[:1].upper() + name[1:]
    return {"name": name, "type": kind, "expiry": None}


# --- webhook endpoints -------------------------------------------------------------------------------


def webhook_endpoint_params(url: str, events: Iterable[str]) -> dict[str, Any]:
    # Pinned like our requests, so the events Stripe sends have the shapes this code parses.
    return {
        "url": url,
        "description": WEBHOOK_DESCRIPTION,
        "enabled_events": sorted(events),
        "api_version": API_VERSION,
    }


def endpoints_at(page: Mapping[str, Any], url: str) -> tuple[list[str], str | None]:
    """The ids of a list page's endpoints that point at ``url``, and the cursor of the next page (None
    after the last one)."""
    data = page.get("data")
    items = [e for e in data if isinstance(e, Mapping)] if isinstance(data, list) else []
    ours = [str(e["id"]) for e in items if e.get("url") == url and e.get("id")]
    cursor = ref(items[-1].get("id")) if page.get("has_more") and items else None
    return ours, cursor


# --- errors ------------------------------------------------------------------------------------------


def classify(exc: stripe.StripeError) -> ExtensionError:
    """Transient: network, 409, 429, 5xx or ``Stripe-Should-Retry: true``; the rest is permanent."""
    status = exc.http_status
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    body = exc.json_body.get("error") if isinstance(exc.json_body, dict) else None
    error: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    message = exc.user_message or type(exc).__name__
    if isinstance(exc, stripe.APIConnectionError):
        cause = type(exc.__cause__).__name__ if exc.__cause__ else "network error"
        return ProviderUnavailable(f"Stripe unreachable ({cause})")
    hint = headers.get("stripe-should-retry")
    if hint != "false" and (hint == "true" or status in (409, 429) or (status or 0) >= 500):
        after = headers.get("retry-after")
        return ProviderUnavailable(message, status, int(after) if after and after.isdigit() else None)
    if isinstance(exc, stripe.CardError):
        reason = "/".join(str(r) for r in (error.get("code"), error.get("decline_code")) if r)
        return ProviderRejected(f"payment declined ({reason or 'card_error'}): {message}", status)
    if "The currency provided" in message:
        return ProviderRejected(f"the payment method does not support the invoice currency: {message}", status)
    if isinstance(exc, stripe.IdempotencyError):
        return Conflict(f"Stripe idempotency key reused with other parameters: {message}", status)
    if status in (401, 403):
        return AuthFailed(message, status)
    if status == 404:
        return NotFound(message, status)
    return ProviderRejected(message, status)
