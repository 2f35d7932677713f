"""Pure builders, parsers and checks of PayPal Payments Standard and its IPN (no I/O here)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from extensions.errors import InvalidPayload, ProviderUnavailable, SignatureInvalid
from extensions.http import ApiRequest, ApiResponse
from extensions.money import format_amount
from extensions.payments import parse_reference, payment_event

GATEWAY = "paypal_ipn"
VERIFY_PREFIX = b"cmd=_notify-validate&"
# PayPal's currencies and their decimals: HUF, JPY and TWD refuse decimals; none takes three.
EXPONENTS: dict[str, int] = {
    **dict.fromkeys("AUD BRL CAD CNY CZK DKK EUR GBP HKD ILS INR MXN MYR NOK NZD PHP PLN SEK SGD THB USD".split(), 2),
    **dict.fromkeys(("HUF", "JPY", "TWD"), 0),
}
EVENTS = {
    "Completed": "payment.succeeded",
    "Pending": "payment.processing",
    "Failed": "payment.failed",
    "Denied": "payment.failed",
    "Refunded": "payment.refunded",
    "Reversed": "payment.refunded",
}
CLOSING = frozenset({"Completed", "Failed", "Denied"})  # the offer cannot be paid (again) after these
REFUNDS = frozenset({"Refunded", "Reversed"})
PAYPAL_ZONES = {"PST": -8, "PDT": -7, "GMT": 0, "UTC": 0}
PAYMENT_DATE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2}) ([A-Z][a-z]{2}) (\d{1,2}), (\d{4}) ([A-Z]{3})$")
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@dataclass(frozen=True)
class Offer:
    """What ``pay`` asked PayPal to collect; the IPN must match it."""

    transaction_id: str
    invoice_id: str
    total: str
    currency: str

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str | None) -> Offer | None:
        if not text:
            return None
        return cls(**json.loads(text))


# --- pay ---------------------------------------------------------------------------------------------


def paypal_amount(amount: Decimal, currency: str) -> str:
    if currency not in EXPONENTS:
        raise InvalidPayload(f"PayPal does not accept {currency}")
    return format_amount(amount, currency, EXPONENTS)


def new_offer_id(reference: str, idempotency_key: str) -> str:
    # Derived from the job's key, so a retry of the same pay offers the same id.
    return f"{reference}:{hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]}"


def checkout_url(base: str, offer: Offer, *, reference: str, business: str, notify: str, back: str, cancel: str) -> str:
    query = [
        ("cmd", "_xclick"),
        ("charset", "utf-8"),
        ("item_name", f"Invoice #{offer.invoice_id}"),
        ("item_number", offer.invoice_id),  # what PHP-era payments in flight are keyed by
        ("invoice", offer.transaction_id),  # unique per offer: PayPal can block a second payment of it
        ("custom", reference),
        ("amount", offer.total),
        ("currency_code", offer.currency),
        ("business", business),
        ("notify_url", notify),
        ("return", back),
        ("cancel_return", cancel),
    ]
    return f"{base}?{urlencode(query)}"


# --- notification ------------------------------------------------------------------------------------


def parse_ipn(raw: bytes) -> dict[str, str]:
    """The fields of an IPN body, decoded with the charset the message names."""
    text = raw.decode("latin-1")  # lossless; only the percent-escapes depend on the charset
    try:
        charset = dict(_pairs(text, "latin-1")).get("charset") or "windows-1252"
        try:
            fields = _pairs(text, charset)
        except LookupError:  # not a text encoding Python knows
            fields = _pairs(text, "windows-1252")
    except ValueError:
        raise InvalidPayload("IPN body is not a form-encoded message") from None
    if not fields:
        raise InvalidPayload("IPN body is empty")
    return dict(fields)


def _pairs(text: str, charset: str) -> list[tuple[str, str]]:
    return parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding=charset, errors="replace")


def postback(verify_url: str, raw: bytes) -> ApiRequest:
    # PayPal's rule: the complete original message, byte for byte, after cmd=_notify-validate.
    return ApiRequest(
        "POST",
        urlsplit(verify_url).path or "/",
        content=VERIFY_PREFIX + raw,
        headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "paymenter-worker-ipn"},
    )


def verdict(response: ApiResponse) -> None:
    """Pass on ``VERIFIED``; ``INVALID`` is a forgery; anything else is unknown, so try again later."""
    if response.status == 200 and response.text == "VERIFIED":
        return
    if response.status == 200 and response.text == "INVALID":
        raise SignatureInvalid("PayPal answered INVALID to the IPN postback")
    answer = " ".join(response.text.split())[:80]
    raise ProviderUnavailable(f"PayPal IPN postback: HTTP {response.status} {answer!r}", response.status)


def installation_of(fields: Mapping[str, str]) -> str | None:
    for name in ("custom", "invoice"):
        parsed = parse_reference(fields.get(name))
        if parsed is not None:
            return parsed[0]
    return None


def check_account(fields: Mapping[str, str], email: str, test_mode: bool) -> None:
    # ``business`` is the address the checkout named (a secondary one); ``receiver_email`` the primary.
    wanted = email.casefold()
    if wanted not in (fields.get("receiver_email", "").casefold(), fields.get("business", "").casefold()):
        raise InvalidPayload("IPN receiver_email is not this connection's PayPal account")
    if (fields.get("test_ipn") == "1") != test_mode:
        raise InvalidPayload(f"IPN test_ipn={fields.get('test_ipn', '0')!r} does not match test_mode={test_mode}")


def _decimal(fields: Mapping[str, str], name: str) -> Decimal | None:
    value = fields.get(name)
    if not value:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise InvalidPayload(f"IPN {name} is not a decimal amount") from None
    if not amount.is_finite():
        raise InvalidPayload(f"IPN {name} is not a decimal amount")
    return amount


def check_amount(fields: Mapping[str, str], status: str, offer: Offer) -> Decimal:
    """The amount the event reports; anything but what was offered (or up to it, for a refund) is refused."""
    if fields.get("mc_currency", "").upper() != offer.currency:
        raise InvalidPayload(f"IPN mc_currency {fields.get('mc_currency')!r} differs from the offer's {offer.currency}")
    gross = _decimal(fields, "mc_gross")
    if gross is None:
        raise InvalidPayload("IPN has no mc_gross")
    total = Decimal(offer.total)
    if status in REFUNDS:
        if not Decimal(0) < -gross <= total:
            raise InvalidPayload(f"IPN refund of {-gross} is outside the offered {total}")
        return -gross
    if gross != total:
        raise InvalidPayload(f"IPN mc_gross {gross} differs from the offered {total} {offer.currency}")
    return gross


def payment_date(value: str | None) -> datetime | None:
    """PayPal's ``HH:MM:SS Mon DD, YYYY PST`` (Pacific time), or None."""
    match = PAYMENT_DATE.match(value or "")
    if not match:
        return None
    hour, minute, second, month, day, year, zone = match.groups()
    if month not in MONTHS or zone not in PAYPAL_ZONES:
        return None
    try:
        return datetime(
            int(year),
            MONTHS.index(month) + 1,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone(timedelta(hours=PAYPAL_ZONES[zone])),
        )
    except ValueError:
        return None


def ipn_event(
    fields: Mapping[str, str], offer: Offer, amount: Decimal, received_at: datetime | None
) -> tuple[str, dict[str, Any]]:
    status = fields["payment_status"]
    extra: dict[str, Any] = {"payment_status": status, "offer_id": offer.transaction_id}
    transaction, fee = fields["txn_id"], _decimal(fields, "mc_fee")
    if status in REFUNDS:
        # The refund is a new txn_id; the payment it refunds is parent_txn_id.
        transaction, fee = fields.get("parent_txn_id") or transaction, None
        extra.update(refund_transaction_id=fields["txn_id"], reason_code=fields.get("reason_code"))
    elif status == "Pending":
        extra["pending_reason"] = fields.get("pending_reason")
    return payment_event(
        EVENTS[status],
        gateway=GATEWAY,
        invoice_id=offer.invoice_id,
        amount=amount,
        currency=offer.currency,
        transaction_id=transaction,
        fee=fee,
        provider_event_id=fields.get("ipn_track_id") or f"{fields['txn_id']}:{status}",
        occurred_at=payment_date(fields.get("payment_date")) or received_at,
        **extra,
    )
