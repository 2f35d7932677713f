"""The shared gateway contract suite's view of PayPal IPN: pay makes no API call; the fake's postback vouches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.base import FakeProvider
from tests.fakes.paypal_ipn import FakePayPalIPN

STATUSES = {"succeeded": "Completed", "processing": "Pending"}


def _fake(fake: FakeProvider) -> FakePayPalIPN:
    assert isinstance(fake, FakePayPalIPN)
    return fake


class PayPalIPNHarness:
    slug = "paypal_ipn"
    secrets: tuple[str, ...] = ()  # e-mail only: no credential exists
    pay_call = None
    email = "shop@example.com"

    def make_fake(self) -> FakePayPalIPN:
        return FakePayPalIPN(self.email, sandbox=True)

    def config(self, base_url: str) -> dict[str, Any]:
        return {
            "email": self.email,
            "test_mode": "1",
            "api_base": base_url,
            "postback_url": f"{base_url}/cgi-bin/webscr",
        }

    def pay_kwargs(self, invoice_id: int, total: str, currency: str) -> dict[str, Any]:
        return {
            "invoice": {
                "id": invoice_id,
                "number": f"INV-{invoice_id}",
                "total": total,
                "currency": currency,
                "user": {"id": 7, "email": "alice@example.com", "name": "Alice Liddell"},
            },
            "return_url": f"https://billing.example.com/invoices/{invoice_id}",
            "cancel_url": f"https://billing.example.com/invoices/{invoice_id}?cancelled=1",
            "webhook_url": "https://billing.example.com/webhooks/paypal_ipn/gw",
        }

    def settle(self, fake: FakeProvider, pay_data: dict[str, Any], status: str) -> dict[str, Any]:
        paypal = _fake(fake)
        payment = paypal.checkout(pay_data["redirect_url"])
        return paypal.deliver(paypal.notify(payment, STATUSES[status]))

    def redeliver(self, fake: FakeProvider, webhook: dict[str, Any]) -> dict[str, Any]:
        # PayPal re-sends the identical message (no signature, no timestamp of its own).
        later = datetime.fromisoformat(webhook["received_at"]) + timedelta(minutes=5)
        return {**webhook, "received_at": later.isoformat()}

    def forge(self, fake: FakeProvider, webhook: dict[str, Any]) -> dict[str, Any]:
        return {**webhook, "body": webhook["body"].replace("mc_gross=", "mc_gross=1", 1)}

    def malformed(self) -> dict[str, Any]:
        return {
            "body": "\x00\x7f{not a form}",
            "headers": {},
            "query": {},
            "received_at": datetime.now(UTC).isoformat(),
        }


HARNESS = PayPalIPNHarness()
