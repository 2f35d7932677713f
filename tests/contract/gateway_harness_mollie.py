"""The shared gateway contract suite's view of Mollie.

Mollie's classic webhook is unsigned (``id=tr_…``); it is verified by fetching the payment. So a
"forged" delivery is one whose id Mollie cannot vouch for: not a payment id at all (here a path
injection riding on a genuine id). An id Mollie does not know is acknowledged with no effect instead;
``tests/extensions/test_mollie.py`` covers that path.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.fakes.base import FakeProvider
from tests.fakes.mollie import FakeMollie

API_KEY = "test_contractmolliekey00000000"
STATUSES = {"succeeded": "paid", "processing": "authorized"}


def _fake(fake: FakeProvider) -> FakeMollie:
    assert isinstance(fake, FakeMollie)
    return fake


def _payment_id(delivery: dict[str, Any]) -> str:
    return parse_qs(delivery["body"])["id"][0]


class MollieHarness:
    slug = "mollie"
    secrets = (API_KEY,)
    pay_call = ("POST", r"/v2/payments")

    def make_fake(self) -> FakeMollie:
        return FakeMollie(api_key=API_KEY)

    def config(self, base_url: str) -> dict[str, Any]:
        return {"api_key": API_KEY, "api_base": base_url}

    def pay_kwargs(self, invoice_id: int, total: str, currency: str) -> dict[str, Any]:
        return {
            "invoice": {
                "id": invoice_id,
                "number": f"INV-{invoice_id}",
                "total": total,
                "currency": currency,
                "user": {"id": 7, "email": "alice@example.com", "name": "Alice"},
            },
            "return_url": f"https://billing.example.com/invoices/INV-{invoice_id}?checkPayment=true",
            "cancel_url": f"https://billing.example.com/invoices/INV-{invoice_id}",
            "webhook_url": "https://billing.example.com/webhooks/mollie/gw",
        }

    def settle(self, fake: FakeProvider, pay_data: dict[str, Any], status: str) -> dict[str, Any]:
        mollie = _fake(fake)
        mollie.set_status(pay_data["transaction_id"], STATUSES[status])
        return mollie.webhook(pay_data["transaction_id"])

    def redeliver(self, fake: FakeProvider, webhook: dict[str, Any]) -> dict[str, Any]:
        return _fake(fake).webhook(_payment_id(webhook))  # Mollie's retry: same body, received later

    def forge(self, fake: FakeProvider, webhook: dict[str, Any]) -> dict[str, Any]:
        return {**webhook, "body": urlencode({"id": f"{_payment_id(webhook)}/../../tr_other"})}

    def malformed(self) -> dict[str, Any]:
        return {
            "body": "\x00\x7f{not a form",
            "headers": dict(FakeMollie.WEBHOOK_HEADERS),
            "query": {},
            "received_at": "2026-01-01T00:00:00Z",
        }


HARNESS = MollieHarness()
