"""DiscordNotifications: placeholder until the integration lands (no operations, so no tasks are registered)."""

from extensions.base import ExtensionConfig, OtherExtension


class _Config(ExtensionConfig):
    pass


class DiscordNotifications(OtherExtension):
    slug = "discord_notifications"
    display_name = "DiscordNotifications"
    Config = _Config
    operations = frozenset()
