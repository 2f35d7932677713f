"""Mollie: placeholder until the integration lands (no operations, so no tasks are registered)."""

from extensions.base import ExtensionConfig, GatewayExtension


class _Config(ExtensionConfig):
    pass


class Mollie(GatewayExtension):
    slug = "mollie"
    display_name = "Mollie"
    Config = _Config
    operations = frozenset()
