"""Pure request builders, response parsers and webhook checks of the PayPal REST gateway."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from extensions.errors import InvalidPayload, ProviderRejected, SignatureInvalid
from extensions.http import ApiRequest, ApiResponse, default_error_message
from extensions.money import format_amount, parse_amount
from extensions.payments import WebhookDelivery, parse_reference, provider_reference

# PayPal's currency list. HUF, JPY and TWD take no decimals (DECIMALS_NOT_SUPPORTED); all others two.
CURRENCIES = frozenset(
    "AUD BRL CAD CHF CNY CZK DKK EUR GBP HKD HUF ILS JPY MXN MYR NOK NZD PHP PLN SEK SGD THB TWD USD".split()
)
EXPONENTS = {code: 0 if code in ("HUF", "JPY", "TWD") else 2 for code in CURRENCIES}
OPEN_ORDER = frozenset({"CREATED", "SAVED", "APPROVED", "PAYER_ACTION_REQUIRED"})
CAPTURE_STATUS = {
    "COMPLETED": "payment.succeeded",
    "PARTIALLY_REFUNDED": "payment.succeeded",
    "REFUNDED": "payment.succeeded",
    "PENDING": "payment.processing",
    "DECLINED": "payment.failed",
    "FAILED": "payment.failed",
}
CAPTURE_EVENTS = {
    "PAYMENT.CAPTURE.COMPLETED": "payment.succeeded",
    "PAYMENT.CAPTURE.PENDING": "payment.processing",
    "PAYMENT.CAPTURE.DENIED": "payment.failed",
}
REFUND_EVENTS = frozenset({"PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"})
SIGNATURE_HEADERS = {
    "auth_algo": "PAYPAL-AUTH-ALGO",
    "cert_url": "PAYPAL-CERT-URL",
    "transmission_id": "PAYPAL-TRANSMISSION-ID",
    "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
    "transmission_time": "PAYPAL-TRANSMISSION-TIME",
}
TOLERANCE = timedelta(minutes=5)
# Statuses in which a subscription's price can still change; CANCELLED and EXPIRED are final.
PRICEABLE = frozenset({"APPROVAL_PENDING", "APPROVED", "ACTIVE", "SUSPENDED"})
ATTEMPT = "~"  # reference suffix of a second order for one invoice (DUPLICATE_INVOICE_ID)
MAX_REQUEST_ID = 100


# --- money and references ------------------------------------------------------------------------


def money(amount: Decimal, currency: str) -> dict[str, str]:
    """PayPal's ``{currency_code, value}``; refuses what PayPal cannot take rather than rounding it."""
    code = currency.upper()
    if code not in CURRENCIES:
        raise InvalidPayload(f"paypal does not accept {code}")
    value = format_amount(amount, code, EXPONENTS)
    if Decimal(value) != amount or amount <= 0:
        raise InvalidPayload(f"paypal cannot charge {amount} {code} (positive, {EXPONENTS[code]} decimals at most)")
    return {"currency_code": code, "value": value}


def parse_money(obj: Any, value_key: str = "value", currency_key: str = "currency_code") -> tuple[Decimal, str]:
    try:
        return parse_amount(obj[value_key]), str(obj[currency_key]).upper()
    except (KeyError, TypeError, ValueError):
        raise ProviderRejected("paypal sent an amount without a decimal value and currency") from None


def fee_of(
    capture: Mapping[str, Any], path: tuple[str, ...] = ("seller_receivable_breakdown", "paypal_fee")
) -> Decimal | None:
    node: Any = capture
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping) or "value" not in node:
        return None
    return parse_money({"value": node["value"], "currency_code": ""})[0]


def reference(installation: str, invoice_id: int | str, attempt: int) -> str:
    base = provider_reference(installation, invoice_id)
    return base if attempt <= 1 else f"{base}{ATTEMPT}{attempt}"


def invoice_of(ref: str | None, installation: str) -> tuple[str | None, bool]:
    """``(invoice id, is this installation's)``; a bare reference (no namespace) counts as ours."""
    if not ref:
        return None, True
    parsed = parse_reference(ref)
    if parsed is None:
        return ref, True
    owner, invoice = parsed
    base, sep, attempt = invoice.rpartition(ATTEMPT)
    return (base if sep and base and attempt.isdigit() else invoice), owner == installation


def request_id(key: str, purpose: str) -> str:
    """A ``PayPal-Request-Id`` derived from the job's idempotency key, so a retry repeats it exactly."""
    raw = f"{key}:{purpose}"
    return raw if len(raw) <= MAX_REQUEST_ID else "pm-" + hashlib.sha256(raw.encode()).hexdigest()


# --- requests ------------------------------------------------------------------------------------


def _id(value: str) -> str:
    return quote(value, safe="")


