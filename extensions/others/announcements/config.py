"""Connection config of Announcements: Paymenter has none; ``app_url`` builds the public links."""

from __future__ import annotations

from extensions.base import ExtensionConfig, OptionalBaseUrl, config_field


class AnnouncementsConfig(ExtensionConfig):
    app_url: OptionalBaseUrl = config_field(
        None, label="App URL", description="Paymenter's public URL; links are <app_url>/announcements/<slug>"
    )
