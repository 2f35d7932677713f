"""DirectAdmin: one web hosting account per service through the panel's legacy API."""

from extensions.servers.directadmin.extension import DirectAdmin

__all__ = ["DirectAdmin"]
