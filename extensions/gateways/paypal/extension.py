"""PayPal (REST): Orders v2 checkout, Vault v3 saved accounts, subscription price changes and
cancellation, webhooks.

Operations: ``pay``, ``capture``, ``webhook``, ``refund``, ``create_billing_agreement``,
``complete_billing_agreement``, ``charge``, ``cancel_billing_agreement``, ``cancel_subscription`` and
``update_subscription``. The last sets a subscription's regular price to the ``total`` the billing system
sends (the sum over every service on that subscription: the billing system knows which services share it,
the worker does not). It reads the subscription (``?fields=plan``: status, ``plan_id`` and its own
overridden prices) and the plan (which cycle is REGULAR: sequence 1 without a trial, not always 2), then
``PATCH``es ``/plan/billing_cycles/@sequence==N/pricing_scheme/fixed_price``, only when the price differs
(``changed: false`` otherwise). PATCH, not ``POST …/revise``: revise moves a subscription to another plan,
while the PATCH overrides this subscription's price on its own plan (the plan's other subscribers keep
theirs). A cancelled or expired subscription is refused.

Verification: every webhook is checked by PayPal itself (``POST /v1/notifications/verify-webhook-signature``)
with the five ``PAYPAL-*`` headers, the configured ``webhook_id`` and the raw body spliced in verbatim;
only ``SUCCESS`` counts, and a ``PAYPAL-TRANSMISSION-TIME`` more than 5 minutes from ``received_at`` is
refused before asking. Dedupe key: the event id (``WH-…``), claimed right after verification, so a
re-sent event (new transmission id and time) replays.

Events: ``PAYMENT.CAPTURE.COMPLETED|PENDING|DENIED`` → ``payment.succeeded|processing|failed`` (the order is
fetched for invoice, amount and fee); ``PAYMENT.CAPTURE.REFUNDED|REVERSED`` → ``payment.refunded`` on the
capture; ``PAYMENT.SALE.COMPLETED`` → ``payment.succeeded`` for the one invoice its ``custom`` /
``invoice_number`` names; ``VAULT.PAYMENT-TOKEN.DELETED`` → ``billing_agreement.cancelled``;
``BILLING.SUBSCRIPTION.CANCELLED`` → ``subscription.cancelled``; others are acknowledged. The transaction
id of a one-off payment is always the capture id. References carry the installation namespace
(``pm:<installation>:<invoice>[~attempt]``); another installation's event is acknowledged with no effect.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import Field

from extensions.base import GatewayExtension, JobContext, OperationResult, Payload
from extensions.errors import Conflict, InvalidPayload, NotFound, ProviderRejected, SignatureInvalid
from extensions.errors import UnsupportedOperation as Unsupported
from extensions.gateways.paypal import mapping as m
from extensions.gateways.paypal.config import PayPalConfig
from extensions.http import ApiRequest, ApiResponse, HttpApi
from extensions.money import Currency, Money
from extensions.payments import (
    CancelAgreementRequest,
    CancelSubscriptionRequest,
    ChargeRequest,
    CreateAgreementRequest,
    Invoice,
    InvoiceUser,
    PayRequest,
    RefundRequest,
    WebhookRequest,
    payment_event,
)

Event = tuple[str, dict[str, Any]]
Origin = tuple[str | None, datetime | None]  # (provider event id, when it happened) of a webhook
NO_ORIGIN: Origin = (None, None)
MAX_ATTEMPTS = 5


class CaptureRequest(Payload):
    order_id: str = Field(min_length=1, max_length=64)


class CompleteAgreementRequest(Payload):
    user: InvoiceUser
    approval_token_id: str = Field(min_length=1, max_length=255)


class UpdateSubscriptionRequest(Payload):
    """``total``: the subscription's new regular price, summed by the billing system over its services."""

    subscription_id: str = Field(min_length=1, max_length=64)
    total: Money
    currency: Currency
    service_id: int | str | None = None


class _Ignored(Exception):
    """A verified event with nothing to do here (another installation's, or no invoice named)."""


