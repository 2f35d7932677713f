"""Stripe: placeholder until the integration lands (no operations, so no tasks are registered)."""

from extensions.base import ExtensionConfig, GatewayExtension


class _Config(ExtensionConfig):
    pass


class Stripe(GatewayExtension):
    slug = "stripe"
    display_name = "Stripe"
    Config = _Config
    operations = frozenset()
