"""PayPalIPN: placeholder until the integration lands (no operations, so no tasks are registered)."""

from extensions.base import ExtensionConfig, GatewayExtension


class _Config(ExtensionConfig):
    pass


class PayPalIPN(GatewayExtension):
    slug = "paypal_ipn"
    display_name = "PayPalIPN"
    Config = _Config
    operations = frozenset()
