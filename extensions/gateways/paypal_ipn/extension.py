"""PayPal IPN (Payments Standard, e-mail only): a checkout redirect, then verified Instant Payment Notifications.

``pay`` makes no API call. It builds the ``_xclick`` checkout URL (every value query-encoded; ``amount`` with
PayPal's decimals, none for HUF, JPY and TWD), naming the invoice three ways: ``item_number`` = invoice id
(PHP-era compatible), ``custom`` = the installation-namespaced reference, ``invoice`` = the offer id returned as
``transaction_id``. The offer ``{invoice, total, currency}`` is remembered for the IPN checks, and the open offer
of an invoice is reused while amount and currency stay the same and no final IPN closed it.

``webhook`` authenticates by PayPal's postback: ``cmd=_notify-validate&`` + the raw body, byte for byte (never
re-encoded: windows-1252 bytes and ``%2B`` survive). ``VERIFIED`` passes, ``INVALID`` is ``signature_invalid``,
anything else (other answer, non-200, network error) is retried. Then, in order:

- dedupe: ``claim(txn_id:payment_status)``, so Pending → Completed upgrades while a second Completed replays;
- ``receiver_email`` (or ``business``) must be the configured e-mail and ``test_ipn`` must match ``test_mode``;
- another installation's reference is acknowledged with no effect (no reference counts as ours);
- the offer named by ``invoice`` must exist (else ``not_found``: an IPN for a payment ``pay`` never offered, or
  one older than the offer TTL, has no effect) and ``mc_currency``/``mc_gross`` must match it (a refund may be
  up to the total); a mismatch is a permanent ``invalid_payload`` with no effect.

Mapping: Completed → ``payment.succeeded`` (fee = ``mc_fee``), Pending → ``payment.processing``, Failed/Denied
→ ``payment.failed``, Refunded/Reversed → ``payment.refunded`` for the original ``parent_txn_id`` (amount
positive, the refund's own id as ``refund_transaction_id``). Other statuses (Canceled_Reversal, Voided, ...)
and non-payment messages are acknowledged with no event. Late backwards events are the runtime's to mark stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from extensions.base import GatewayExtension, JobContext, OperationResult
from extensions.errors import NotFound
from extensions.gateways.paypal_ipn import mapping as m
from extensions.gateways.paypal_ipn.config import PayPalIPNConfig
from extensions.http import HttpApi
from extensions.payments import PayRequest, WebhookRequest, provider_reference

OFFER_TTL = 180 * 86_400  # refunds and chargebacks of an offer can arrive months after it was paid
ANY_STATUS = range(100, 600)  # every non-VERIFIED answer is judged by mapping.verdict, not by HttpApi


class PayPalIPN(GatewayExtension[PayPalIPNConfig]):
    slug = "paypal_ipn"
    display_name = "PayPal IPN"
    description = "Accept payments via PayPal. With only your email"
    Config = PayPalIPNConfig
    operations = frozenset({"pay", "webhook"})

    def setup(self) -> None:
        verify = urlsplit(self.config.verify_url)
        self.api = HttpApi(
            f"{verify.scheme}://{verify.netloc}",
            provider="paypal_ipn",
            redactor=self.redactor,
            transport=self.transport,
        )

    def pay(self, request: PayRequest, job: JobContext) -> OperationResult:
        invoice = request.invoice
        total = m.paypal_amount(invoice.total, invoice.currency)
        reference = provider_reference(job.installation_id, invoice.id)
        offer = m.Offer.loads(job.recall(f"open:{reference}"))
        if offer is None or (offer.total, offer.currency) != (total, invoice.currency):
            offer = m.Offer(m.new_offer_id(reference, job.idempotency_key), str(invoice.id), total, invoice.currency)
        job.remember(f"offer:{offer.transaction_id}", offer.dumps(), OFFER_TTL)
        job.remember(f"open:{reference}", offer.dumps(), OFFER_TTL)
        url = m.checkout_url(
            self.config.checkout_url,
            offer,
            reference=reference,
            business=self.config.email,
            notify=self.webhook_url(request.webhook_url, job, "pay"),
            back=str(request.return_url),
            cancel=str(request.cancel_url or request.return_url),
        )
        return OperationResult(
            data={
                "transaction_id": offer.transaction_id,
                "redirect_url": url,
                "amount": total,
                "currency": offer.currency,
            }
        )

    def webhook(self, request: WebhookRequest, job: JobContext) -> OperationResult:
        delivery = request.webhook
        raw = delivery.raw_body
        fields = m.parse_ipn(raw)
        m.verdict(self.api.send(m.postback(self.config.verify_url, raw), allow=ANY_STATUS))
        txn_id, status = fields.get("txn_id"), fields.get("payment_status")
        if not txn_id or not status:
            return _acknowledged(fields, "not a payment notification")
        job.claim(f"{txn_id}:{status}")
        m.check_account(fields, self.config.email, self.config.test_mode)
        if m.installation_of(fields) not in (None, job.installation_id):
            return _acknowledged(fields, "another installation's payment")
        if status not in m.EVENTS:
            return _acknowledged(fields, f"payment_status {status} has no effect")
        offer = m.Offer.loads(job.recall(f"offer:{fields.get('invoice', '')}"))
        if offer is None:
            raise NotFound("IPN names no payment this connection offered (never, or longer ago than the offer TTL)")
        amount = m.check_amount(fields, status, offer)
        event = m.ipn_event(fields, offer, amount, delivery.received_at)
        if status in m.CLOSING:
            self._close(job, offer)
        return OperationResult(data={**_summary(fields), "invoice_id": offer.invoice_id}, events=[event])

    def _close(self, job: JobContext, offer: m.Offer) -> None:
        """A paid or failed offer is not reused: the next pay for the invoice offers anew."""
        name = f"open:{provider_reference(job.installation_id, offer.invoice_id)}"
        current = m.Offer.loads(job.recall(name))
        if current is not None and current.transaction_id == offer.transaction_id:
            job.remember(name, "", 1)


def _summary(fields: Mapping[str, str]) -> dict[str, Any]:
    return {"acknowledged": True, "txn_id": fields.get("txn_id"), "payment_status": fields.get("payment_status")}


def _acknowledged(fields: Mapping[str, str], reason: str) -> OperationResult:
    return OperationResult(data={**_summary(fields), "ignored": reason})
