"""PayPal IPN gateway: e-mail-only PayPal checkout with notifications verified by postback."""

from extensions.gateways.paypal_ipn.extension import PayPalIPN

__all__ = ["PayPalIPN"]
