"""The shared gateway contract suite's view of PayPal (REST)."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.base import FakeProvider
from tests.fakes.paypal import FakePayPal

CLIENT_ID = "AeContractClientId0042"
CLIENT_SECRET = "EContractClientSecret0042xyz"
WEBHOOK_ID = "3RT45112BN0183641KGECONT"
STATUS = {"succeeded": "COMPLETED", "processing": "PENDING"}


def _fake(fake: FakeProvider) -> FakePayPal:
    assert isinstance(fake, FakePayPal)
    return fake


class PayPalHarness:
    slug = "paypal"
    # The client secret, and the first access token the fake hands out (kept in memory only).
    secrets = (CLIENT_SECRET, "A21AAFakeAccessToken0001xyz")
    pay_call = ("POST", r"/v2/checkout/orders")

    def make_fake(self) -> FakePayPal:
        return FakePayPal(CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID)

    def config(self, base_url: str) -> dict[str, Any]:
        return {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "webhook_id": WEBHOOK_ID,
            "test_mode": "1",
            "paypal_support_billing_agreements": "0",
            "api_base": base_url,
        }

    def pay_kwargs(self, invoice_id: int, total: str, currency: str) -> dict[str, Any]:
        return {
            "invoice": {
                "id": invoice_id,
                "number": f"INV-{invoice_id}",
                "total": total,
                "currency": currency,
                "user": {"id": 42, "email": "alice@example.com"},
            },
            "return_url": f"https://billing.example.com/invoices/{invoice_id}?checkPayment=true",
        }

    def settle(self, fake: FakeProvider, pay_data: dict[str, Any], status: str) -> dict[str, Any]:
        paypal = _fake(fake)
        capture = paypal.settle(pay_data["order_id"], STATUS[status])
        return paypal.deliver(paypal.capture_event(capture))

    def redeliver(self, fake: FakeProvider, webhook: dict[str, Any]) -> dict[str, Any]:
        return _fake(fake).deliver(webhook["body"])

    def forge(self, fake: FakeProvider, webhook: dict[str, Any]) -> dict[str, Any]:
        event = json.loads(webhook["body"])
        event["resource"]["amount"]["value"] = "0.01"
        return {**webhook, "body": json.dumps(event)}

    def malformed(self) -> dict[str, Any]:
        delivery = FakePayPal().deliver("{}")
        return {**delivery, "body": "<html>502 Bad Gateway</html>"}


HARNESS = PayPalHarness()