class PayPal(GatewayExtension[PayPalConfig]):
    slug = "paypal"
    display_name = "PayPal"
    description = "PayPal checkout, saved PayPal accounts and webhooks through the REST API"
    Config = PayPalConfig
    operations = frozenset(
        "pay capture webhook refund create_billing_agreement complete_billing_agreement charge"
        " cancel_billing_agreement cancel_subscription update_subscription".split()
    )
    payloads = {
        "capture": CaptureRequest,
        "complete_billing_agreement": CompleteAgreementRequest,
        "update_subscription": UpdateSubscriptionRequest,
    }

    def setup(self) -> None:
        self.api = HttpApi(
            self.config.base_url,
            provider="paypal",
            headers={"Accept": "application/json"},
            redactor=self.redactor,
            transport=self.transport,
            error_message=m.error_message,
        )
        # The OAuth token lives in this instance only (never in Redis, never logged).
        self._token: tuple[str, float] | None = None
        self._token_lock = threading.Lock()

    # --- operations ---------------------------------------------------------------------------------

    def pay(self, request: PayRequest, job: JobContext) -> OperationResult:
        invoice = request.invoice
        amount = m.money(invoice.total, invoice.currency)
        state = self._open_order(job, invoice)
        if state is not None and state["amount"] == amount:
            response = self._send(m.get_order(state["id"]), job, allow={404})
            if response.status != 404 and response.body.get("status") in m.OPEN_ORDER:
                return self._pay_result(response.body, invoice, reused=True)
        return_url, cancel_url = str(request.return_url), str(request.cancel_url or request.return_url)
        order = self._create_order(
            job, invoice, state, "order", lambda ref: m.create_order(ref, invoice.label, amount, return_url, cancel_url)
        )
        return self._pay_result(order, invoice, reused=False)

    def capture(self, request: CaptureRequest, job: JobContext) -> OperationResult:
        order = self._send(m.get_order(request.order_id), job).body
        if order.get("status") != "COMPLETED":
            unit = (order.get("purchase_units") or [{}])[0]
            if not m.invoice_of(unit.get("invoice_id"), job.installation_id)[1]:
                raise NotFound("paypal order belongs to another installation")
            response = self._send(m.capture_order(request.order_id), job, "capture", allow={422})
            problem = m.issue(response.body) if response.status == 422 else None
            if problem == "INSTRUMENT_DECLINED":  # the payer picks another funding source and tries again
                data = {"order_id": request.order_id, "status": "declined", "issue": problem, "restart": True}
                return OperationResult(data=data)
            if problem == "ORDER_ALREADY_CAPTURED":
                order = self._send(m.get_order(request.order_id), job).body
            elif response.status == 422:
                raise self.api.classify(response, "POST /v2/checkout/orders/{id}/capture")
            else:
                order = response.body
        return self._order_outcome(order, job)

    def webhook(self, request: WebhookRequest, job: JobContext) -> OperationResult:
        delivery = request.webhook
        event = m.parse_event(delivery.body)
        fields = m.transmission(delivery, datetime.now(UTC))
        digest = hashlib.sha256(f"{json.dumps(fields)}{delivery.body}".encode()).hexdigest()[:24]
        verify = m.verify(fields, self.config.webhook_id, delivery.body)
        answer = self._send(verify, job, f"verify-{digest}", allow={400, 422})
        if not answer.ok or not isinstance(answer.body, dict) or answer.body.get("verification_status") != "SUCCESS":
            raise SignatureInvalid("paypal did not verify the webhook signature")
        job.claim(event["id"])
        data = {"event_id": event["id"], "event_type": event["event_type"]}
        try:
            events = self._event(event, job)
        except _Ignored as ignored:
            return OperationResult(data={**data, "ignored": str(ignored)})
        return OperationResult(data=data, events=events)

    def refund(self, request: RefundRequest, job: JobContext) -> OperationResult:
        amount = None
        if request.amount is not None:
            if request.currency is None:
                raise InvalidPayload("paypal refund: currency is required with amount")
            amount = m.money(request.amount, request.currency)
        result = self._send(m.refund(request.transaction_id, amount, request.reason), job, "refund").body
        data = {"transaction_id": request.transaction_id, "refund_id": result.get("id"), "status": result.get("status")}
        events = []
        if result.get("status") == "COMPLETED":
            invoice = str(request.invoice_id) if request.invoice_id is not None else None
            events = self._refund_event(result, request.transaction_id, invoice, job, NO_ORIGIN, reversal=False)
        return OperationResult(data=data, events=events)

    def create_billing_agreement(self, request: CreateAgreementRequest, job: JobContext) -> OperationResult:
        self._agreements_on()
        brand = self.config.company_name or "Paymenter"
        cancel_url = str(request.cancel_url or request.return_url)
        body = self._send(m.setup_token(brand, str(request.return_url), cancel_url), job, "setup").body
        url = m.link(body, "approve", "payer-action")  # chosen by rel, not by position
        if url is None:
            raise ProviderRejected("paypal: failed to create billing agreement (no approve link)")
        return OperationResult(data={"redirect_url": url, "setup_id": body.get("id")})

    def complete_billing_agreement(self, request: CompleteAgreementRequest, job: JobContext) -> OperationResult:
        self._agreements_on()
        vaulted = self._send(m.payment_token(request.approval_token_id), job, "vault").body
        email = ((vaulted.get("payment_source") or {}).get("paypal") or {}).get("email_address") or ""
        agreement = {
            "gateway": self.slug,
            "user_id": str(request.user.id),
            "name": f"PayPal {email}".strip(),
            "external_reference": vaulted["id"],
            "type": "paypal",
            "expiry": None,
            "occurred_at": _now(),
        }
        return OperationResult(data=agreement, events=[("billing_agreement.created", agreement)])

    def charge(self, request: ChargeRequest, job: JobContext) -> OperationResult:
        self._agreements_on()
        invoice, vault_id = request.invoice, request.agreement.external_reference
        amount = m.money(invoice.total, invoice.currency)
        state = self._open_order(job, invoice)
        order = self._create_order(
            job, invoice, state, "charge", lambda ref: m.vault_order(ref, invoice.label, amount, vault_id)
        )
        if m.find_capture(order) is None and order.get("status") == "APPROVED":
            order = self._send(m.capture_order(order["id"]), job, "charge-capture").body
        # A COMPLETED order can still hold a declined capture: the capture's own status decides.
        return self._order_outcome(order, job)

    def cancel_billing_agreement(self, request: CancelAgreementRequest, job: JobContext) -> OperationResult:
        vault_id = request.agreement.external_reference
        gone = self._send(m.delete_payment_token(vault_id), job, allow={404}).status == 404
        events = self._notice(job, "billing_agreement.cancelled", "external_reference", vault_id, NO_ORIGIN)
        return OperationResult(data={"external_reference": vault_id, "already_gone": gone}, events=events)

    def cancel_subscription(self, request: CancelSubscriptionRequest, job: JobContext) -> OperationResult:
        sub = request.subscription_id
        response = self._send(m.cancel_subscription(sub, "User canceled"), job, "cancel", allow={422})
        if response.status == 422 and m.issue(response.body) != "SUBSCRIPTION_STATUS_INVALID":
            raise self.api.classify(response, "POST /v1/billing/subscriptions/{id}/cancel")
        events = self._notice(job, "subscription.cancelled", "subscription_id", sub, NO_ORIGIN)
        return OperationResult(
            data={"subscription_id": sub, "already_cancelled": response.status == 422}, events=events
        )

    def update_subscription(self, request: UpdateSubscriptionRequest, job: JobContext) -> OperationResult:
        sub, amount = request.subscription_id, m.money(request.total, request.currency)
        code = amount["currency_code"]
        subscription = self._send(m.get_subscription(sub), job).body
        plan_id = m.priceable_plan(subscription, sub)
        plan = self._send(m.get_plan(plan_id), job).body
        sequence = m.regular_sequence(plan)
        # The subscription's own price wins over the plan's: an earlier update overrode it there.
        own = (subscription.get("plan") or {}).get("billing_cycles")
        current = m.cycle_price(own, sequence) or m.cycle_price(plan.get("billing_cycles"), sequence)
        if current is not None and current[1] != code:
            raise InvalidPayload(f"paypal subscription {sub} bills in {current[1]}, not {code}")
        data = {"subscription_id": sub, "plan_id": plan_id, "sequence": sequence, "currency": code}
        checkpoint = f"old-price:{sub}"
        if current is not None and current[0] == request.total:
            # Nothing to send. A retry whose PATCH answer was lost lands here too: it reports what it replaced.
            before = job.checkpoint(checkpoint)
            old = json.loads(before) if before is not None else amount["value"]
            return OperationResult(
                data={**data, "old_price": old, "new_price": amount["value"], "changed": before is not None}
            )
        old = m.amount_text(*current) if current is not None else None
        job.save_checkpoint(checkpoint, json.dumps(old))
        self._send(m.set_cycle_price(sub, sequence, amount), job)
        return OperationResult(data={**data, "old_price": old, "new_price": amount["value"], "changed": True})

    # --- webhook events -----------------------------------------------------------------------------

    def _event(self, event: dict[str, Any], job: JobContext) -> list[Event]:
        kind, resource = event["event_type"], event["resource"]
        origin: Origin = (event["id"], m.parse_time(event.get("create_time")))
        if kind in m.CAPTURE_EVENTS:
            unit: dict[str, Any] = {}
            if order_id := m.related_order(resource):  # the order is authoritative for invoice, amount and fee
                order = self._send(m.get_order(order_id), job, allow={404})
                found = m.find_capture(order.body, resource.get("id")) if order.ok else None
                unit, resource = found or (unit, resource)
            return [self._capture_event(m.CAPTURE_EVENTS[kind], unit, resource, job, origin)]
        if kind in m.REFUND_EVENTS:
            capture_id = m.refunded_capture(resource) or str(resource["id"])
            return self._refund_event(resource, capture_id, None, job, origin, reversal=kind.endswith("REVERSED"))
        if kind == "PAYMENT.SALE.COMPLETED":
            # Book the sale onto the one invoice it names, never onto every service's newest invoice.
            invoice = self._invoice(resource.get("custom") or resource.get("invoice_number"), job)
            money = m.parse_money(resource.get("amount"), "total", "currency")
            extra = {
                "fee": m.fee_of(resource, ("transaction_fee",)),
                "subscription_id": resource.get("billing_agreement_id"),
            }
            return [self._payment("payment.succeeded", invoice, money, str(resource["id"]), origin, **extra)]
        if kind == "VAULT.PAYMENT-TOKEN.DELETED":
            return self._notice(job, "billing_agreement.cancelled", "external_reference", str(resource["id"]), origin)
        if kind == "BILLING.SUBSCRIPTION.CANCELLED":
            return self._notice(job, "subscription.cancelled", "subscription_id", str(resource["id"]), origin)
        raise _Ignored(f"{kind} is not handled")

    def _capture_event(
        self, kind: str, unit: Mapping[str, Any], capture: Mapping[str, Any], job: JobContext, origin: Origin
    ) -> Event:
        invoice = self._invoice(unit.get("invoice_id") or capture.get("invoice_id") or capture.get("custom_id"), job)
        money = m.parse_money(capture.get("amount"))
        return self._payment(kind, invoice, money, str(capture["id"]), origin, fee=m.fee_of(capture))

    def _refund_event(
        self,
        refund: Mapping[str, Any],
        capture_id: str,
        invoice: str | None,
        job: JobContext,
        origin: Origin,
        *,
        reversal: bool,
    ) -> list[Event]:
        if invoice is None:
            ref = refund.get("invoice_id")
            if not ref and capture_id != refund.get("id"):
                ref = self._send(m.get_capture(capture_id), job).body.get("invoice_id")
            invoice = self._invoice(ref, job)
        money = m.parse_money(refund.get("amount"))
        # The refund operation and PayPal's webhook report the same refund: it counts once.
        if not self._first(job, f"refund:{refund.get('id')}"):
            return []
        extra = {"refund_id": refund.get("id"), "reversal": reversal}
        return [self._payment("payment.refunded", invoice, money, capture_id, origin, **extra)]

    def _payment(
        self, kind: str, invoice: str, money: tuple[Decimal, str], txn: str, origin: Origin, **extra: Any
    ) -> Event:
        amount, currency = money
        at, event_id = origin[1], origin[0]
        return payment_event(
            kind,
            gateway=self.slug,
            invoice_id=invoice,
            amount=amount,
            currency=currency,
            transaction_id=txn,
            provider_event_id=event_id,
            occurred_at=at,
            **extra,
        )

    def _notice(self, job: JobContext, kind: str, field: str, value: str, origin: Origin) -> list[Event]:
        """A cancellation the operation and PayPal's webhook both report: it counts once."""
        if not self._first(job, f"{kind}:{value}"):
            return []
        data = {"gateway": self.slug, field: value, "provider_event_id": origin[0], "occurred_at": _now(origin[1])}
        return [(kind, data)]

    # --- steps --------------------------------------------------------------------------------------

    def _invoice(self, ref: Any, job: JobContext) -> str:
        invoice, ours = m.invoice_of(str(ref) if ref else None, job.installation_id)
        if not ours:
            raise _Ignored("another installation's payment")
        if invoice is None:
            raise _Ignored("no invoice reference")
        return invoice

    def _first(self, job: JobContext, marker: str) -> bool:
        """True unless another job already reported ``marker`` (a retry of the same job reports again)."""
        seen = job.recall(marker)
        if seen is not None and seen != job.idempotency_key:
            return False
        job.remember(marker, job.idempotency_key)
        return True

    def _agreements_on(self) -> None:
        if not self.config.paypal_support_billing_agreements:
            raise Unsupported("paypal: billing agreements are off (paypal_support_billing_agreements)")

    def _open_order(self, job: JobContext, invoice: Invoice) -> dict[str, Any] | None:
        raw = job.recall(f"order:{invoice.id}")
        return json.loads(raw) if raw else None

    def _create_order(
        self,
        job: JobContext,
        invoice: Invoice,
        state: Mapping[str, Any] | None,
        purpose: str,
        build: Callable[[str], ApiRequest],
    ) -> dict[str, Any]:
        """Create an order; a later order for the same invoice gets an attempt suffix on its reference,
        and so does a retry against ``DUPLICATE_INVOICE_ID``."""
        attempt = int(state["attempt"]) + 1 if state else 1
        for _ in range(MAX_ATTEMPTS):
            request = build(m.reference(job.installation_id, invoice.id, attempt))
            response = self._send(request, job, f"{purpose}-{attempt}", allow={422})
            if response.ok:
                order: dict[str, Any] = response.body
                amount = request.json["purchase_units"][0]["amount"]
                job.remember(
                    f"order:{invoice.id}", json.dumps({"id": order["id"], "amount": amount, "attempt": attempt})
                )
                return order
            if m.issue(response.body) != "DUPLICATE_INVOICE_ID":
                raise self.api.classify(response, "POST /v2/checkout/orders")
            attempt += 1
        raise Conflict(f"paypal refused {MAX_ATTEMPTS} invoice references as duplicates")

    def _pay_result(self, order: Mapping[str, Any], invoice: Invoice, *, reused: bool) -> OperationResult:
        data = {
            "transaction_id": order["id"],
            "order_id": order["id"],
            "client_id": self.config.client_id,
            "currency": invoice.currency,
            "approve_url": m.link(order, "approve", "payer-action"),
            "reused": reused,
        }
        return OperationResult(data=data)

    def _order_outcome(self, order: Mapping[str, Any], job: JobContext) -> OperationResult:
        data: dict[str, Any] = {"order_id": order.get("id"), "status": order.get("status")}
        found = m.find_capture(order)
        if found is None:
            return OperationResult(data=data)
        unit, capture = found
        kind = m.CAPTURE_STATUS.get(str(capture.get("status")), "payment.processing")
        data.update(transaction_id=capture.get("id"), capture_status=capture.get("status"))
        try:
            return OperationResult(data=data, events=[self._capture_event(kind, unit, capture, job, NO_ORIGIN)])
        except _Ignored as ignored:
            return OperationResult(data={**data, "ignored": str(ignored)})

    def _send(
        self, request: ApiRequest, job: JobContext, purpose: str = "", allow: Collection[int] = ()
    ) -> ApiResponse:
        headers = {**request.headers, "Prefer": "return=representation"}
        if request.method == "POST":
            headers["PayPal-Request-Id"] = m.request_id(job.idempotency_key, purpose or request.path)
        authed = replace(request, headers={**headers, "Authorization": f"Bearer {self._access_token(False)}"})
        response = self.api.send(authed, allow={401, *allow})
        if response.status == 401:  # the cached token expired or was revoked: fetch a new one, once
            authed = replace(request, headers={**headers, "Authorization": f"Bearer {self._access_token(True)}"})
            response = self.api.send(authed, allow=allow)
        return response

    def _access_token(self, refresh: bool) -> str:
        with self._token_lock:
            now = time.monotonic()
            if refresh or self._token is None or now >= self._token[1]:
                secret = self.config.client_secret.get_secret_value()
                token, ttl = m.parse_token(self.api.send(m.token_request(self.config.client_id, secret)).body)
                self.redactor.add(token)
                self._token = (token, now + ttl - min(300, ttl // 10))  # refresh shortly before it expires
            return self._token[0]


def _now(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")
