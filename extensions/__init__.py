"""Paymenter's integrations as a plain library: base classes, registry and the shared HTTP layer.

Nothing here imports Celery or ``worker``: given a validated config and payload, an extension talks to
its provider and returns a typed result or raises an :class:`extensions.errors.ExtensionError`.

    >>> from extensions import get_extension
    >>> panel = get_extension("servers", "pterodactyl", {"host": "https://panel.example", "api_key": "ptla_x"})
"""

from extensions.registry import get_extension, list_extensions

__all__ = ["get_extension", "list_extensions"]
