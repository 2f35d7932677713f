"""Mollie: payments through Mollie's hosted checkout, booked from webhooks whose state is re-fetched.

Verification. Mollie's classic webhook is an unsigned form body ``id=tr_…``. The id must look like a
payment id (anything else cannot be verified: ``signature_invalid``), then the payment is fetched with our
own API key: only what Mollie answers counts, never the delivery. An id Mollie does not know (404; also
another account's payment) is acknowledged with no effect, as Mollie advises, so it causes no retry storm.
The payment must carry this installation's reference in ``metadata.paymenter_reference`` (another
installation's is acknowledged with no effect; a bare ``metadata.invoice_id``, as Paymenter's PHP gateway
sends, counts as ours) and match the invoice, amount and currency ``pay`` recorded for it.

Dedupe key. A classic webhook has no event id: the key is ``<tr id>:<status>:<refunded>:<charged back>`` as
fetched (``job.claim``), so the same state again is a replay and a new state a new event. A late delivery
that announced an earlier state fetches the current one: a replay of what was already booked.

Event mapping: ``paid`` → ``payment.succeeded``; ``authorized`` → ``payment.processing``;
``failed``/``expired``/``canceled`` → ``payment.failed``; ``open``/``pending`` → none. Any refunded or
charged-back amount adds ``payment.refunded`` for the cumulative total (chargebacks count as refunds;
``amount_refunded`` and ``amount_charged_back`` tell them apart). The payment id is the transaction id.

``pay`` reuses the invoice's payment while it is open and has the same amount and currency; creations and
refunds carry an ``Idempotency-Key`` derived from ``job.idempotency_key``, so a retry after a lost answer
gets Mollie's first answer back.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from extensions.base import GatewayExtension, JobContext, OperationResult
from extensions.errors import Conflict, InvalidPayload, ProviderRejected, SignatureInvalid
from extensions.gateways.mollie import mapping as m
from extensions.gateways.mollie.config import MollieConfig
from extensions.http import HttpApi
from extensions.payments import PayRequest, RefundRequest, WebhookRequest, provider_reference

OPEN_TTL_S = 24 * 3600  # reuse window; the payment's own status decides whether it is still open
RECORD_TTL_S = 180 * 24 * 3600  # refunds and chargebacks arrive months after payment


class Mollie(GatewayExtension[MollieConfig]):
    slug = "mollie"
    display_name = "Mollie"
    description = "Payments through Mollie's hosted checkout; refunds"
    Config = MollieConfig
    operations = frozenset({"test_config", "pay", "webhook", "refund"})

    def setup(self) -> None:
        self.api = HttpApi(
            self.config.api_base,
            provider="mollie",
            headers={
                "Authorization": f"Bearer {self.config.api_key.get_secret_value()}",
                "Accept": "application/json",
            },
            redactor=self.redactor,
            transport=self.transport,
            error_message=m.error_message,
        )

    # --- operations ---------------------------------------------------------------------------------

    def test_config(self) -> OperationResult:
        self.api.send(m.list_methods())
        return OperationResult(data={"ok": True, "mode": self.config.mode})

    def pay(self, request: PayRequest, job: JobContext) -> OperationResult:
        invoice = request.invoice
        value = m.mollie_amount(invoice.total, invoice.currency)
        state = f"open-payment:{invoice.id}"
        payment = self._reusable(job.recall(state), value, invoice.currency)
        reused = payment is not None
        if payment is None:
            body = m.payment_body(
                invoice,
                value,
                provider_reference(job.installation_id, invoice.id),
                str(request.return_url),
                str(request.cancel_url) if request.cancel_url else None,
                self.webhook_url(request.webhook_url, job, "pay"),
            )
            key = m.idempotency_key(job.idempotency_key, "payment", invoice.id, value, invoice.currency)
            payment = m.parse_payment(self.api.send(m.create_payment(body, key)).body)
            record = {"invoice_id": str(invoice.id), "value": value, "currency": invoice.currency}
            job.remember(state, json.dumps({"id": payment.id, **record}), OPEN_TTL_S)
            job.remember(f"payment:{payment.id}", json.dumps(record), RECORD_TTL_S)
        if not payment.checkout_url:
            raise ProviderRejected(f"mollie: payment {payment.id} has no checkout link (status {payment.status})")
        data = {
            "transaction_id": payment.id,
            "redirect_url": payment.checkout_url,
            "status": payment.status,
            "amount": value,
            "currency": invoice.currency,
            "reused": reused,
        }
        return OperationResult(data=data)

    def webhook(self, request: WebhookRequest, job: JobContext) -> OperationResult:
        delivery = request.webhook
        payment_id = m.webhook_payment_id(delivery.body)
        response = self.api.send(m.get_payment(payment_id), allow={404})
        if response.status == 404:
            if not m.is_problem(response.body, 404):
                raise self.api.classify(response, "GET /v2/payments/{id}")
            return OperationResult(data={"ignored": "unknown payment", "payment_id": payment_id})
        payment = m.parse_payment(response.body)
        if payment.id != payment_id:
            raise SignatureInvalid(f"mollie webhook: fetching {payment_id} answered another payment")
        invoice_id, why = m.owner(payment.metadata, job.installation_id)
        if invoice_id is None:
            return OperationResult(data={"ignored": why, "payment_id": payment_id})
        self._check_record(job, payment, invoice_id)
        data = {"payment_id": payment.id, "invoice_id": invoice_id, "status": payment.status}
        job.claim(f"{payment.id}:{payment.state}")
        return OperationResult(data=data, events=m.payment_events(payment, invoice_id, delivery.received_at))

    def refund(self, request: RefundRequest, job: JobContext) -> OperationResult:
        payment_id = request.transaction_id
        if not m.PAYMENT_ID.fullmatch(payment_id):
            raise InvalidPayload("mollie refund: transaction_id must be a Mollie payment id (tr_…)")
        amount, currency = request.amount, request.currency
        if amount is None or currency is None:
            payment = m.parse_payment(self.api.send(m.get_payment(payment_id)).body)
            if currency is not None and currency != payment.currency:
                raise InvalidPayload(f"mollie refund: payment {payment_id} is in {payment.currency}, not {currency}")
            currency = payment.currency
            amount = amount if amount is not None else (payment.remaining or Decimal(0))
            if amount <= 0:
                raise InvalidPayload(f"mollie refund: nothing left to refund on {payment_id}")
        value = m.mollie_amount(amount, currency)
        invoice = request.invoice_id
        metadata: dict[str, Any] = {}
        if invoice is not None:
            metadata = {"invoice_id": invoice, m.REFERENCE_KEY: provider_reference(job.installation_id, invoice)}
        description = request.reason or (f"Refund of invoice #{invoice}" if invoice is not None else "Refund")
        body = m.refund_body(value, currency, description, metadata)
        key = m.idempotency_key(job.idempotency_key, "refund", payment_id, value, currency)
        refund = self.api.send(m.create_refund(payment_id, body, key)).body
        # No event here: Mollie calls the payment's webhook, which reports the refunded total.
        return OperationResult(data=m.refund_data(refund, payment_id))

    # --- steps --------------------------------------------------------------------------------------

    def _reusable(self, stored: str | None, value: str, currency: str) -> m.Payment | None:
        """The invoice's payment when it is still open for the same amount and currency."""
        if not stored:
            return None
        record = json.loads(stored)
        if record.get("value") != value or record.get("currency") != currency:
            return None
        response = self.api.send(m.get_payment(str(record["id"])), allow={404})
        if response.status == 404:
            return None
        payment = m.parse_payment(response.body)
        return payment if payment.status == "open" and payment.checkout_url else None

    def _check_record(self, job: JobContext, payment: m.Payment, invoice_id: str) -> None:
        """The payment must be for the invoice, amount and currency ``pay`` created it for."""
        stored = job.recall(f"payment:{payment.id}")
        if not stored:
            return  # made before this worker kept records, or expired: metadata was checked above
        record = json.loads(stored)
        expected = (record.get("invoice_id"), Decimal(str(record.get("value"))), record.get("currency"))
        if expected != (invoice_id, payment.amount, payment.currency):
            raise Conflict(f"mollie webhook: payment {payment.id} does not match the invoice it was created for")
