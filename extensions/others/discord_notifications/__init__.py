"""DiscordNotifications: Paymenter's and this worker's events as Discord embeds (see ``extension``)."""

from extensions.others.discord_notifications.extension import DiscordNotifications, NotifyRequest

__all__ = ["DiscordNotifications", "NotifyRequest"]
