"""cPanel/WHM: one cPanel hosting account per service through WHM API 1."""

from extensions.servers.cpanel.extension import CPanel

__all__ = ["CPanel"]
