"""A stateful PayPal Payments Standard: checkout, payments with a status history, IPN messages and the postback.

State: ``payments`` by ``txn_id``, made by :meth:`FakePayPalIPN.checkout` from the URL ``pay`` returned (what
the buyer's browser opens). One payment per ``invoice`` value, as PayPal's "block accidental payments" profile
setting does: opening the same offer again gives the same payment, and one already completed refuses a second.
Every IPN message PayPal "sent" is registered; the postback vouches for exactly those bytes.

Routes (``/cgi-bin/webscr``):

- ``POST``: the postback. ``VERIFIED`` when the body is ``cmd=_notify-validate&`` followed by a registered
  message byte for byte, ``INVALID`` otherwise (a re-encoded or forged message). ``answer_next(status, text)``
  scripts other answers; the base knobs give 500s and lost answers.
- ``GET``: the checkout page; answers 400 with PayPal's reason where PayPal would refuse the button.

Messages are built as PayPal does: fields in its order, form-encoded in the message's ``charset``
(``windows-1252`` by default, so ``first_name=J%FCrgen``; ``payer_email`` carries a ``+``, sent as ``%2B``).
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from tests.fakes.base import FakeProvider

WEBSCR = "/cgi-bin/webscr"
PREFIX = b"cmd=_notify-validate&"
CURRENCIES = frozenset(
    "AUD BRL CAD CNY CZK DKK EUR GBP HKD HUF ILS INR JPY MXN MYR NOK NZD PHP PLN SEK SGD THB TWD USD".split()
)
NO_DECIMALS = frozenset({"HUF", "JPY", "TWD"})
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
REMOVE = None  # an override value that drops the field


class CheckoutRefused(ValueError):
    """PayPal would show the buyer an error instead of a payment page."""


@dataclass
class FakePayment:
    txn_id: str
    offer: str  # the checkout's ``invoice`` value
    custom: str
    item_number: str
    item_name: str
    amount: Decimal
    currency: str
    business: str
    notify_url: str
    status: str = "Created"
    history: list[str] = field(default_factory=list)


def _format(amount: Decimal, currency: str) -> str:
    return str(amount.quantize(Decimal(1) if currency in NO_DECIMALS else Decimal("0.01")))


class FakePayPalIPN(FakeProvider):
    def __init__(self, account_email: str = "shop@example.com", *, sandbox: bool = True) -> None:
        super().__init__()
        self.account_email = account_email
        self.secondary_emails: set[str] = set()
        self.sandbox = sandbox
        self.payments: dict[str, FakePayment] = {}
        self.messages: set[bytes] = set()
        self.postbacks: list[bytes] = []
        self._answers: list[tuple[int, str]] = []
        self._ids = itertools.count(1)
        self._clock = datetime(2025, 3, 2, 18, 15, tzinfo=UTC)

    # --- knobs and views -----------------------------------------------------------------------------
    def answer_next(self, status: int, text: str) -> None:
        self._answers.append((status, text))

    def register(self, body: bytes) -> bytes:
        """A message PayPal vouches for (sent to the listener), as-is."""
        self.messages.add(body)
        return body

    def payment_for(self, offer: str) -> FakePayment | None:
        found = [p for p in self.payments.values() if p.offer == offer]
        return found[-1] if found else None

    # --- routes --------------------------------------------------------------------------------------
    def route(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != WEBSCR:
            return httpx.Response(404, text="Not Found")
        if request.method == "GET":
            try:
                payment = self.checkout(str(request.url))
            except CheckoutRefused as exc:
                return httpx.Response(400, text=str(exc))
            return httpx.Response(200, text=f"Pay {payment.amount} {payment.currency} to {payment.business}")
        if request.method != "POST":
            return httpx.Response(405, text="Method Not Allowed")
        body = request.content
        self.postbacks.append(body)
        if self._answers:
            status, text = self._answers.pop(0)
            return httpx.Response(status, text=text, headers={"Content-Type": "text/plain"})
        genuine = body.startswith(PREFIX) and body[len(PREFIX) :] in self.messages
        return httpx.Response(200, text="VERIFIED" if genuine else "INVALID", headers={"Content-Type": "text/plain"})

    # --- the buyer at checkout -----------------------------------------------------------------------
    def checkout(self, url: str) -> FakePayment:
        """Open the checkout URL as the buyer's browser would: the payment of that offer (new or the same)."""
        query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        with self.lock:
            self._validate(query)
            offer = query.get("invoice", "")
            current = self.payment_for(offer) if offer else None
            if current is not None and current.status == "Completed":
                raise CheckoutRefused("This invoice has already been paid. For more information, contact the merchant.")
            if current is not None and current.status in ("Created", "Pending"):
                return current
            payment = FakePayment(
                txn_id=f"{next(self._ids):02d}{uuid.uuid4().hex[:15].upper()}",
                offer=offer,
                custom=query.get("custom", ""),
                item_number=query.get("item_number", ""),
                item_name=query.get("item_name", ""),
                amount=Decimal(query["amount"]),
                currency=query["currency_code"],
                business=query["business"],
                notify_url=query["notify_url"],
            )
            self.payments[payment.txn_id] = payment
            return payment

    def _validate(self, query: dict[str, str]) -> None:
        if query.get("cmd") != "_xclick":
            raise CheckoutRefused("unsupported cmd")
        accounts = {self.account_email.casefold(), *(e.casefold() for e in self.secondary_emails)}
        if query.get("business", "").casefold() not in accounts:
            raise CheckoutRefused("The merchant's e-mail is not a PayPal account")
        currency = query.get("currency_code", "")
        if currency not in CURRENCIES:
            raise CheckoutRefused(f"Currency {currency!r} is not supported")
        text = query.get("amount", "")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise CheckoutRefused("The amount is not a number") from None
        decimals = len(text.partition(".")[2]) if "." in text else 0
        if amount <= 0 or decimals > (0 if currency in NO_DECIMALS else 2):
            raise CheckoutRefused(f"The amount {text!r} is not valid for {currency}")
        if not query.get("notify_url", "").startswith(("http://", "https://")) or not query.get("return"):
            raise CheckoutRefused("notify_url and return must be absolute URLs")

    # --- PayPal's notifications ----------------------------------------------------------------------
    def notify(self, payment: FakePayment, status: str, **overrides: str | None) -> bytes:
        """Move ``payment`` to ``status`` and return (and register) the IPN message PayPal sends for it."""
        with self.lock:
            payment.status = status
            payment.history.append(status)
            fields = self._fields(payment, payment.txn_id, status, payment.amount)
            if status == "Completed":
                fields["mc_fee"] = self.fee(payment)
            if status == "Pending":
                fields["pending_reason"] = "echeck"
                fields["payment_type"] = "echeck"
            return self.register(self.encode(fields, overrides))

    def refund(
        self, payment: FakePayment, amount: Decimal | None = None, status: str = "Refunded", **overrides: str | None
    ) -> bytes:
        """A refund (or a chargeback: ``Reversed``) of ``payment``: a new txn_id naming the original as parent."""
        with self.lock:
            refunded = payment.amount if amount is None else amount
            txn_id = f"{next(self._ids):02d}{uuid.uuid4().hex[:15].upper()}"
            fields = self._fields(payment, txn_id, status, -refunded)
            fields["parent_txn_id"] = payment.txn_id
            fields["reason_code"] = "refund" if status == "Refunded" else "chargeback"
            fields["mc_fee"] = "-" + self.fee(payment)
            return self.register(self.encode(fields, overrides))

    def fee(self, payment: FakePayment) -> str:
        return _format(payment.amount * Decimal("0.0349") + Decimal("0.49"), payment.currency)

    def _fields(self, payment: FakePayment, txn_id: str, status: str, gross: Decimal) -> dict[str, str]:
        self._clock += timedelta(minutes=1)
        pacific = self._clock - timedelta(hours=8)
        date = f"{pacific:%H:%M:%S} {MONTHS[pacific.month - 1]} {pacific.day:02d}, {pacific.year} PST"
        fields = {
            "mc_gross": _format(gross, payment.currency),
            "protection_eligibility": "Eligible",
            "payer_id": "LPLWNMTBWMFAY",
            "payment_date": date,
            "payment_status": status,
            "charset": "windows-1252",
            "first_name": "Jürgen",
            "notify_version": "3.9",
            "custom": payment.custom,
            "payer_status": "verified",
            "business": payment.business,
            "quantity": "1",
            "verify_sign": uuid.uuid4().hex,
            "payer_email": "j.mueller+shop@example.de",
            "txn_id": txn_id,
            "payment_type": "instant",
            "last_name": "Müller",
            "receiver_email": self.account_email,
            "receiver_id": "S8XGHLYDW9T3S",
            "txn_type": "web_accept",
            "item_name": payment.item_name,
            "mc_currency": payment.currency,
            "item_number": payment.item_number,
            "invoice": payment.offer,
            "residence_country": "DE",
            "ipn_track_id": uuid.uuid4().hex[:13],
        }
        if self.sandbox:
            fields["test_ipn"] = "1"
        return fields

    @staticmethod
    def encode(fields: dict[str, str], overrides: dict[str, str | None] | None = None) -> bytes:
        """Form-encode in the message's own charset, in PayPal's field order (overrides replace or add)."""
        merged: dict[str, str | None] = {**fields, **(overrides or {})}
        pairs = [(k, v) for k, v in merged.items() if v is not REMOVE]
        charset = str(merged.get("charset") or "windows-1252")
        return urlencode(pairs, encoding=charset).encode("ascii")

    @staticmethod
    def deliver(body: bytes, received_at: datetime | None = None) -> dict[str, Any]:
        """The ``webhook`` kwarg the HTTP intake makes of PayPal's POST to the notify URL."""
        moment = received_at or datetime.now(UTC)
        return {
            "body": body.decode("ascii"),
            "headers": {
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "PayPal IPN ( https://www.paypal.com/ipn )",
            },
            "query": {},
            "received_at": moment.isoformat(),
        }
