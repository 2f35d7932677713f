"""Announcements: scheduled, once-only publication of announcements (see ``extension``)."""

from extensions.others.announcements.extension import Announcements, PublishRequest, WithdrawRequest

__all__ = ["Announcements", "PublishRequest", "WithdrawRequest"]
