"""Affiliates: referral rewards and signups, computed by the worker and applied by the billing system.

There is no provider: the worker decides and publishes events; the billing system credits the
affiliate's user (``credits`` row of the invoice currency) when it reads ``affiliate.rewarded``.

Operations and their once-only rule
- ``reward`` (on Invoice Paid): ``job.claim("<affiliate id>:<invoice id>")`` just before emitting, so a
  second Invoice Paid for the same invoice (status flipped back and forth, a redelivery, another
  idempotency key) replays the first result and emits nothing. Only a reward consumes the claim: an
  invoice skipped for a reason below can still earn once, later, if it qualifies.
- ``signup`` (on User Created): ``job.claim("<affiliate id>:<user id>")``, one event per pair.

Events
- ``affiliate.rewarded``: ``affiliate_id``, ``user_id`` (the affiliate's user, who is credited),
  ``code``, ``invoice_id``, ``amount``, ``currency``, ``kind`` (``percentage``/``fixed``),
  ``percentage`` (the rate applied, or null), ``base``, ``capped``, ``renewal``.
- ``affiliate.signup``: ``affiliate_id``, ``affiliate_user_id``, ``code``, ``user_id``.

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
- ``enabled = false`` (ignored by Paymenter): no reward and no signup is counted; the result says
  ``rewarded: false`` with the reason. An invoice of the affiliate's own user is never rewarded, a
  signup of the affiliate's own user is not counted.
- ``discount`` is the buyer's discount: it is already part of the prices the buyer paid, so it does
  not reduce the base a second time.
- ``renewal: true`` invoices earn again unless the connection sets ``reward_renewals`` off.
"""

from __future__ import annotations

from typing import Any

from extensions.base import JobContext, OperationResult, OtherExtension
from extensions.others.affiliates.config import AffiliatesConfig
from extensions.others.affiliates.mapping import RewardRequest, SignupRequest, Skip, compute_reward


class Affiliates(OtherExtension[AffiliatesConfig]):
    slug = "affiliates"
    display_name = "Affiliates"
    description = "Referral rewards and signups, published as events for the billing system to credit"
    Config = AffiliatesConfig
    operations = frozenset({"reward", "signup"})
    payloads = {"reward": RewardRequest, "signup": SignupRequest}

    def reward(self, request: RewardRequest, job: JobContext) -> OperationResult:
        outcome = compute_reward(request, self.config)
        if isinstance(outcome, Skip):
            return OperationResult(data=outcome.data())
        job.claim(f"{request.affiliate.id}:{request.invoice.id}")
        event = outcome.data(request)
        return OperationResult(data={"rewarded": True, **event}, events=[("affiliate.rewarded", event)])

    def signup(self, request: SignupRequest, job: JobContext) -> OperationResult:
        affiliate, user = request.affiliate, request.user
        if not affiliate.enabled:
            return OperationResult(data={"recorded": False, "reason": "affiliate_disabled"})
        if str(user.id) == str(affiliate.user_id):
            return OperationResult(data={"recorded": False, "reason": "self_referral"})
        job.claim(f"{affiliate.id}:{user.id}")
        event: dict[str, Any] = {
            "affiliate_id": affiliate.id,
            "affiliate_user_id": affiliate.user_id,
            "code": affiliate.code,
            "user_id": user.id,
        }
        return OperationResult(data={"recorded": True, **event}, events=[("affiliate.signup", event)])
