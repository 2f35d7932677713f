"""A stateful Mollie v2 API (payments, refunds, chargebacks) and the webhook deliveries Mollie sends.

Modelled on Mollie's rules where they matter to a client:

- ``Authorization: Bearer <key>`` with a key of ``accounts`` (``test_…`` keys are test mode), else 401;
  a payment belongs to the account that created it and is a 404 for every other key (Mollie never
  reveals another account's payment);
- ``POST /v2/payments``: ``amount.value`` must have the currency's decimals (0 for JPY and ISK, 2
  otherwise) and the currency must be one Mollie takes, ``description`` and ``redirectUrl`` are required,
  a ``webhookUrl`` on localhost is refused (422 problem JSON naming ``field``); a repeated
  ``Idempotency-Key`` gets the first answer back without creating anything;
- ``GET /v2/payments/{id}``: the current object; ``_links.checkout`` only while ``open``;
- ``POST /v2/payments/{id}/refunds``: only on ``paid`` payments, same currency, at most
  ``amountRemaining``; also idempotent by key;
- ``GET /v2/methods``: a fixed list (for ``test_config``);
- ``POST /_test/payments/{id}/status`` with JSON ``{"status", "amountRefunded"?, "amountChargedBack"?}``:
  the test-control endpoint, for a test that only has the loopback URL.

See ``FakeMollie`` for how a test drives it.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from tests.fakes.base import FakeProvider

DEFAULT_KEY = "test_fakemolliekey000000000000"
SUPPORTED = frozenset(
    "AED AUD BGN BRL CAD CHF CZK DKK EUR GBP HKD HUF ILS ISK JPY MXN MYR NOK NZD PHP PLN RON SEK SGD THB TWD "
    "USD ZAR".split()
)
ZERO_DECIMALS = frozenset({"JPY", "ISK"})
STATUSES = frozenset({"open", "pending", "authorized", "paid", "canceled", "expired", "failed"})
PAYMENT_PATH = re.compile(r"/v2/payments/(tr_[A-Za-z0-9]+)")
REFUNDS_PATH = re.compile(r"/v2/payments/(tr_[A-Za-z0-9]+)/refunds")
CONTROL_PATH = re.compile(r"/_test/payments/(tr_[A-Za-z0-9]+)/status")


def problem(status: int, title: str, detail: str, field: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {
        "status": status,
        "title": title,
        "detail": detail,
        "_links": {"documentation": {"href": "https://docs.mollie.com/overview/handling-errors", "type": "text/html"}},
    }
    if field:
        body["field"] = field
    return httpx.Response(status, json=body, headers={"Content-Type": "application/hal+json"})


def _unprocessable(detail: str, field: str) -> httpx.Response:
    return problem(422, "Unprocessable Entity", detail, field)


def _decimals(currency: str) -> int:
    return 0 if currency in ZERO_DECIMALS else 2


def _text(amount: Decimal, currency: str) -> str:
    return str(amount.quantize(Decimal(1).scaleb(-_decimals(currency))))


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"value": _text(amount, currency), "currency": currency}


class FakeMollie(FakeProvider):
    """The Mollie API of one or more accounts (``api_key`` is ours; optional).

    Use from a test::

        fake = FakeMollie()                                    # or FakeMollie(api_key="test_…")
        payment = fake.create_payment("10.00", "EUR", metadata={"invoice_id": 42})
        fake.set_status(payment["id"], "paid")                 # or authorized/failed/expired/canceled
        fake.refund(payment["id"], "4.00")                     # dashboard refund; also fake.chargeback(...)
        delivery = fake.webhook(payment["id"])                 # the ``webhook`` kwarg of a webhook job
        with fake.serve() as base_url:                         # connection config: api_key + api_base=base_url
            httpx.post(intake_url, content=fake.webhook_body(payment["id"]), headers=fake.WEBHOOK_HEADERS)

    ``metadata`` must carry ``invoice_id`` (or ``paymenter_reference``) for the worker to book the payment;
    without it the webhook is acknowledged with no effect. Over loopback only,
    ``POST /_test/payments/{id}/status`` with ``{"status": "paid"}`` does what ``set_status`` does.

    Classic Mollie webhooks are unsigned (``id=tr_…``), so no secret is involved: the worker verifies by
    fetching the payment with its own key. A fake clock (a week in the past, +60 s per change) stamps
    ``<status>At`` and webhook arrivals, so a delivery made for an earlier status is visibly older.
    """

    WEBHOOK_HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Mollie HTTP client/1.0"}

    def __init__(self, api_key: str = DEFAULT_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.accounts: set[str] = {api_key}
        self.payments: dict[str, dict[str, Any]] = {}
        self.owners: dict[str, str] = {}  # payment id -> api key of its account
        self.refunds: dict[str, list[dict[str, Any]]] = {}
        self.idempotent: dict[tuple[str, str, str], tuple[int, Any]] = {}  # (key, path, Idempotency-Key)
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []  # method, path, headers, JSON body
        self.clock = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7)

    # --- world building (what a test calls) ----------------------------------------------------------
    def tick(self) -> datetime:
        self.clock += timedelta(seconds=60)
        return self.clock

    def create_payment(
        self,
        value: str,
        currency: str = "EUR",
        *,
        metadata: dict[str, Any] | None = None,
        description: str = "Test payment",
        api_key: str | None = None,
    ) -> dict[str, Any]:
        """An open payment as if created through the API by ``api_key``'s account (default ours)."""
        key = api_key or self.api_key
        self.accounts.add(key)
        body = {
            "amount": {"currency": currency, "value": value},
            "description": description,
            "redirectUrl": "https://billing.example.com/invoices/1?checkPayment=true",
            "webhookUrl": "https://billing.example.com/webhooks/mollie/default",
            "metadata": metadata,
        }
        with self.lock:
            return copy.deepcopy(self._create(key, body))

    def set_status(self, payment_id: str, status: str) -> dict[str, Any]:
        if status not in STATUSES:
            raise ValueError(f"unknown Mollie status {status!r}")
        with self.lock:
            payment = self.payments[payment_id]
            payment["status"] = status
            payment[f"{status}At"] = _iso(self.tick())
            payment["isCancelable"] = False
            if status != "open":
                payment["_links"].pop("checkout", None)
            if status == "paid":
                currency = payment["amount"]["currency"]
                payment["amountRefunded"] = _money(Decimal(0), currency)
                payment["amountRemaining"] = dict(payment["amount"])
                payment["settlementAmount"] = dict(payment["amount"])
            return copy.deepcopy(payment)

    def refund(self, payment_id: str, value: str) -> dict[str, Any]:
        """A refund made in the Mollie dashboard (no API call recorded)."""
        with self.lock:
            return self._reverse(payment_id, "amountRefunded", Decimal(value))

    def chargeback(self, payment_id: str, value: str) -> dict[str, Any]:
        with self.lock:
            return self._reverse(payment_id, "amountChargedBack", Decimal(value))

    def payments_for(self, invoice_id: str | int) -> list[dict[str, Any]]:
        return [p for p in self.payments.values() if (p.get("metadata") or {}).get("invoice_id") == invoice_id]

    # --- webhooks --------------------------------------------------------------------------------------
    @staticmethod
    def webhook_body(payment_id: str) -> str:
        return urlencode({"id": payment_id})

    def webhook(self, payment_id: str, received_at: datetime | None = None) -> dict[str, Any]:
        """The delivery Mollie makes now for ``payment_id``, as the ``webhook`` kwarg of a job."""
        arrived = received_at or self.tick()
        return {
            "body": self.webhook_body(payment_id),
            "headers": dict(self.WEBHOOK_HEADERS),
            "query": {},
            "received_at": _iso(arrived),
        }

    # --- the API ---------------------------------------------------------------------------------------
    def route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body: Any = None
        if request.content:
            try:
                body = json.loads(request.content)
            except ValueError:
                return problem(400, "Bad Request", "The request body is not valid JSON")
        self.requests.append((request.method, path, dict(request.headers), body))
        if request.method == "POST" and (match := CONTROL_PATH.fullmatch(path)):
            return self._control(match.group(1), body)
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if key not in self.accounts or not key.startswith(("test_", "live_")):
            return problem(401, "Unauthorized Request", "Missing authentication, or failed to authenticate")
        idempotency = request.headers.get("Idempotency-Key")
        if request.method == "POST" and idempotency and (key, path, idempotency) in self.idempotent:
            return self._json(*self.idempotent[(key, path, idempotency)])
        response = self._api(request.method, path, key, body)
        if request.method == "POST" and idempotency and response.status_code < 500:
            self.idempotent[(key, path, idempotency)] = (response.status_code, json.loads(response.content))
        return response

    def _api(self, method: str, path: str, key: str, body: Any) -> httpx.Response:
        if method == "POST" and path == "/v2/payments":
            error = self._invalid_payment(body)
            return error or self._json(201, self._create(key, body))
        if method == "GET" and path == "/v2/methods":
            methods = [{"resource": "method", "id": m, "status": "activated"} for m in ("ideal", "creditcard")]
            return self._json(200, {"count": len(methods), "_embedded": {"methods": methods}})
        if method == "POST" and (match := REFUNDS_PATH.fullmatch(path)):
            return self._create_refund(key, match.group(1), body)
        if method == "GET" and (match := PAYMENT_PATH.fullmatch(path)):
            payment_id = match.group(1)
            if self.owners.get(payment_id) != key:
                return problem(404, "Not Found", f"No payment exists with token {payment_id}.")
            return self._json(200, self.payments[payment_id])
        return problem(404, "Not Found", "The resource does not exist")

    def _invalid_payment(self, body: Any) -> httpx.Response | None:
        if not isinstance(body, dict):
            return _unprocessable("The amount is required", "amount")
        amount = body.get("amount") or {}
        currency, value = str(amount.get("currency", "")), str(amount.get("value", ""))
        if currency not in SUPPORTED:
            return _unprocessable(f"The currency {currency!r} is not supported", "amount.currency")
        decimals = _decimals(currency)
        if not re.fullmatch(r"\d+" + (rf"\.\d{{{decimals}}}" if decimals else ""), value) or Decimal(value) <= 0:
            return _unprocessable(f"The amount contains an invalid value for {currency}", "amount.value")
        if not body.get("description"):
            return _unprocessable("The description is required", "description")
        if not body.get("redirectUrl"):
            return _unprocessable("The redirect URL is required", "redirectUrl")
        host = urlsplit(str(body.get("webhookUrl") or "")).hostname or ""
        if body.get("webhookUrl") and (host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")):
            return _unprocessable("The webhook URL is unreachable from Mollie's point of view", "webhookUrl")
        return None

    def _create(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        token = secrets.token_hex(5)
        payment_id = f"tr_{token}"
        currency = body["amount"]["currency"]
        created = self.tick()
        payment: dict[str, Any] = {
            "resource": "payment",
            "id": payment_id,
            "mode": "live" if key.startswith("live_") else "test",
            "createdAt": _iso(created),
            "amount": _money(Decimal(body["amount"]["value"]), currency),
            "description": body["description"],
            "method": None,
            "metadata": body.get("metadata"),
            "status": "open",
            "isCancelable": False,
            "expiresAt": _iso(created + timedelta(minutes=15)),
            "profileId": "pfl_fake000001",
            "sequenceType": "oneoff",
            "redirectUrl": body.get("redirectUrl"),
            "webhookUrl": body.get("webhookUrl"),
            "_links": {
                "self": {"href": f"{self.base_url}/v2/payments/{payment_id}", "type": "application/hal+json"},
                "checkout": {"href": f"https://www.mollie.com/checkout/select-method/{token}", "type": "text/html"},
            },
        }
        if body.get("cancelUrl"):
            payment["cancelUrl"] = body["cancelUrl"]
        self.payments[payment_id] = payment
        self.owners[payment_id] = key
        return payment

    def _create_refund(self, key: str, payment_id: str, body: Any) -> httpx.Response:
        payment = self.payments.get(payment_id)
        if payment is None or self.owners.get(payment_id) != key:
            return problem(404, "Not Found", f"No payment exists with token {payment_id}.")
        if payment["status"] != "paid":
            return _unprocessable("The payment cannot be refunded", "amount")
        amount = (body or {}).get("amount") or {}
        currency = payment["amount"]["currency"]
        if amount.get("currency") != currency:
            return _unprocessable("The refund currency must match the payment's", "amount.currency")
        value = Decimal(str(amount.get("value", "0")))
        if value <= 0 or value > Decimal(payment["amountRemaining"]["value"]):
            return _unprocessable("The amount is higher than the amount that can be refunded", "amount.value")
        self._reverse(payment_id, "amountRefunded", value)
        refund = {
            "resource": "refund",
            "id": f"re_{secrets.token_hex(5)}",
            "amount": _money(value, currency),
            "status": "pending",
            "createdAt": _iso(self.tick()),
            "description": (body or {}).get("description", ""),
            "metadata": (body or {}).get("metadata"),
            "paymentId": payment_id,
        }
        self.refunds.setdefault(payment_id, []).append(refund)
        return self._json(201, refund)

    def _reverse(self, payment_id: str, field: str, value: Decimal) -> dict[str, Any]:
        payment = self.payments[payment_id]
        currency = payment["amount"]["currency"]
        current = Decimal(payment.get(field, {}).get("value", "0"))
        payment[field] = _money(current + value, currency)
        reversed_total = sum(
            Decimal(payment.get(f, {}).get("value", "0")) for f in ("amountRefunded", "amountChargedBack")
        )
        remaining = max(Decimal(payment["amount"]["value"]) - reversed_total, Decimal(0))
        payment["amountRemaining"] = _money(remaining, currency)
        return copy.deepcopy(payment)

    def _control(self, payment_id: str, body: Any) -> httpx.Response:
        if payment_id not in self.payments or not isinstance(body, dict):
            return problem(404, "Not Found", f"No payment exists with token {payment_id}.")
        if body.get("status"):
            self.set_status(payment_id, str(body["status"]))
        for field in ("amountRefunded", "amountChargedBack"):  # totals, as Mollie reports them
            if body.get(field):
                current = Decimal(self.payments[payment_id].get(field, {}).get("value", "0"))
                self._reverse(payment_id, field, Decimal(str(body[field])) - current)
        return self._json(200, self.payments[payment_id])

    @staticmethod
    def _json(status: int, body: Any) -> httpx.Response:
        return httpx.Response(status, json=copy.deepcopy(body), headers={"Content-Type": "application/hal+json"})


def _iso(moment: datetime) -> str:
    return moment.isoformat()
