"""Affiliates: placeholder until the integration lands (no operations, so no tasks are registered)."""

from extensions.base import ExtensionConfig, OtherExtension


class _Config(ExtensionConfig):
    pass


class Affiliates(OtherExtension):
    slug = "affiliates"
    display_name = "Affiliates"
    Config = _Config
    operations = frozenset()
