"""PayPal: placeholder until the integration lands (no operations, so no tasks are registered)."""

from extensions.base import ExtensionConfig, GatewayExtension


class _Config(ExtensionConfig):
    pass


class PayPal(GatewayExtension):
    slug = "paypal"
    display_name = "PayPal"
    Config = _Config
    operations = frozenset()
