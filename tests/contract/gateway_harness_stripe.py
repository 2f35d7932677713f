"""The shared gateway contract suite's view of Stripe."""

from __future__ import annotations

from typing import Any

from tests.fakes.base import FakeProvider
from tests.fakes.stripe import FakeStripe

SECRET_KEY = "sk_test_contractsecret0000000000"
WEBHOOK_SECRET = "whsec_contractwebhooksecret000000"
PUBLISHABLE_KEY = "pk_test_contractpublishable00000"


def _fake(fake: FakeProvider) -> FakeStripe:
    assert isinstance(fake, FakeStripe)
    return fake


class StripeHarness:
    slug = "stripe"
    secrets = (SECRET_KEY, WEBHOOK_SECRET)
    pay_call = ("POST", "/v1/payment_intents")

    def make_fake(self) -> FakeStripe:
        return FakeStripe(SECRET_KEY, WEBHOOK_SECRET, PUBLISHABLE_KEY)

    def config(self, base_url: str) -> dict[str, Any]:
        return {
            "stripe_secret_key": SECRET_KEY,
            "stripe_publishable_key": PUBLISHABLE_KEY,
            "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_create_customers": "0",
            "api_base": base_url,
        }

    def pay_kwargs(self, invoice_id: int, total: str, currency: str) -> dict[str, Any]:
        user = {"id": 42, "email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"}
        invoice = {"id": invoice_id, "number": f"INV-{invoice_id}", "total": total, "currency": currency, "user": user}
        return {
            "invoice": invoice,
            "return_url": f"https://billing.example.com/invoices/{invoice_id}?checkPayment=true",
        }

    def settle(self, fake: FakeProvider, pay_data: dict[str, Any], status: str) -> dict[str, Any]:
        stripe = _fake(fake)
        return stripe.deliver(stripe.settle(pay_data["transaction_id"], status))

    def redeliver(self, fake: FakeProvider, webhook: dict[str, Any]) -> dict[str, Any]:
        return _fake(fake).resign(webhook)

    def forge(self, fake: FakeProvider, webhook: dict[str, Any]) -> dict[str, Any]:
        return _fake(fake).deliver(webhook["body"], secret="whsec_forgedbysomeoneelse0000000")

    def malformed(self) -> dict[str, Any]:
        return FakeStripe(SECRET_KEY, WEBHOOK_SECRET).deliver("{not json at all")


HARNESS = StripeHarness()
