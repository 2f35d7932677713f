"""Affiliates: rewards, signups and order attributions, decided by the worker and applied by the billing system.

There is no provider: the worker decides and publishes events; the billing system credits the
affiliate's user (``credits`` row of the invoice currency) when it reads ``affiliate.rewarded``.

Operations and their once-only rule
- ``reward`` (on Invoice Paid): ``job.claim("<affiliate id>:<invoice id>")`` just before emitting, so a
  second Invoice Paid for the same invoice (status flipped back and forth, a redelivery, another
  idempotency key) replays the first result and emits nothing. Only a reward consumes the claim: an
  invoice skipped for a reason below can still earn once, later, if it qualifies.
- ``signup`` (on User Created): ``job.claim("<affiliate id>:<user id>")``, one event per pair.
- ``attribute_order`` (on Order Created, with the affiliate the billing system resolved from the code in
  its ``referred_by`` cookie): ``job.claim("order:<order id>")``, Paymenter's UNIQUE ``order_id`` in
  ``ext_affiliate_orders``. The key leaves the affiliate out on purpose: an order has at most one
  affiliate and the first attribution wins, so a redelivery, another idempotency key or another
  affiliate for the same order (the cookie changed between two enqueues) replays the first result and
  emits nothing. As with rewards, only an attribution consumes the claim. Claims are per connection.

Events
- ``affiliate.rewarded``: ``affiliate_id``, ``user_id`` (the affiliate's user, who is credited),
  ``code``, ``invoice_id``, ``amount``, ``currency``, ``kind`` (``percentage``/``fixed``),
  ``percentage`` (the rate applied, or null), ``base``, ``capped``, ``renewal``.
- ``affiliate.signup``: ``affiliate_id``, ``affiliate_user_id``, ``code``, ``user_id``.
- ``affiliate.order_attributed``: ``affiliate_id``, ``affiliate_user_id``, ``code``, ``order_id``,
  ``user_id`` (the buyer). The billing system inserts the ``ext_affiliate_orders`` row from it.

Decisions where Paymenter's behaviour is a known defect
- Base: Σ price × quantity over the invoice's *service* items. Paymenter looked only at the first item
  (an upgrade first → nothing) yet paid on the whole total (credit top-ups and upgrades included);
  here upgrades and other lines never earn and never block the service lines next to them. An invoice
  with no service item earns nothing. Tax outside the items is not commissioned.
- Rate: the affiliate's ``reward`` when not null, else ``default_reward``; ``reward = 0`` is a rate of
  zero, not "use the default". A fixed reward (``reward_type = fixed``, per connection or per
  affiliate) is the configured amount for the invoice currency, never more than the base.
- Rounding: the amount is rounded once, half-up, to the currency's decimals (JPY 0, KWD 3).
- A zero amount is no reward (no event).
- ``enabled = false`` (ignored by Paymenter): no reward, no signup counted, no order attributed; the
  result says ``rewarded``/``recorded``/``attributed: false`` with the reason. An invoice of the
  affiliate's own user is never rewarded, a signup of the affiliate's own user is not counted, and an
  order of the affiliate's own user is not attributed (Paymenter's self-referral check, kept).
- ``discount`` is the buyer's discount: it is already part of the prices the buyer paid, so it does
  not reduce the base a second time.
- ``renewal: true`` invoices earn again unless the connection sets ``reward_renewals`` off.
"""

from __future__ import annotations

from typing import Any

from extensions.base import JobContext, OperationResult, OtherExtension
from extensions.others.affiliates.config import AffiliatesConfig
from extensions.others.affiliates.mapping import (
    AffiliateSnapshot,
    AttributionRequest,
    Id,
    RewardRequest,
    SignupRequest,
    Skip,
    compute_reward,
)


class Affiliates(OtherExtension[AffiliatesConfig]):
    slug = "affiliates"
    display_name = "Affiliates"
    description = "Referral rewards, signups and order attributions, published as events for the billing system"
    Config = AffiliatesConfig
    operations = frozenset({"reward", "signup", "attribute_order"})
    payloads = {"reward": RewardRequest, "signup": SignupRequest, "attribute_order": AttributionRequest}

    def reward(self, request: RewardRequest, job: JobContext) -> OperationResult:
        outcome = compute_reward(request, self.config)
        if isinstance(outcome, Skip):
            return OperationResult(data=outcome.data())
        job.claim(f"{request.affiliate.id}:{request.invoice.id}")
        event = outcome.data(request)
        return OperationResult(data={"rewarded": True, **event}, events=[("affiliate.rewarded", event)])

    def signup(self, request: SignupRequest, job: JobContext) -> OperationResult:
        affiliate, user = request.affiliate, request.user
        return self._referral(job, affiliate, user.id, f"{affiliate.id}:{user.id}", "affiliate.signup", "recorded", {})

    def attribute_order(self, request: AttributionRequest, job: JobContext) -> OperationResult:
        affiliate, order = request.affiliate, request.order
        # Keyed by the order alone (UNIQUE order_id): whichever affiliate claims an order first keeps it.
        extra = {"order_id": order.id}
        return self._referral(
            job, affiliate, order.user_id, f"order:{order.id}", "affiliate.order_attributed", "attributed", extra
        )

    def _referral(
        self,
        job: JobContext,
        affiliate: AffiliateSnapshot,
        user_id: Id,
        natural_key: str,
        event_type: str,
        flag: str,
        extra: dict[str, Any],
    ) -> OperationResult:
        """Signups and order attributions: once per natural key, never for a disabled affiliate or its own user."""
        if not affiliate.enabled:
            return OperationResult(data={flag: False, "reason": "affiliate_disabled"})
        if str(user_id) == str(affiliate.user_id):
            return OperationResult(data={flag: False, "reason": "self_referral"})
        job.claim(natural_key)
        event: dict[str, Any] = {
            "affiliate_id": affiliate.id,
            "affiliate_user_id": affiliate.user_id,
            "code": affiliate.code,
            **extra,
            "user_id": user_id,
        }
        return OperationResult(data={flag: True, **event}, events=[(event_type, event)])
