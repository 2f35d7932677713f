"""A stateful PayPal REST API plus the webhook signer of its notification service.

State: OAuth tokens, Orders v2 (CREATED/PAYER_ACTION_REQUIRED → APPROVED → COMPLETED with captures),
captures and their refunds, Vault v3 setup and payment tokens, billing plans and subscriptions. Modelled on
PayPal's rules where they matter to a client:

- ``POST /v1/oauth2/token`` checks Basic auth; other calls need a live Bearer token (401 otherwise);
- a POST repeating a ``PayPal-Request-Id`` gets the stored answer of the first one (nothing happens again);
- amounts: HUF, JPY and TWD refuse decimals (``DECIMALS_NOT_SUPPORTED``), others take at most two,
  unknown currencies are ``CURRENCY_NOT_SUPPORTED``;
- ``invoice_id`` of a completed order cannot be used again (``DUPLICATE_INVOICE_ID``) while
  ``block_duplicate_invoice_ids`` is on; capturing twice is ``ORDER_ALREADY_CAPTURED``;
- ``POST /v1/notifications/verify-webhook-signature`` answers ``SUCCESS`` only for a transmission this fake
  signed, with the same headers, the configured ``webhook_id`` and ``webhook_event`` equal to the signed
  body both as JSON and byte for byte (spliced verbatim; re-encoding loses ``{}`` or ``10.10``);
- a plan has TRIAL cycles (sequence 1, 2) before its one REGULAR cycle; a subscription references a plan and
  keeps its own price overrides per cycle, shown (with its other cycles, without tenure types) only by
  ``GET /v1/billing/subscriptions/{id}?fields=plan``; ``PATCH`` takes a JSON-Patch array and only
  ``replace``/``add`` on ``/plan/billing_cycles/@sequence==N/pricing_scheme/fixed_price`` of an existing
  cycle, with a valid amount in the plan's currency, on a subscription that is not CANCELLED or EXPIRED.

Knobs beyond the base ones: ``capture_outcome`` (``COMPLETED``, ``PENDING``, ``DECLINED`` or
``INSTRUMENT_DECLINED``), ``block_duplicate_invoice_ids``, ``expire_tokens()``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from tests.fakes.base import FakeProvider

ZERO_DECIMAL = {"HUF", "JPY", "TWD"}
CURRENCIES = ZERO_DECIMAL | set(
    "AUD BRL CAD CHF CNY CZK DKK EUR GBP HKD ILS MXN MYR NOK NZD PHP PLN SEK SGD THB USD".split()
)
FIELDS = ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time")
CERT_URL = "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime | None = None) -> str:
    return (moment or _now()).isoformat(timespec="seconds").replace("+00:00", "Z")


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def _error(status: int, name: str, issue: str | None = None, message: str = "") -> httpx.Response:
    body: dict[str, Any] = {"name": name, "message": message or name, "debug_id": uuid.uuid4().hex[:13]}
    if issue:
        body["details"] = [{"issue": issue, "description": issue.replace("_", " ").lower()}]
    return _json(status, body)


def _pid(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex[:17].upper()


class FakePayPal(FakeProvider):
    def __init__(
        self,
        client_id: str = "AeFakeClientId0001",
        client_secret: str = "EFakeClientSecret0001xyz",
        webhook_id: str = "8PT597110X687430LKGECATA",
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_id = webhook_id
        self.capture_outcome = "COMPLETED"
        self.block_duplicate_invoice_ids = True
        self.tokens: list[str] = []
        self.live_tokens: set[str] = set()
        self.orders: dict[str, dict[str, Any]] = {}
        self.captures: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.setup_tokens: dict[str, dict[str, Any]] = {}
        self.payment_tokens: dict[str, dict[str, Any]] = {}
        self.plans: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.request_ids: list[tuple[str, str]] = []  # (path, PayPal-Request-Id) of every POST
        self.verify_bodies: list[str] = []
        self._replies: dict[tuple[str, str], tuple[int, Any]] = {}
        self._signed: dict[str, tuple[str, str, str]] = {}  # transmission id -> (sig, time, raw body)
        self._signing_key = uuid.uuid4().bytes

    # --- world building and test helpers -------------------------------------------------------------
    def expire_tokens(self) -> None:
        self.live_tokens.clear()

    def approve(self, order_id: str) -> None:
        """The buyer approves the order in PayPal's window."""
        self.orders[order_id]["status"] = "APPROVED"

    def settle(self, order_id: str, status: str = "COMPLETED") -> dict[str, Any]:
        """Move the order's capture to ``status`` (creating it), as a completed checkout would."""
        order = self.orders[order_id]
        payments = order["purchase_units"][0].setdefault("payments", {"captures": []})
        if payments["captures"]:
            capture = payments["captures"][0]
            capture["status"] = status
            if status == "COMPLETED":
                capture["seller_receivable_breakdown"] = self._breakdown(capture["amount"])
        else:
            capture = self._new_capture(order, status)
        order["status"] = "COMPLETED"
        return capture

    def add_plan(self, regular: str = "10.00", currency: str = "USD", trials: tuple[str, ...] = ("0",)) -> str:
        """A plan with one TRIAL cycle per price in ``trials`` (0 to 2, as PayPal allows), then its REGULAR cycle."""
        plan_id = _pid("P-")
        tenures = [("TRIAL", price, 1) for price in trials] + [("REGULAR", regular, 0)]
        cycles = [
            {
                "frequency": {"interval_unit": "MONTH", "interval_count": 1},
                "tenure_type": tenure,
                "sequence": n,
                "total_cycles": total,
                "pricing_scheme": {"version": 1, "fixed_price": {"currency_code": currency, "value": price}},
            }
            for n, (tenure, price, total) in enumerate(tenures, 1)
        ]
        self.plans[plan_id] = {"id": plan_id, "product_id": _pid("PROD-"), "status": "ACTIVE", "billing_cycles": cycles}
        return plan_id

    def add_subscription(
        self, subscription_id: str, status: str = "ACTIVE", plan_id: str | None = None, price: str | None = None
    ) -> None:
        """A subscription on ``plan_id`` (a new plan when None); ``price`` overrides its REGULAR cycle's price."""
        plan_id = plan_id or self.add_plan()
        subscription = {"id": subscription_id, "status": status, "plan_id": plan_id, "overrides": {}, "patches": []}
        self.subscriptions[subscription_id] = subscription
        if price is not None:
            (regular,) = [c for c in self.plans[plan_id]["billing_cycles"] if c["tenure_type"] == "REGULAR"]
            currency = regular["pricing_scheme"]["fixed_price"]["currency_code"]
            subscription["overrides"][regular["sequence"]] = {"currency_code": currency, "value": price}

    def price_of(self, subscription_id: str, sequence: int) -> dict[str, str]:
        """What the subscription pays in cycle ``sequence``: its own override, else the plan's price."""
        subscription = self.subscriptions[subscription_id]
        (cycle,) = [c for c in self.plans[subscription["plan_id"]]["billing_cycles"] if c["sequence"] == sequence]
        return dict(subscription["overrides"].get(sequence) or cycle["pricing_scheme"]["fixed_price"])

    def approve_setup_token(self, setup_id: str, email: str = "buyer@example.com") -> None:
        self.setup_tokens[setup_id]["status"] = "APPROVED"
        self.setup_tokens[setup_id]["email"] = email

    def add_payment_token(self, email: str = "buyer@example.com") -> str:
        token_id = _pid()
        self.payment_tokens[token_id] = {
            "id": token_id,
            "customer": {"id": _pid("C")},
            "payment_source": {"paypal": {"email_address": email}},
        }
        return token_id

    def orders_for(self, invoice_ref: str) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["purchase_units"][0].get("invoice_id") == invoice_ref]

    # --- webhooks ------------------------------------------------------------------------------------
    def event(self, event_type: str, resource: dict[str, Any], *, event_id: str | None = None, **extra: Any) -> str:
        """The raw JSON text of a webhook event, formatted the way PayPal sends it (unicode unescaped)."""
        body = {
            "id": event_id or f"WH-{_pid()}-{_pid()}",
            "event_version": "1.0",
            "create_time": _stamp(),
            "resource_type": extra.pop("resource_type", "capture"),
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": f"Événement {event_type}",
            "resource": resource,
            "links": [],
            **extra,
        }
        return json.dumps(body, ensure_ascii=False)

    def capture_event(self, capture: dict[str, Any], event_type: str | None = None) -> str:
        kind = event_type or {"COMPLETED": "PAYMENT.CAPTURE.COMPLETED", "PENDING": "PAYMENT.CAPTURE.PENDING"}.get(
            capture["status"], "PAYMENT.CAPTURE.DENIED"
        )
        return self.event(kind, json.loads(json.dumps(capture)))

    def signature(self, transmission_id: str, sent: str, body: str, webhook_id: str | None = None) -> str:
        crc = zlib.crc32(body.encode()) & 0xFFFFFFFF
        message = f"{transmission_id}|{sent}|{webhook_id or self.webhook_id}|{crc}".encode()
        return base64.b64encode(hmac.new(self._signing_key, message, hashlib.sha256).digest()).decode()

    def deliver(
        self, body: str, *, sent_at: datetime | None = None, received_at: datetime | None = None
    ) -> dict[str, Any]:
        """Sign ``body`` as a new transmission (a re-send gets a new id and time) and give the delivery."""
        transmission_id, sent = str(uuid.uuid4()), _stamp(sent_at)
        signature = self.signature(transmission_id, sent, body)
        self._signed[transmission_id] = (signature, sent, body)
        headers = {
            "Paypal-Auth-Algo": "SHA256withRSA",
            "Paypal-Cert-Url": CERT_URL,
            "Paypal-Transmission-Id": transmission_id,
            "Paypal-Transmission-Sig": signature,
            "Paypal-Transmission-Time": sent,
            "Content-Type": "application/json",
        }
        return {"body": body, "headers": headers, "query": {}, "received_at": _stamp(received_at)}

    # --- routing -------------------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path != "/v1/oauth2/token":  # also the failed attempts
            self.request_ids.append((request.url.path, request.headers.get("PayPal-Request-Id", "")))
        return super().handle(request)

    def route(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/v1/oauth2/token":
            return self._token(request)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.live_tokens:
            return _error(401, "AUTHENTICATION_FAILURE", message="Authentication failed due to invalid credentials")
        request_id = request.headers.get("PayPal-Request-Id")
        if method == "POST" and request_id:
            if (path, request_id) in self._replies:
                status, body = self._replies[(path, request_id)]
                return _json(status, body) if body is not None else httpx.Response(status)
        response = self._dispatch(method, path, request)
        if method == "POST" and request_id and response.status_code < 300:
            self._replies[(path, request_id)] = (response.status_code, json.loads(response.content or b"null"))
        return response

    def _dispatch(self, method: str, path: str, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"null") if method in ("POST", "PATCH") else None
        routes: list[tuple[str, str, Any]] = [
            ("POST", r"/v1/notifications/verify-webhook-signature", lambda: self._verify(request)),
            ("POST", r"/v2/checkout/orders", lambda: self._create_order(body)),
            ("GET", r"/v2/checkout/orders/([^/]+)", lambda i: self._found(self.orders, i)),
            ("POST", r"/v2/checkout/orders/([^/]+)/capture", lambda i: self._capture(i)),
            ("GET", r"/v2/payments/captures/([^/]+)", lambda i: self._found(self.captures, i)),
            ("POST", r"/v2/payments/captures/([^/]+)/refund", lambda i: self._refund(i, body or {})),
            ("POST", r"/v3/vault/setup-tokens", lambda: self._setup_token(body)),
            ("POST", r"/v3/vault/payment-tokens", lambda: self._payment_token(body)),
            ("DELETE", r"/v3/vault/payment-tokens/([^/]+)", lambda i: self._delete_token(i)),
            ("POST", r"/v1/billing/subscriptions/([^/]+)/cancel", lambda i: self._cancel_subscription(i)),
            ("GET", r"/v1/billing/subscriptions/([^/]+)", lambda i: self._subscription(i, request)),
            ("PATCH", r"/v1/billing/subscriptions/([^/]+)", lambda i: self._patch_subscription(i, body)),
            ("GET", r"/v1/billing/plans/([^/]+)", lambda i: self._found(self.plans, i)),
        ]
        for verb, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                result: httpx.Response = handler(*match.groups())
                return result
        return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")

    # --- handlers ------------------------------------------------------------------------------------
    def _token(self, request: httpx.Request) -> httpx.Response:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return _json(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
        if b"grant_type=client_credentials" not in request.content:
            return _json(400, {"error": "unsupported_grant_type", "error_description": "Grant type is required"})
        token = f"A21AAFakeAccessToken{len(self.tokens) + 1:04d}xyz"
        self.tokens.append(token)
        self.live_tokens.add(token)
        return _json(
            200,
            {
                "scope": "https://uri.paypal.com/services/payments",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": 32400,
            },
        )

    def _found(self, table: dict[str, dict[str, Any]], key: str) -> httpx.Response:
        if key not in table:
            return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        return _json(200, table[key])

    def _amount_problem(self, amount: Any) -> str | None:
        if not isinstance(amount, dict) or not isinstance(amount.get("value"), str):
            return "INVALID_PARAMETER_VALUE"
        code, value = amount.get("currency_code"), amount["value"]
        if code not in CURRENCIES:
            return "CURRENCY_NOT_SUPPORTED"
        if code in ZERO_DECIMAL and "." in value:
            return "DECIMALS_NOT_SUPPORTED"
        if not re.fullmatch(r"\d+(\.\d{1,2})?", value) or Decimal(value) <= 0:
            return "INVALID_PARAMETER_VALUE"
        return None

    def _duplicate(self, invoice_id: str | None) -> bool:
        if not self.block_duplicate_invoice_ids or not invoice_id:
            return False
        return any(c.get("invoice_id") == invoice_id and c["status"] != "DECLINED" for c in self.captures.values())

    def _create_order(self, body: Any) -> httpx.Response:
        if not isinstance(body, dict) or body.get("intent") != "CAPTURE" or not body.get("purchase_units"):
            return _error(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER")
        unit = dict(body["purchase_units"][0])
        problem = self._amount_problem(unit.get("amount"))
        if problem:
            return _error(422, "UNPROCESSABLE_ENTITY", problem)
        if self._duplicate(unit.get("invoice_id")):
            return _error(422, "UNPROCESSABLE_ENTITY", "DUPLICATE_INVOICE_ID")
        order_id = _pid()
        paypal = (body.get("payment_source") or {}).get("paypal") or {}
        order: dict[str, Any] = {"id": order_id, "intent": "CAPTURE", "purchase_units": [unit], "create_time": _stamp()}
        base = f"{self.base_url}/v2/checkout/orders/{order_id}"
        if paypal.get("vault_id"):
            if paypal["vault_id"] not in self.payment_tokens:
                return _error(422, "UNPROCESSABLE_ENTITY", "INVALID_RESOURCE_ID")
            if self.capture_outcome == "INSTRUMENT_DECLINED":
                return _error(422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED")
            self.orders[order_id] = order  # a saved account pays at once: created and captured in one call
            order["payment_source"] = {"paypal": {"attributes": {"vault": {"id": paypal["vault_id"]}}}}
            self._new_capture(order, self.capture_outcome)
            order["status"] = "COMPLETED"
        elif paypal.get("experience_context"):
            order["status"] = "PAYER_ACTION_REQUIRED"
            approve = f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}"
            order["links"] = [{"href": base, "rel": "self"}, {"href": approve, "rel": "payer-action"}]
        else:
            order["status"] = "CREATED"
            approve = f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}"
            order["links"] = [{"href": base, "rel": "self"}, {"href": approve, "rel": "approve"}]
        self.orders[order_id] = order
        return _json(201, order)

    def _breakdown(self, amount: dict[str, str]) -> dict[str, Any]:
        code, gross = amount["currency_code"], Decimal(amount["value"])
        quantum = Decimal(1) if code in ZERO_DECIMAL else Decimal("0.01")
        fee = (gross * Decimal("0.0349") + Decimal("0.49")).quantize(quantum)
        return {
            "gross_amount": dict(amount),
            "paypal_fee": {"currency_code": code, "value": str(fee)},
            "net_amount": {"currency_code": code, "value": str(gross - fee)},
        }

    def _new_capture(self, order: dict[str, Any], status: str) -> dict[str, Any]:
        unit = order["purchase_units"][0]
        capture: dict[str, Any] = {
            "id": _pid(),
            "status": status,
            "amount": dict(unit["amount"]),
            "invoice_id": unit.get("invoice_id"),
            "final_capture": True,
            "create_time": _stamp(),
            "supplementary_data": {"related_ids": {"order_id": order["id"]}},
            "links": [{"href": f"{self.base_url}/v2/checkout/orders/{order['id']}", "rel": "up"}],
        }
        if status == "COMPLETED":
            capture["seller_receivable_breakdown"] = self._breakdown(unit["amount"])
        if status == "PENDING":
            capture["status_details"] = {"reason": "PENDING_REVIEW"}
        unit.setdefault("payments", {"captures": []})["captures"].append(capture)
        self.captures[capture["id"]] = capture
        return capture

    def _capture(self, order_id: str) -> httpx.Response:
        order = self.orders.get(order_id)
        if order is None:
            return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        if order["status"] == "COMPLETED" or order["purchase_units"][0].get("payments"):
            return _error(422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED")
        if order["status"] != "APPROVED":
            return _error(422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED")
        if self.capture_outcome == "INSTRUMENT_DECLINED":
            return _error(422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED")
        if self._duplicate(order["purchase_units"][0].get("invoice_id")):
            return _error(422, "UNPROCESSABLE_ENTITY", "DUPLICATE_INVOICE_ID")
        self._new_capture(order, self.capture_outcome)
        order["status"] = "COMPLETED"
        return _json(201, order)

    def _refund(self, capture_id: str, body: dict[str, Any]) -> httpx.Response:
        capture = self.captures.get(capture_id)
        if capture is None:
            return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        if capture["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED"):
            return _error(422, "UNPROCESSABLE_ENTITY", "CAPTURE_FULLY_REFUNDED")
        code = capture["amount"]["currency_code"]
        done = sum(
            (Decimal(r["amount"]["value"]) for r in self.refunds.values() if r["capture"] == capture_id), Decimal(0)
        )
        remaining = Decimal(capture["amount"]["value"]) - done
        amount = body.get("amount") or {"currency_code": code, "value": str(remaining)}
        if self._amount_problem(amount) or amount["currency_code"] != code:
            return _error(422, "UNPROCESSABLE_ENTITY", self._amount_problem(amount) or "REFUND_CURRENCY_MISMATCH")
        if Decimal(amount["value"]) > remaining:
            return _error(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED")
        refund_id = _pid()
        refund = {
            "id": refund_id,
            "status": "COMPLETED",
            "amount": amount,
            "invoice_id": capture.get("invoice_id"),
            "note_to_payer": body.get("note_to_payer"),
            "create_time": _stamp(),
            "links": [
                {"href": f"{self.base_url}/v2/payments/refunds/{refund_id}", "rel": "self"},
                {"href": f"{self.base_url}/v2/payments/captures/{capture_id}", "rel": "up"},
            ],
        }
        self.refunds[refund_id] = {**refund, "capture": capture_id}
        capture["status"] = "REFUNDED" if Decimal(amount["value"]) == remaining else "PARTIALLY_REFUNDED"
        return _json(201, refund)

    def _setup_token(self, body: Any) -> httpx.Response:
        paypal = ((body or {}).get("payment_source") or {}).get("paypal") or {}
        context = paypal.get("experience_context") or {}
        if not context.get("return_url") or not context.get("cancel_url") or paypal.get("usage_type") != "MERCHANT":
            return _error(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER")
        setup_id = _pid()
        approve = f"https://www.sandbox.paypal.com/agreements/approve?approval_session_id={setup_id}"
        self.setup_tokens[setup_id] = {"id": setup_id, "status": "PAYER_ACTION_REQUIRED", "request": paypal}
        links = [
            {"href": f"{self.base_url}/v3/vault/setup-tokens/{setup_id}", "rel": "self", "method": "GET"},
            {"href": f"{self.base_url}/v3/vault/payment-tokens", "rel": "confirm", "method": "POST"},
            {"href": approve, "rel": "approve", "method": "GET"},
        ]
        return _json(200, {"id": setup_id, "status": "PAYER_ACTION_REQUIRED", "links": links})

    def _payment_token(self, body: Any) -> httpx.Response:
        token = ((body or {}).get("payment_source") or {}).get("token") or {}
        setup = self.setup_tokens.get(token.get("id", ""))
        if token.get("type") != "SETUP_TOKEN" or setup is None:
            return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        if setup["status"] != "APPROVED":
            return _error(422, "UNPROCESSABLE_ENTITY", "SETUP_TOKEN_NOT_APPROVED")
        token_id = self.add_payment_token(setup["email"])
        setup["status"] = "VAULTED"
        return _json(200, self.payment_tokens[token_id])

    def _delete_token(self, token_id: str) -> httpx.Response:
        if self.payment_tokens.pop(token_id, None) is None:
            return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        return httpx.Response(204)

    def _cancel_subscription(self, subscription_id: str) -> httpx.Response:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        if subscription["status"] not in ("ACTIVE", "SUSPENDED"):
            return _error(422, "UNPROCESSABLE_ENTITY", "SUBSCRIPTION_STATUS_INVALID")
        subscription["status"] = "CANCELLED"
        return httpx.Response(204)

    def _subscription(self, subscription_id: str, request: httpx.Request) -> httpx.Response:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        shown = {k: subscription[k] for k in ("id", "status", "plan_id")}
        shown["plan_overridden"] = bool(subscription["overrides"])
        if "plan" in request.url.params.get("fields", "").split(","):
            cycles = self.plans[subscription["plan_id"]]["billing_cycles"]
            shown["plan"] = {
                "billing_cycles": [
                    {
                        "sequence": c["sequence"],
                        "total_cycles": c["total_cycles"],
                        "pricing_scheme": {"fixed_price": self.price_of(subscription_id, c["sequence"])},
                    }
                    for c in cycles
                ]
            }
        return _json(200, shown)

    def _patch_subscription(self, subscription_id: str, body: Any) -> httpx.Response:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        if not isinstance(body, list) or not body or not all(isinstance(p, dict) and p.get("op") for p in body):
            return _error(400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON")
        if subscription["status"] in ("CANCELLED", "EXPIRED"):
            return _error(422, "UNPROCESSABLE_ENTITY", "SUBSCRIPTION_STATUS_INVALID")
        plan = self.plans[subscription["plan_id"]]
        sequences = {c["sequence"] for c in plan["billing_cycles"]}
        changes: dict[int, dict[str, str]] = {}
        for patch in body:  # all or nothing: a bad operation leaves every price as it was
            match = re.fullmatch(
                r"/plan/billing_cycles/@sequence==(\d+)/pricing_scheme/fixed_price", str(patch.get("path"))
            )
            if match is None or int(match.group(1)) not in sequences:
                return _error(400, "INVALID_REQUEST", "INVALID_PATCH_PATH")
            if patch["op"] not in ("replace", "add"):
                return _error(400, "INVALID_REQUEST", "UNSUPPORTED_PATCH_OPERATION")
            sequence, value = int(match.group(1)), patch.get("value")
            problem = self._amount_problem(value)
            if problem is None and value["currency_code"] != self.price_of(subscription_id, sequence)["currency_code"]:
                problem = "INVALID_PARAMETER_VALUE"  # a subscription keeps its currency
            if problem:
                return _error(422, "UNPROCESSABLE_ENTITY", problem)
            changes[sequence] = {"currency_code": value["currency_code"], "value": value["value"]}
        subscription["overrides"].update(changes)
        subscription["patches"].append(body)
        return httpx.Response(204)

    def _verify(self, request: httpx.Request) -> httpx.Response:
        text = request.content.decode()
        self.verify_bodies.append(text)
        try:
            body = json.loads(text, parse_float=Decimal)
        except ValueError:
            return _error(400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON")
        if not isinstance(body, dict) or any(not body.get(f) for f in (*FIELDS, "webhook_id", "webhook_event")):
            return _error(400, "VALIDATION_ERROR", "MISSING_REQUIRED_PARAMETER")
        return _json(200, {"verification_status": "SUCCESS" if self._genuine(body, text) else "FAILURE"})

    def _genuine(self, body: dict[str, Any], text: str) -> bool:
        signed = self._signed.get(body["transmission_id"])
        if signed is None or body["webhook_id"] != self.webhook_id:
            return False
        signature, sent, raw = signed
        if body["transmission_sig"] != signature or body["transmission_time"] != sent:
            return False
        if body["transmission_sig"] != self.signature(body["transmission_id"], sent, raw, body["webhook_id"]):
            return False
        # Same event as JSON, and forwarded byte for byte (no key lost, no float or `{}` rewritten).
        return body["webhook_event"] == json.loads(raw, parse_float=Decimal) and raw in text


def stale(minutes: int) -> datetime:
    """A moment ``minutes`` ago (for transmission times outside the tolerance)."""
    return _now() - timedelta(minutes=minutes)
