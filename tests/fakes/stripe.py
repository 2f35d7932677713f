"""A stateful Stripe API (form-encoded in, JSON out) and the signer of its webhooks.

State: customers, PaymentIntents, SetupIntents, PaymentMethods, charges with their balance transactions,
refunds, subscriptions and webhook endpoints. Rules a client depends on are modelled:

- ``Authorization: Bearer <secret key>`` and ``Stripe-Version`` are checked (401 / 400);
- a POST with an ``Idempotency-Key`` seen before gets the stored response back (``Idempotent-Replayed:
  true``) when its parameters match, 400 ``idempotency_error`` when they differ; every key is logged in
  ``idempotency_keys``;
- amounts follow Stripe's currency rules: lower-case currency, ISK in whole krona (×100), three-decimal
  currencies ending in 0;
- a PaymentIntent is ``requires_payment_method`` until ``settle()`` moves it; an off-session confirm
  succeeds at once (``processing`` for SEPA Direct Debit) unless ``decline_next()`` scripted a 402
  ``card_error``; success makes a charge with a balance transaction (fee 2.9 % + 30);
- refunds cannot exceed what is left on the charge; detaching an unattached method is a 400;
- webhook endpoints are listed newest first in pages (``limit``, default 10, at most 100, ``starting_after``,
  ``has_more``); their ``secret`` is in the create answer only (and in its idempotent replay); deleting an
  unknown id is a 404 ``resource_missing``.

Knobs beyond the base ones: ``decline_next(decline_code, code)``, ``error_next(status, type, code,
match, headers)`` for Stripe-shaped errors (429, 500, ``Stripe-Should-Retry``).

Webhooks: ``event(type, obj)`` builds an event ``evt_…``; ``deliver(event)`` signs ``json.dumps(event)``
as Stripe does (``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>." + body>``) and returns the
``webhook`` kwarg; ``settle``, ``complete_setup`` and ``refunded_event`` produce the events Stripe would.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx

from tests.fakes.base import FakeProvider

API_VERSION = "2025-07-30.basil"
OPEN = ("requires_payment_method", "requires_confirmation", "requires_action")
THREE_DECIMAL = {"bhd", "jod", "kwd", "omr", "tnd"}
PI_EVENT = {"succeeded": "succeeded", "processing": "processing", "failed": "payment_failed"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def error(
    status: int, message: str, type_: str = "invalid_request_error", headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    return httpx.Response(status, json={"error": {"type": type_, "message": message, **extra}}, headers=headers)


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``metadata[invoice_id]=7`` → ``{"metadata": {"invoice_id": "7"}}``; numeric keys become lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key) or [key]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def lists(node: Any) -> Any:
        if isinstance(node, dict):
            if node and all(k.isdigit() for k in node):
                return [lists(node[k]) for k in sorted(node, key=int)]
            return {k: lists(v) for k, v in node.items()}
        return node

    result: dict[str, Any] = lists(root)
    return result


@dataclass
class _Scripted:
    pattern: re.Pattern[str]
    status: int
    type_: str
    code: str | None
    headers: dict[str, str]


class FakeStripe(FakeProvider):
    def __init__(
        self,
        secret_key: str = "sk_test_fakesecret000000000000",
        webhook_secret: str = "whsec_fakewebhooksecret0000000000",
        publishable_key: str = "pk_test_fakepublishable00000000",
    ) -> None:
        super().__init__()
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.publishable_key = publishable_key
        self.customers: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.setup_intents: dict[str, dict[str, Any]] = {}
        self.methods: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.balance: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.webhook_endpoints: dict[str, dict[str, Any]] = {}
        self.idempotency_keys: list[tuple[str, str]] = []
        self._stored: dict[str, tuple[str, int, bytes]] = {}
        self._declines: list[tuple[str, str]] = []
        self._errors: list[_Scripted] = []

    # --- knobs --------------------------------------------------------------------------------------
    def decline_next(self, decline_code: str = "insufficient_funds", code: str = "card_declined") -> None:
        self._declines.append((code, decline_code))

    def error_next(
        self,
        status: int,
        type_: str = "api_error",
        code: str | None = None,
        match: str = ".*",
        headers: dict[str, str] | None = None,
    ) -> None:
        self._errors.append(_Scripted(re.compile(match), status, type_, code, headers or {}))

    def keys_for(self, path_pattern: str) -> list[str]:
        return [key for path, key in self.idempotency_keys if re.fullmatch(path_pattern, path)]

    # --- world building -----------------------------------------------------------------------------
    def add_customer(self, email: str = "alice@example.com", **fields: Any) -> dict[str, Any]:
        customer = {"id": new_id("cus"), "object": "customer", "email": email, "metadata": {}, **fields}
        self.customers[customer["id"]] = customer
        return customer

    def add_payment_method(self, customer: str | None, type_: str = "card", **details: Any) -> dict[str, Any]:
        if type_ == "card":
            details = {"brand": "visa", "last4": "4242", "exp_month": 2, "exp_year": 2028, **details}
        elif not details:
            details = {"last4": "3000"}
        method = {"id": new_id("pm"), "object": "payment_method", "type": type_, "customer": customer, type_: details}
        self.methods[method["id"]] = method
        return method

    def add_subscription(self, customer: str) -> dict[str, Any]:
        subscription = {"id": new_id("sub"), "object": "subscription", "customer": customer, "status": "active"}
        self.subscriptions[subscription["id"]] = subscription
        return subscription

    def add_webhook_endpoint(self, url: str, events: list[str] | None = None) -> dict[str, Any]:
        endpoint = {
            "id": new_id("we"),
            "object": "webhook_endpoint",
            "url": url,
            "enabled_events": events or ["*"],
            "api_version": None,
            "description": None,
            "status": "enabled",
            "created": int(time.time()),
            "_secret": f"whsec_{secrets.token_hex(16)}",
        }
        self.webhook_endpoints[endpoint["id"]] = endpoint
        return endpoint

    def endpoints_at(self, url: str) -> list[dict[str, Any]]:
        return [e for e in self.webhook_endpoints.values() if e["url"] == url]

    # --- provider-side changes and the events they emit ---------------------------------------------
    def settle(self, intent_id: str, status: str) -> dict[str, Any]:
        """Move a PaymentIntent to ``succeeded``, ``processing`` or ``failed``; the matching event."""
        with self.lock:
            intent = self.intents[intent_id]
            if status == "succeeded":
                self._succeed(intent)
            elif status == "failed":
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {"type": "card_error", "code": "card_declined"}
            else:
                intent["status"] = status
            return self.event(f"payment_intent.{PI_EVENT[status]}", intent)

    def charge_updated_event(self, intent_id: str) -> dict[str, Any]:
        charge = self.charges[self.intents[intent_id]["latest_charge"]]
        return self.event("charge.updated", charge, {"balance_transaction": None})

    def refunded_event(self, refund_id: str) -> dict[str, Any]:
        refund = self.refunds[refund_id]
        return self.event("charge.refunded", refund["_charge"], {"amount_refunded": refund["_before"]})

    def complete_setup(self, setup_id: str, type_: str = "card", **details: Any) -> dict[str, Any]:
        """The customer confirmed the SetupIntent with a ``type_`` method; ``setup_intent.succeeded``."""
        with self.lock:
            setup = self.setup_intents[setup_id]
            attempt_details: dict[str, Any] = {"type": type_}
            if type_ in ("ideal", "bancontact", "sofort"):
                method = self.add_payment_method(None, type_, **details)
                sepa = self.add_payment_method(setup["customer"], "sepa_debit", last4="5264")
                attempt_details[type_] = {"generated_sepa_debit": sepa["id"], **details}
            else:
                method = self.add_payment_method(setup["customer"], type_, **details)
            attempt = {"id": new_id("setatt"), "object": "setup_attempt", "payment_method_details": attempt_details}
            setup.update(status="succeeded", payment_method=method["id"], latest_attempt=attempt)
            return self.event("setup_intent.succeeded", self._setup_view(setup, expand=False))

    def event(self, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"object": copy.deepcopy(self._public(obj))}
        if previous is not None:
            data["previous_attributes"] = previous
        return {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "type": type_,
            "data": data,
        }

    # --- webhook signing ----------------------------------------------------------------------------
    @staticmethod
    def signature(secret: str, timestamp: int, body: str) -> str:
        return hmac.new(secret.encode(), f"{timestamp}.".encode() + body.encode(), hashlib.sha256).hexdigest()

    def deliver(
        self,
        event: dict[str, Any] | str,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        received_at: datetime | None = None,
        header: str | None = None,
    ) -> dict[str, Any]:
        """The ``webhook`` kwarg for ``event`` (or a raw body) signed as Stripe signs it."""
        body = event if isinstance(event, str) else json.dumps(event)
        t = int(time.time()) if timestamp is None else timestamp
        if header is None:
            header = f"t={t},v1={self.signature(secret or self.webhook_secret, t, body)}"
        moment = received_at or datetime.now(UTC)
        return {"body": body, "headers": {"Stripe-Signature": header}, "query": {}, "received_at": moment.isoformat()}

    def resign(self, delivery: dict[str, Any], timestamp: int | None = None) -> dict[str, Any]:
        """The same body delivered again with a fresh timestamp, as Stripe's retries are."""
        old = int(re.search(r"t=(\d+)", delivery["headers"]["Stripe-Signature"]).group(1))  # type: ignore[union-attr]
        return self.deliver(delivery["body"], timestamp=timestamp or max(old + 1, int(time.time())))

    # --- dispatch -----------------------------------------------------------------------------------
    def route(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {self.secret_key}":
            return error(401, "Invalid API Key provided.")
        if request.headers.get("Stripe-Version") != API_VERSION:
            return error(400, f"Invalid Stripe API version: {request.headers.get('Stripe-Version')}")
        key = f"{request.method} {request.url.path}"
        for scripted in self._errors:
            if scripted.pattern.search(key):
                self._errors.remove(scripted)
                return error(scripted.status, "scripted failure", scripted.type_, scripted.headers, code=scripted.code)
        params = nest(parse_qsl(request.content.decode(), keep_blank_values=True)) if request.content else {}
        idempotency = request.headers.get("Idempotency-Key")
        if request.method == "POST" and idempotency:
            self.idempotency_keys.append((request.url.path, idempotency))
            fingerprint = f"{key} {sorted(parse_qsl(request.content.decode()))}"
            stored = self._stored.get(idempotency)
            if stored is not None:
                if stored[0] != fingerprint:
                    return error(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with.",
                        "idempotency_error",
                    )
                return httpx.Response(
                    stored[1],
                    content=stored[2],
                    headers={"Idempotent-Replayed": "true", "Content-Type": "application/json"},
                )
        response = self._dispatch(request, params)
        if request.method == "POST" and idempotency and response.status_code < 500:
            self._stored[idempotency] = (fingerprint, response.status_code, response.content)
        return response

    def _dispatch(self, request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        routes: list[tuple[str, str, Any]] = [
            ("POST", r"/v1/customers", self._create_customer),
            ("GET", r"/v1/customers/([^/]+)", self._get_customer),
            ("POST", r"/v1/payment_intents", self._create_intent),
            ("GET", r"/v1/payment_intents/([^/]+)", lambda p, i: self._found(self.intents, i)),
            ("POST", r"/v1/payment_intents/([^/]+)/cancel", self._cancel_intent),
            ("GET", r"/v1/charges/([^/]+)", lambda p, i: self._found(self.charges, i)),
            ("GET", r"/v1/balance_transactions/([^/]+)", lambda p, i: self._found(self.balance, i)),
            ("POST", r"/v1/refunds", self._create_refund),
            ("POST", r"/v1/setup_intents", self._create_setup),
            ("GET", r"/v1/setup_intents/([^/]+)", self._get_setup),
            ("GET", r"/v1/payment_methods/([^/]+)", lambda p, i: self._found(self.methods, i)),
            ("POST", r"/v1/payment_methods/([^/]+)/detach", self._detach),
            ("DELETE", r"/v1/subscriptions/([^/]+)", self._cancel_subscription),
            ("GET", r"/v1/webhook_endpoints", self._list_endpoints),
            ("POST", r"/v1/webhook_endpoints", self._create_endpoint),
            ("DELETE", r"/v1/webhook_endpoints/([^/]+)", self._delete_endpoint),
        ]
        if request.method == "GET":
            params = nest(list(request.url.params.multi_items()))
        for method, pattern, handler in routes:
            match = re.fullmatch(pattern, request.url.path)
            if method == request.method and match:
                response: httpx.Response = handler(params, *match.groups())
                return response
        return error(404, f"Unrecognized request URL ({request.method}: {request.url.path})")

    # --- handlers -----------------------------------------------------------------------------------
    @staticmethod
    def _public(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def _found(self, table: dict[str, dict[str, Any]], object_id: str) -> httpx.Response:
        if object_id not in table:
            return error(404, f"No such object: '{object_id}'", code="resource_missing")
        return httpx.Response(200, json=self._public(table[object_id]))

    def _create_customer(self, params: dict[str, Any]) -> httpx.Response:
        customer = self.add_customer(params.get("email", ""), **{k: v for k, v in params.items() if k != "email"})
        return httpx.Response(200, json=customer)

    def _get_customer(self, params: dict[str, Any], customer_id: str) -> httpx.Response:
        customer = self.customers.get(customer_id)
        if customer and customer.get("deleted"):
            return httpx.Response(200, json={"id": customer_id, "object": "customer", "deleted": True})
        return self._found(self.customers, customer_id)

    def _amount(self, params: dict[str, Any]) -> tuple[int, str] | httpx.Response:
        currency = str(params.get("currency", ""))
        if not re.fullmatch(r"[a-z]{3}", currency):
            return error(400, f"Invalid currency: {currency}.", param="currency")
        amount = str(params.get("amount", ""))
        if not amount.isdigit() or int(amount) < 1:
            return error(400, "Invalid positive integer", param="amount", code="parameter_invalid_integer")
        if (currency == "isk" and int(amount) % 100) or (currency in THREE_DECIMAL and int(amount) % 10):
            return error(400, "Invalid amount.", code="invalid_charge_amount_no_decimal_compatible")
        return int(amount), currency

    def _create_intent(self, params: dict[str, Any]) -> httpx.Response:
        checked = self._amount(params)
        if isinstance(checked, httpx.Response):
            return checked
        amount, currency = checked
        if params.get("customer") and params["customer"] not in self.customers:
            return error(400, f"No such customer: '{params['customer']}'", code="resource_missing")
        intent_id = new_id("pi")
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": currency,
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "customer": params.get("customer"),
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
            "payment_method": params.get("payment_method"),
            "latest_charge": None,
            "_params": params,
        }
        self.intents[intent_id] = intent
        if params.get("confirm") == "true":
            return self._confirm(intent, params)
        return httpx.Response(200, json=self._public(intent))

    def _confirm(self, intent: dict[str, Any], params: dict[str, Any]) -> httpx.Response:
        method = self.methods.get(str(params.get("payment_method")))
        if method is None:
            return error(400, "No such PaymentMethod", code="resource_missing", param="payment_method")
        if method["customer"] != params.get("customer"):
            return error(400, "The provided PaymentMethod belongs to another customer.", param="payment_method")
        if self._declines:
            code, decline_code = self._declines.pop(0)
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {"type": "card_error", "code": code, "decline_code": decline_code}
            return error(
                402,
                "Your card was declined.",
                "card_error",
                code=code,
                decline_code=decline_code,
                payment_intent=self._public(intent),
            )
        if method["type"] == "sepa_debit":
            intent["status"] = "processing"
        else:
            self._succeed(intent)
        return httpx.Response(200, json=self._public(intent))

    def _succeed(self, intent: dict[str, Any]) -> None:
        intent.update(status="succeeded", amount_received=intent["amount"])
        txn = {
            "id": new_id("txn"),
            "object": "balance_transaction",
            "amount": intent["amount"],
            "currency": intent["currency"],
            "fee": intent["amount"] * 29 // 1000 + 30,
        }
        self.balance[txn["id"]] = txn
        charge = {
            "id": new_id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_refunded": 0,
            "refunded": False,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "balance_transaction": txn["id"],
            "metadata": dict(intent["metadata"]),
        }
        self.charges[charge["id"]] = charge
        intent["latest_charge"] = charge["id"]

    def _cancel_intent(self, params: dict[str, Any], intent_id: str) -> httpx.Response:
        intent = self.intents.get(intent_id)
        if intent is None:
            return error(404, f"No such payment_intent: '{intent_id}'", code="resource_missing")
        if intent["status"] not in OPEN:
            return error(400, f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.")
        intent.update(status="canceled", cancellation_reason=params.get("cancellation_reason"))
        return httpx.Response(200, json=self._public(intent))

    def _create_refund(self, params: dict[str, Any]) -> httpx.Response:
        if "charge" in params:
            charge = self.charges.get(params["charge"])
        else:
            intent = self.intents.get(str(params.get("payment_intent")))
            charge = self.charges.get(str(intent and intent["latest_charge"]))
        if charge is None:
            return error(
                400, "This PaymentIntent does not have a successful charge to refund.", code="charge_not_refundable"
            )
        left = charge["amount"] - charge["amount_refunded"]
        amount = int(params.get("amount", left))
        if amount < 1 or amount > left:
            return error(400, f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})")
        refund = {
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": charge["payment_intent"],
            "status": "succeeded",
            "reason": params.get("reason"),
            "metadata": params.get("metadata", {}),
            "_before": charge["amount_refunded"],
        }
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        refund["_charge"] = copy.deepcopy(charge)  # the charge as this refund left it, for its event
        return httpx.Response(200, json=self._public(refund))

    def _create_setup(self, params: dict[str, Any]) -> httpx.Response:
        if params.get("customer") not in self.customers:
            return error(400, f"No such customer: '{params.get('customer')}'", code="resource_missing")
        setup_id = new_id("seti")
        setup = {
            "id": setup_id,
            "object": "setup_intent",
            "status": "requires_payment_method",
            "client_secret": f"{setup_id}_secret_{secrets.token_hex(8)}",
            "customer": params["customer"],
            "usage": params.get("usage"),
            "metadata": params.get("metadata", {}),
            "payment_method": None,
            "latest_attempt": None,
        }
        self.setup_intents[setup_id] = setup
        return httpx.Response(200, json=self._setup_view(setup, expand=False))

    def _setup_view(self, setup: dict[str, Any], expand: bool) -> dict[str, Any]:
        view = dict(setup)
        attempt = setup.get("latest_attempt")
        if attempt is not None and not expand:
            view["latest_attempt"] = attempt["id"]
        return view

    def _get_setup(self, params: dict[str, Any], setup_id: str) -> httpx.Response:
        setup = self.setup_intents.get(setup_id)
        if setup is None:
            return error(404, f"No such setupintent: '{setup_id}'", code="resource_missing")
        return httpx.Response(200, json=self._setup_view(setup, "latest_attempt" in (params.get("expand") or [])))

    def _detach(self, params: dict[str, Any], method_id: str) -> httpx.Response:
        method = self.methods.get(method_id)
        if method is None:
            return error(404, f"No such PaymentMethod: '{method_id}'", code="resource_missing")
        if method["customer"] is None:
            return error(
                400, "The payment method you provided is not attached to a customer so detachment is impossible."
            )
        method["customer"] = None
        return httpx.Response(200, json=method)

    def _cancel_subscription(self, params: dict[str, Any], subscription_id: str) -> httpx.Response:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            return error(404, f"No such subscription: '{subscription_id}'", code="resource_missing")
        subscription["status"] = "canceled"
        return httpx.Response(200, json=subscription)

    def _list_endpoints(self, params: dict[str, Any]) -> httpx.Response:
        limit = str(params.get("limit", "10"))
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            return error(400, "Invalid integer: limit must be between 1 and 100", param="limit")
        newest_first = list(reversed(self.webhook_endpoints.values()))
        after = params.get("starting_after")
        if after is not None:
            ids = [e["id"] for e in newest_first]
            if after not in ids:
                return error(400, f"No such webhook_endpoint: '{after}'", code="resource_missing")
            newest_first = newest_first[ids.index(after) + 1 :]
        page = newest_first[: int(limit)]
        body = {
            "object": "list",
            "url": "/v1/webhook_endpoints",
            "data": [self._public(e) for e in page],
            "has_more": len(newest_first) > len(page),
        }
        return httpx.Response(200, json=body)

    def _create_endpoint(self, params: dict[str, Any]) -> httpx.Response:
        url, events = params.get("url"), params.get("enabled_events")
        if not isinstance(url, str) or not re.match(r"https?://", url):
            return error(400, "Invalid URL: url must be a valid URL", param="url")
        if not isinstance(events, list) or not events:
            return error(400, "Missing required param: enabled_events.", param="enabled_events")
        endpoint = self.add_webhook_endpoint(url, events)
        endpoint.update(api_version=params.get("api_version"), description=params.get("description"))
        return httpx.Response(200, json={**self._public(endpoint), "secret": endpoint["_secret"]})

    def _delete_endpoint(self, params: dict[str, Any], endpoint_id: str) -> httpx.Response:
        if self.webhook_endpoints.pop(endpoint_id, None) is None:
            return error(404, f"No such webhook endpoint: '{endpoint_id}'", code="resource_missing")
        return httpx.Response(200, json={"id": endpoint_id, "object": "webhook_endpoint", "deleted": True})
