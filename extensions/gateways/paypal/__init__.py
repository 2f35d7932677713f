"""PayPal (REST): checkout orders, saved PayPal accounts, subscription cancellation and webhooks."""

from extensions.gateways.paypal.extension import PayPal

__all__ = ["PayPal"]
