"""Announcements: placeholder until the integration lands (no operations, so no tasks are registered)."""

from extensions.base import ExtensionConfig, OtherExtension


class _Config(ExtensionConfig):
    pass


class Announcements(OtherExtension):
    slug = "announcements"
    display_name = "Announcements"
    Config = _Config
    operations = frozenset()
