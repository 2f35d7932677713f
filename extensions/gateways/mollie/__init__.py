"""Mollie: hosted-checkout payments, webhooks verified by re-fetching the payment, refunds."""

from extensions.gateways.mollie.extension import Mollie

__all__ = ["Mollie"]
