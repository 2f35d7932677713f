"""Plesk: one web hosting subscription per service through the panel's REST API v2."""

from extensions.servers.plesk.extension import Plesk

__all__ = ["Plesk"]
