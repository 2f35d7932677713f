"""Stripe: PaymentIntents with Stripe.js, saved payment methods as billing agreements, signed webhooks."""

from extensions.gateways.stripe.extension import Stripe

__all__ = ["Stripe"]
