"""What each gateway supplies to run the shared gateway contract suite over it.

Register by creating ``tests/contract/gateway_harness_<slug>.py`` exporting ``HARNESS``. Webhook
deliveries are the ``webhook`` kwarg of DESIGN §3: ``{"body", "headers", "query", "received_at"}``.
"""

from __future__ import annotations

from typing import Any, Protocol

from tests.fakes.base import FakeProvider


class GatewayHarness(Protocol):
    slug: str
    # Credential values the config carries; the suite searches for each of them everywhere.
    secrets: tuple[str, ...]
    # (method, path regex) of the call that creates a payment at the provider; None when pay makes no
    # API call (IPN).
    pay_call: tuple[str, str] | None

    def make_fake(self) -> FakeProvider: ...

    def config(self, base_url: str) -> dict[str, Any]: ...

    def pay_kwargs(self, invoice_id: int, total: str, currency: str) -> dict[str, Any]:
        """``pay`` kwargs without ``connection``: ``invoice``, ``return_url``, ..."""
        ...

    def settle(self, fake: FakeProvider, pay_data: dict[str, Any], status: str) -> dict[str, Any]:
        """Move the payment ``pay`` made to ``status`` (``succeeded`` or ``processing``) at the provider and
        return the genuine webhook delivery the provider would send for it."""
        ...

    def redeliver(self, fake: FakeProvider, webhook: dict[str, Any]) -> dict[str, Any]:
        """The same provider event delivered again (re-signed with a new timestamp where the provider does)."""
        ...

    def forge(self, fake: FakeProvider, webhook: dict[str, Any]) -> dict[str, Any]:
        """A delivery that must not verify (wrong signature, or an id/message the provider does not vouch for)."""
        ...

    def malformed(self) -> dict[str, Any]:
        """A delivery whose body is garbage."""
        ...
