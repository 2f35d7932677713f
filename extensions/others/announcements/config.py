"""Connection config of Announcements: Paymenter has none; ``app_url`` builds the public links."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import field_validator

from extensions.base import ExtensionConfig, OptionalStr, config_field


class AnnouncementsConfig(ExtensionConfig):
    app_url: OptionalStr = config_field(
        None, label="App URL", description="Paymenter's public URL; links are <app_url>/announcements/<slug>"
    )

    @field_validator("app_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value
