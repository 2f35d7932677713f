"""Stripe: PaymentIntents paid with Stripe.js, SetupIntents as billing agreements, off-session charges.

Webhooks are verified on the raw body before anything else: HMAC-SHA256 of ``"<t>." + body`` under
``stripe_webhook_secret``, compared in constant time with every ``v1`` of ``Stripe-Signature`` (Stripe
sends several while a secret rotates), and ``t`` may be at most 300 s older than ``received_at`` (the
receiver's clock: a job can wait in the queue) or now. The verified event id ``evt_…`` is the dedupe key
(``job.claim``): Stripe re-delivering an event, re-signed with a new timestamp, is a replay. Mapping:

- ``payment_intent.processing|succeeded|payment_failed`` → ``payment.processing|succeeded|failed``, the
  PaymentIntent id as transaction, amounts by Stripe's currency exponents;
- ``charge.updated`` with a balance transaction → ``payment.fee`` (fetched; settlement currency);
- ``charge.refunded`` → ``payment.refunded`` for the amount that event refunded;
- ``setup_intent.succeeded`` with ``metadata.is_billing_agreement = "1"`` → ``billing_agreement.created``;
- any other type, and objects whose ``metadata.paymenter_installation`` names another installation
  sharing the account, are acknowledged with no effect.

Every POST carries an ``Idempotency-Key`` derived from ``job.idempotency_key``, so a retried job gets
Stripe's first answer back instead of a second PaymentIntent. ``pay`` keeps the invoice's PaymentIntent
(id, amount, currency; never its client secret) in connection state and reuses it while amount and
currency match and it is not cancelled; a changed amount cancels the old open one first.

``register_webhook`` points Stripe at this worker: one endpoint at ``<PAYMENTER_PUBLIC_URL>/webhooks/stripe/
<connection>`` (or the payload's ``webhook_url``), subscribed to exactly the event types ``webhook``
handles, at the pinned API version. Endpoints of the account at other URLs are left alone. The new
endpoint's signing secret comes back only sealed (``data.sealed.webhook_secret``): the worker cannot write
connection profiles, so the operator puts it into the profile's ``stripe_webhook_secret``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import stripe
from pydantic import AnyHttpUrl, SecretStr

from extensions.base import GatewayExtension, JobContext, OperationResult, Payload
from extensions.errors import Conflict, InvalidPayload, NotFound, PermanentError, ProviderRejected
from extensions.gateways.stripe import mapping as m
from extensions.gateways.stripe.config import StripeConfig
from extensions.money import format_amount
from extensions.payments import (
    CancelAgreementRequest,
    CancelSubscriptionRequest,
    ChargeRequest,
    CreateAgreementRequest,
    InvoiceUser,
    PayRequest,
    RefundRequest,
    WebhookRequest,
)

STATE_TTL_S = 30 * 24 * 3600
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
REGISTRATION_TTL_S = 600

Found = tuple[str, dict[str, Any]] | None


class RegisterWebhookRequest(Payload):
    # Only needed when PAYMENTER_PUBLIC_URL is unset, or Stripe must reach the receiver at another address.
    webhook_url: AnyHttpUrl | None = None


class _NoResponseBodies(logging.Filter):
    """stripe-python logs every response body at DEBUG, secrets included (a new endpoint's ``whsec_``, a
    PaymentIntent's client secret): those lines never reach a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "message='API response body'" not in str(record.msg)


if not any(isinstance(f, _NoResponseBodies) for f in logging.getLogger("stripe").filters):
    logging.getLogger("stripe").addFilter(_NoResponseBodies())


class Stripe(GatewayExtension[StripeConfig]):
    slug = "stripe"
    display_name = "Stripe Gateway"
    description = "Payments with Stripe PaymentIntents; saved payment methods as billing agreements"
    version = "1.0.1"
    Config = StripeConfig
    operations = frozenset(
        "pay webhook refund create_billing_agreement charge cancel_billing_agreement cancel_subscription"
        " register_webhook".split()
    )
    payloads = {"register_webhook": RegisterWebhookRequest}

    def setup(self) -> None:
        # One client per instance (no module-global api_key); retries happen once, in the runtime, with
        # the same idempotency keys.
        self.client = stripe.StripeClient(
            self.config.stripe_secret_key.get_secret_value(),
            stripe_version=m.API_VERSION,
            base_addresses={"api": self.config.api_base},
            max_network_retries=0,
            http_client=stripe.HTTPXClient(timeout=30, allow_sync_methods=True),
        )

    # --- operations ---------------------------------------------------------------------------------

    def pay(self, request: PayRequest, job: JobContext) -> OperationResult:
        invoice = request.invoice
        minor = self._minor(invoice.total, invoice.currency)
        state = f"payment-intent:{invoice.id}"
        intent = self._open_intent(job, job.recall(state), minor, invoice.currency)
        if intent is None:
            customer = self._customer(invoice.user, job, required=False)
            intent = self._call(
                self.client.v1.payment_intents.create,
                params=m.payment_intent_params(invoice, minor, job.installation_id, customer),
                key=self._key(job, "pi", invoice.id, minor, invoice.currency),
            )
            job.remember(
                state, json.dumps({"id": intent["id"], "amount": minor, "currency": invoice.currency}), STATE_TTL_S
            )
        data = {
            "transaction_id": intent["id"],
            "status": intent.get("status"),
            "amount": format_amount(m.from_stripe_minor(intent.get("amount"), invoice.currency), invoice.currency),
            "currency": invoice.currency,
            "customer_id": m.ref(intent.get("customer")),
            "return_url": str(request.return_url),
        }
        return self._client_side(data, intent)

    def webhook(self, request: WebhookRequest, job: JobContext) -> OperationResult:
        delivery = request.webhook
        secret = self.config.stripe_webhook_secret
        received = delivery.received_at or datetime.now(UTC)
        if received.tzinfo is None:
            received = received.replace(tzinfo=UTC)
        signature = delivery.header("Stripe-Signature")
        m.verify_signature(delivery.body, signature, secret.get_secret_value() if secret else None, received)
        event = m.parse_event(delivery.body)
        job.claim(event["id"])
        data: dict[str, Any] = {"event_id": event["id"], "event_type": event["type"], "handled": False}
        if m.foreign(event["data"]["object"], job.installation_id):
            return OperationResult(data={**data, "ignored": "event of another installation"})
        try:
            events = self._interpret(event)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise InvalidPayload(f"Stripe {event['type']} event has an unexpected shape ({exc!r})") from None
        return OperationResult(data={**data, "handled": bool(events)}, events=events)

    def refund(self, request: RefundRequest, job: JobContext) -> OperationResult:
        target = request.transaction_id
        params: dict[str, Any] = {"charge" if target.startswith("ch_") else "payment_intent": target}
        if request.amount is not None:
            currency = request.currency or self._payment_currency(target)
            params["amount"] = self._minor(request.amount, currency)
        if request.reason in REFUND_REASONS:
            params["reason"] = request.reason
        if request.invoice_id is not None:
            params["metadata"] = {"invoice_id": str(request.invoice_id), m.INSTALLATION_KEY: job.installation_id}
        refund = self._call(
            self.client.v1.refunds.create,
            params=params,
            key=self._key(job, "refund", target, params.get("amount", "full")),
        )
        currency = str(refund.get("currency", "")).upper()
        # payment.refunded comes from the charge.refunded webhook only, so a refund is never booked twice.
        data = {
            "refund_id": refund["id"],
            "status": refund.get("status"),
            "transaction_id": m.ref(refund.get("payment_intent")) or target,
            "amount": format_amount(m.from_stripe_minor(refund.get("amount"), currency), currency),
            "currency": currency,
        }
        return OperationResult(data=data)

    def create_billing_agreement(self, request: CreateAgreementRequest, job: JobContext) -> OperationResult:
        customer = self._customer(request.user, job, required=True)
        assert customer is not None
        intent = self._call(
            self.client.v1.setup_intents.create,
            params=m.setup_intent_params(request.user, customer, job.installation_id),
            key=self._key(job, "seti", request.user.id),
        )
        data = {
            "setup_intent_id": intent["id"],
            "status": intent.get("status"),
            "customer_id": customer,
            "return_url": str(request.return_url),
        }
        return self._client_side(data, intent)

    def charge(self, request: ChargeRequest, job: JobContext) -> OperationResult:
        invoice, agreement = request.invoice, request.agreement
        minor = self._minor(invoice.total, invoice.currency)
        # The saved method belongs to one customer; charging it off-session needs exactly that one.
        method = self._call(self.client.v1.payment_methods.retrieve, agreement.external_reference)
        customer = m.ref(method.get("customer"))
        if customer is None:
            raise ProviderRejected("Stripe customer not found: the payment method is not attached to a customer")
        intent = self._call(
            self.client.v1.payment_intents.create,
            params=m.charge_params(invoice, agreement, minor, job.installation_id, customer),
            key=self._key(job, "charge", invoice.id, agreement.id, minor, invoice.currency),
        )
        status = str(intent.get("status"))
        if status in ("requires_action", "requires_payment_method"):
            raise ProviderRejected(f"off-session payment not completed ({status}); the customer must pay on-session")
        reported = {"succeeded": "payment.succeeded", "processing": "payment.processing"}.get(status)
        event = m.intent_payment(intent, reported) if reported else None
        data = {"transaction_id": intent["id"], "status": status, "customer_id": customer}
        # The webhook for the same intent later counts as a duplicate, not as news.
        return OperationResult(data=data, events=[event] if event else [])

    def cancel_billing_agreement(self, request: CancelAgreementRequest, job: JobContext) -> OperationResult:
        reference = request.agreement.external_reference
        try:
            self._call(self.client.v1.payment_methods.detach, reference, key=self._key(job, "detach", reference))
            detached = True
        except (ProviderRejected, NotFound):  # already detached or deleted: the agreement is over either way
            detached = False
        data = {"agreement_id": str(request.agreement.id), "external_reference": reference, "detached": detached}
        event = {"gateway": m.GATEWAY, **data, "occurred_at": _now()}
        return OperationResult(data=data, events=[("billing_agreement.cancelled", event)])

    def cancel_subscription(self, request: CancelSubscriptionRequest, job: JobContext) -> OperationResult:
        subscription = self._call(self.client.v1.subscriptions.cancel, request.subscription_id)
        data = {
            "subscription_id": subscription["id"],
            "service_id": None if request.service_id is None else str(request.service_id),
            "status": subscription.get("status"),
        }
        event = {"gateway": m.GATEWAY, **data, "occurred_at": _now()}
        return OperationResult(data=data, events=[("subscription.cancelled", event)])

    def register_webhook(self, request: RegisterWebhookRequest, job: JobContext) -> OperationResult:
        url = self.webhook_url(request.webhook_url, job, "register_webhook")
        # One registration per connection at a time: two interleaved ones could delete each other's endpoint.
        with job.exclusive("webhook_endpoint", REGISTRATION_TTL_S):
            # Create first, then delete every other endpoint at our URL. The key is fixed for this job and URL,
            # so a retry after a lost answer gets Stripe's stored first answer back (the only one that carries
            # the secret) instead of making a second endpoint; deleting first would remove that endpoint and
            # then have the key replay it, dead. Stale endpoints, from earlier jobs too, go afterwards, so every
            # run ends with one endpoint at our URL, and deliveries never pause in between.
            endpoint = self._call(
                self.client.v1.webhook_endpoints.create,
                params=m.webhook_endpoint_params(url, self._handlers()),
                key=self._key(job, "we", url),
            )
            secret = endpoint.get("secret")
            if not isinstance(secret, str) or not secret:
                raise ProviderRejected("Stripe answered the webhook endpoint without its signing secret")
            found = self._endpoints_at(url)
            if endpoint["id"] not in found:  # a replay (keys live 24 h) of an endpoint deleted since
                gone = endpoint["id"]
                raise Conflict(f"webhook endpoint {gone} no longer exists; register again with a new idempotency_key")
            replaced = []
            for stale in (e for e in found if e != endpoint["id"]):
                try:
                    self._call(self.client.v1.webhook_endpoints.delete, stale)
                except NotFound:  # deleted meanwhile: gone is what we wanted
                    pass
                replaced.append(stale)
        data = {
            "endpoint_id": endpoint["id"],
            "url": url,
            "enabled_events": endpoint.get("enabled_events"),
            "api_version": m.API_VERSION,
            "replaced": replaced,
            "profile_field": "stripe_webhook_secret",
            "next_step": (
                "the worker cannot change connection profiles: set stripe_webhook_secret of connection "
                f"'{job.connection}' to the unsealed data.sealed.webhook_secret (or the signing secret shown in "
                "the Stripe Dashboard); until then deliveries to this endpoint fail verification"
            ),
        }
        # No secret checkpoint: within a job's retries Stripe's stored answer to the keyed POST gives it back.
        return OperationResult(data=data, secrets={"webhook_secret": SecretStr(secret)})

    # --- webhook events -----------------------------------------------------------------------------

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Found]]:
        """Event type → handler: what ``webhook`` dispatches on and ``register_webhook`` subscribes to."""
        return {
            **dict.fromkeys(m.PAYMENT_INTENT_EVENTS, m.intent_event),
            "charge.refunded": m.refund_event,
            "charge.updated": self._fee,
            "setup_intent.succeeded": self._agreement,
        }

    def _interpret(self, event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        handler = self._handlers().get(event["type"])
        found = handler(event) if handler else None
        return [found] if found else []

    def _fee(self, event: dict[str, Any]) -> Found:
        charge = event["data"]["object"]
        balance_id = m.ref(charge.get("balance_transaction")) if m.ref(charge.get("payment_intent")) else None
        if not balance_id:  # set once the charge settled; earlier updates carry no fee yet
            return None
        return m.fee_event(event, self._call(self.client.v1.balance_transactions.retrieve, balance_id))

    def _agreement(self, event: dict[str, Any]) -> Found:
        obj = event["data"]["object"]
        if m.metadata(obj).get("is_billing_agreement") != "1":
            return None
        # Re-read with the latest attempt: redirect methods (iDEAL...) leave a SEPA mandate to reuse.
        intent = self._call(self.client.v1.setup_intents.retrieve, obj["id"], params={"expand": ["latest_attempt"]})
        method_id = m.reusable_method(intent) if intent.get("status") == "succeeded" else None
        if not method_id:
            return None
        return m.agreement_event(event, method_id, self._call(self.client.v1.payment_methods.retrieve, method_id))

    # --- helpers ------------------------------------------------------------------------------------

    def _call(
        self,
        fn: Callable[..., Any],
        *args: str,
        params: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        """The one I/O path: a library call, its error classified, its answer as plain data."""
        try:
            found = fn(*args, params=params, options={"idempotency_key": key} if key else None)
        except stripe.StripeError as exc:
            raise m.classify(exc) from None
        result: dict[str, Any] = found.to_dict()
        return result

    @staticmethod
    def _key(job: JobContext, *parts: object) -> str:
        """A Stripe Idempotency-Key, stable across retries of one job (Stripe allows 255 characters)."""
        key = ":".join([job.idempotency_key, *(str(p) for p in parts)])
        return key if len(key) <= 255 else hashlib.sha256(key.encode()).hexdigest()

    @staticmethod
    def _minor(amount: Any, currency: str) -> int:
        minor = m.to_stripe_minor(amount, currency)
        if minor <= 0:
            raise InvalidPayload(f"amount must be positive in {currency} once rounded as Stripe requires")
        return minor

    def _client_side(self, data: dict[str, Any], intent: Mapping[str, Any]) -> OperationResult:
        """Stripe.js values: the publishable key in plain, the client secret (it lets its holder confirm
        the payment) only sealed, for the producer to hand to the customer's browser."""
        secret = SecretStr(str(intent.get("client_secret") or ""))
        publishable = self.config.stripe_publishable_key
        return OperationResult(data={**data, "publishable_key": publishable}, secrets={"client_secret": secret})

    def _open_intent(self, job: JobContext, stored: str | None, minor: int, currency: str) -> dict[str, Any] | None:
        """The invoice's PaymentIntent when it can still serve this payment; an open one for another
        amount is cancelled so the customer cannot pay both."""
        try:
            previous = json.loads(stored) if stored else None
            intent = self._call(self.client.v1.payment_intents.retrieve, previous["id"]) if previous else None
        except (ValueError, TypeError, KeyError, NotFound):
            return None
        if previous is None or intent is None or intent.get("status") == "canceled":
            return None
        if previous.get("amount") == minor and previous.get("currency") == currency:
            return intent
        if intent.get("status") in m.OPEN_STATUSES:
            try:
                self._call(
                    self.client.v1.payment_intents.cancel,
                    intent["id"],
                    params={"cancellation_reason": "abandoned"},
                    key=self._key(job, "cancel", intent["id"]),
                )
            except PermanentError:  # it moved on meanwhile (processing): the new amount is still owed
                pass
        return None

    def _customer(self, user: InvoiceUser, job: JobContext, *, required: bool) -> str | None:
        """The user's Stripe customer (``stripe_id`` property, else the one this connection made), created
        when missing. For ``pay`` a failure here is not fatal: the payment goes on without a customer."""
        state = f"customer:{user.id}"
        known = user.properties.get("stripe_id") or job.recall(state)
        try:
            if isinstance(known, str) and known:
                try:
                    found = self._call(self.client.v1.customers.retrieve, known)
                    if not found.get("deleted"):
                        return known
                except NotFound:
                    pass
            params = m.customer_params(user, job.installation_id, full=self.config.stripe_create_customers)
            customer = self._call(self.client.v1.customers.create, params=params, key=self._key(job, "cus", user.id))
        except PermanentError:
            if required:
                raise
            return None
        job.remember(state, customer["id"], STATE_TTL_S)
        return str(customer["id"])

    def _endpoints_at(self, url: str) -> list[str]:
        """Ids of the account's webhook endpoints at ``url``, across every list page."""
        found: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": m.ENDPOINT_PAGE}
            if cursor:
                params["starting_after"] = cursor
            ours, cursor = m.endpoints_at(self._call(self.client.v1.webhook_endpoints.list, params=params), url)
            found += ours
            if cursor is None:
                return found

    def _payment_currency(self, target: str) -> str:
        found = self._call(
            self.client.v1.charges.retrieve if target.startswith("ch_") else self.client.v1.payment_intents.retrieve,
            target,
        )
        return str(found.get("currency", "")).upper()


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