def token_request(client_id: str, client_secret: str) -> ApiRequest:
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    return ApiRequest(
        "POST",
        "/v1/oauth2/token",
        form={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )


def create_order(ref: str, label: str, amount: dict[str, str], return_url: str, cancel_url: str) -> ApiRequest:
    context = {"return_url": return_url, "cancel_url": cancel_url, "shipping_preference": "NO_SHIPPING"}
    body = {
        "intent": "CAPTURE",
        "purchase_units": [{"invoice_id": ref, "description": f"Invoice #{label}", "amount": amount}],
        "payment_source": {"paypal": {"experience_context": {**context, "user_action": "PAY_NOW"}}},
    }
    return ApiRequest("POST", "/v2/checkout/orders", json=body)


def vault_order(ref: str, label: str, amount: dict[str, str], vault_id: str) -> ApiRequest:
    body = {
        "intent": "CAPTURE",
        "purchase_units": [{"invoice_id": ref, "description": f"Invoice #{label}", "amount": amount}],
        "payment_source": {"paypal": {"vault_id": vault_id}},
    }
    return ApiRequest("POST", "/v2/checkout/orders", json=body)


def get_order(order_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/v2/checkout/orders/{_id(order_id)}")


def capture_order(order_id: str) -> ApiRequest:
    return ApiRequest("POST", f"/v2/checkout/orders/{_id(order_id)}/capture", json={})


def get_capture(capture_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/v2/payments/captures/{_id(capture_id)}")


def refund(capture_id: str, amount: dict[str, str] | None, note: str | None) -> ApiRequest:
    body: dict[str, Any] = {"amount": amount} if amount else {}
    if note:
        body["note_to_payer"] = note[:255]
    return ApiRequest("POST", f"/v2/payments/captures/{_id(capture_id)}/refund", json=body)


def setup_token(brand: str, return_url: str, cancel_url: str) -> ApiRequest:
    context = {
        "payment_method_preference": "IMMEDIATE_PAYMENT_REQUIRED",
        "return_url": return_url,
        "cancel_url": cancel_url,
        "brand_name": brand,
        "shipping_preference": "NO_SHIPPING",
        "vault_instruction": "ON_PAYER_APPROVAL",
    }
    paypal = {"description": f"Billing Agreement for {brand}", "usage_type": "MERCHANT", "experience_context": context}
    return ApiRequest("POST", "/v3/vault/setup-tokens", json={"payment_source": {"paypal": paypal}})


def payment_token(approval_id: str) -> ApiRequest:
    body = {"payment_source": {"token": {"id": approval_id, "type": "SETUP_TOKEN"}}}
    return ApiRequest("POST", "/v3/vault/payment-tokens", json=body)


def delete_payment_token(vault_id: str) -> ApiRequest:
    return ApiRequest("DELETE", f"/v3/vault/payment-tokens/{_id(vault_id)}")


def cancel_subscription(subscription_id: str, reason: str) -> ApiRequest:
    return ApiRequest("POST", f"/v1/billing/subscriptions/{_id(subscription_id)}/cancel", json={"reason": reason})


def get_subscription(subscription_id: str) -> ApiRequest:
    # `fields=plan` adds the subscription's own billing cycles: its price where it overrides the plan's.
    return ApiRequest("GET", f"/v1/billing/subscriptions/{_id(subscription_id)}", params={"fields": "plan"})


def get_plan(plan_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/v1/billing/plans/{_id(plan_id)}")


def set_cycle_price(subscription_id: str, sequence: int, amount: dict[str, str]) -> ApiRequest:
    """JSON-Patch the subscription's own price of one billing cycle (the plan and its other subscribers
    keep theirs); a replace, so sending it twice is harmless."""
    path = f"/plan/billing_cycles/@sequence=={sequence}/pricing_scheme/fixed_price"
    patch = [{"op": "replace", "path": path, "value": amount}]
    return ApiRequest("PATCH", f"/v1/billing/subscriptions/{_id(subscription_id)}", json=patch)


def verify(fields: Mapping[str, str], webhook_id: str, raw_body: str) -> ApiRequest:
    # The signature covers the delivered bytes: splice the raw body in verbatim. Decoding and re-encoding
    # it would turn `{}`, `10.10` or unicode escapes into something PayPal never signed.
    head = json.dumps({**fields, "webhook_id": webhook_id})
    content = f'{head[:-1]}, "webhook_event": {raw_body}}}'.encode()
    headers = {"Content-Type": "application/json"}
    return ApiRequest("POST", "/v1/notifications/verify-webhook-signature", content=content, headers=headers)


# --- responses and webhooks ----------------------------------------------------------------------


def error_message(response: ApiResponse) -> str | None:
    """``NAME: ISSUE: message (debug_id …)`` from PayPal's error shape; the OAuth shape otherwise."""
    body = response.body
    if isinstance(body, dict) and body.get("name"):
        text = ": ".join(str(p) for p in (body.get("name"), issue(body), body.get("message")) if p)
        return f"{text} (debug_id {body['debug_id']})" if body.get("debug_id") else text
    return default_error_message(response)


def issue(body: Any) -> str | None:
    details = body.get("details") if isinstance(body, dict) else None
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return str(details[0].get("issue") or "") or None
    return None


def parse_token(body: Any) -> tuple[str, int]:
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise ProviderRejected("paypal token response without access_token")
    expires = body.get("expires_in")
    return body["access_token"], expires if isinstance(expires, int) and expires > 0 else 300


def priceable_plan(subscription: Any, subscription_id: str) -> str:
    """The plan id of a subscription whose price may change; refuses a cancelled or expired one."""
    body = subscription if isinstance(subscription, dict) else {}
    if body.get("status") not in PRICEABLE:
        raise ProviderRejected(
            f"paypal subscription {subscription_id} is {body.get('status')}: its price cannot change"
        )
    if not isinstance(body.get("plan_id"), str) or not body["plan_id"]:
        raise ProviderRejected(f"paypal subscription {subscription_id} names no plan_id")
    return str(body["plan_id"])


def regular_sequence(plan: Any) -> int:
    """The ``sequence`` of the plan's one REGULAR cycle: 1 without a trial, 2 or 3 after one or two TRIAL
    cycles. Only the plan says which cycle is which (a subscription's overrides carry no tenure type)."""
    cycles = plan.get("billing_cycles") if isinstance(plan, dict) else None
    found = [c.get("sequence") for c in cycles or [] if isinstance(c, dict) and c.get("tenure_type") == "REGULAR"]
    if len(found) != 1 or not isinstance(found[0], int) or isinstance(found[0], bool):
        plan_id = plan.get("id") if isinstance(plan, dict) else None
        raise ProviderRejected(f"paypal plan {plan_id} has no single REGULAR billing cycle to price")
    return found[0]


def cycle_price(cycles: Any, sequence: int) -> tuple[Decimal, str] | None:
    """The fixed price of the cycle with ``sequence``, or None when it has none (a free trial)."""
    for cycle in cycles if isinstance(cycles, list) else []:
        if isinstance(cycle, dict) and cycle.get("sequence") == sequence:
            fixed = (cycle.get("pricing_scheme") or {}).get("fixed_price")
            return parse_money(fixed) if fixed else None
    return None


def amount_text(amount: Decimal, currency: str) -> str:
    return format_amount(amount, currency, EXPONENTS)


def link(body: Any, *rels: str) -> str | None:
    for item in body.get("links") or [] if isinstance(body, dict) else []:
        if isinstance(item, dict) and item.get("rel") in rels and isinstance(item.get("href"), str):
            return str(item["href"])
    return None


def find_capture(order: Any, capture_id: str | None = None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(purchase unit, capture)``: the one with ``capture_id``, else the first."""
    for unit in order.get("purchase_units") or [] if isinstance(order, dict) else []:
        for capture in ((unit.get("payments") or {}).get("captures") or []) if isinstance(unit, dict) else []:
            if isinstance(capture, dict) and capture_id in (None, capture.get("id")):
                return unit, capture
    return None


def related_order(capture: Mapping[str, Any]) -> str | None:
    ids = (capture.get("supplementary_data") or {}).get("related_ids") or {}
    return str(ids["order_id"]) if isinstance(ids, dict) and ids.get("order_id") else None


def refunded_capture(refund: Mapping[str, Any]) -> str | None:
    """The capture a refund belongs to, from its ``up`` link."""
    href = link(refund, "up")
    if href and "/captures/" in href:
        return href.rstrip("/").rsplit("/", 1)[-1]
    return None


def parse_event(body: str) -> dict[str, Any]:
    try:
        event = json.loads(body, parse_float=Decimal)  # no float ever touches an amount
    except ValueError:
        raise InvalidPayload("paypal webhook body is not JSON") from None
    if not isinstance(event, dict) or not body.lstrip().startswith("{"):
        raise InvalidPayload("paypal webhook body is not a JSON object")
    if not isinstance(event.get("id"), str) or not isinstance(event.get("event_type"), str):
        raise InvalidPayload("paypal webhook without id or event_type")
    if not isinstance(event.get("resource"), dict):
        raise InvalidPayload("paypal webhook without a resource")
    return event


def parse_time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def transmission(delivery: WebhookDelivery, now: datetime) -> dict[str, str]:
    """The five signature headers; refuses a delivery without them or sent more than 5 minutes off."""
    fields = {name: (delivery.header(header) or "").strip() for name, header in SIGNATURE_HEADERS.items()}
    missing = [SIGNATURE_HEADERS[name] for name, value in fields.items() if not value]
    if missing:
        raise SignatureInvalid(f"paypal webhook without {', '.join(missing)}")
    sent = parse_time(fields["transmission_time"])
    received = delivery.received_at or now
    received = received if received.tzinfo else received.replace(tzinfo=UTC)
    if sent is None or abs(received - sent) > TOLERANCE:
        raise SignatureInvalid("paypal webhook transmission time is missing or outside the 5 minute tolerance")
    return fields
