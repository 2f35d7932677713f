"""Pterodactyl panel: one game server per service through the Application API."""

from extensions.servers.pterodactyl.extension import Pterodactyl

__all__ = ["Pterodactyl"]
