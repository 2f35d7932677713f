"""Which extensions exist: the built-in alias table plus the ``paymenter_worker.extensions`` entry points.

A name registered twice, or one that does not resolve to an Extension subclass, fails at load time;
an unknown name raises ``UnsupportedOperation`` listing the known ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import Any

import httpx

from extensions.base import Extension, ExtensionConfig
from extensions.errors import UnsupportedOperation

ENTRY_POINT_GROUP = "paymenter_worker.extensions"

# "<category>.<slug>" -> "module:Class". Adding an integration is one line here.
BUILTIN: dict[str, str] = {
    "servers.pterodactyl": "extensions.servers.pterodactyl:Pterodactyl",
    "servers.convoy": "extensions.servers.convoy:Convoy",
    "servers.cpanel": "extensions.servers.cpanel:CPanel",
    "servers.directadmin": "extensions.servers.directadmin:DirectAdmin",
    "servers.enhance": "extensions.servers.enhance:Enhance",
    "servers.plesk": "extensions.servers.plesk:Plesk",
    "servers.proxmox": "extensions.servers.proxmox:Proxmox",
    "servers.virtfusion": "extensions.servers.virtfusion:VirtFusion",
    "servers.virtualizor": "extensions.servers.virtualizor:Virtualizor",
    "gateways.stripe": "extensions.gateways.stripe:Stripe",
    "gateways.paypal": "extensions.gateways.paypal:PayPal",
    "gateways.paypal_ipn": "extensions.gateways.paypal_ipn:PayPalIPN",
    "gateways.mollie": "extensions.gateways.mollie:Mollie",
    "others.discord_notifications": "extensions.others.discord_notifications:DiscordNotifications",
    "others.affiliates": "extensions.others.affiliates:Affiliates",
    "others.announcements": "extensions.others.announcements:Announcements",
}


class RegistryError(RuntimeError):
    pass


def _resolve(target: str) -> type[Extension]:
    module_name, _, attr = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(obj, type) and issubclass(obj, Extension)):
        raise RegistryError(f"{target} is not an Extension subclass")
    return obj


@cache
def load_registry() -> dict[str, type[Extension]]:
    registry: dict[str, type[Extension]] = {}
    sources = [(name, target) for name, target in BUILTIN.items()]
    sources += [(ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP)]
    for name, target in sources:
        if name in registry:
            raise RegistryError(f"extension {name} is registered twice ({target})")
        cls = _resolve(target)
        if f"{cls.category}.{cls.slug}" != name:
            raise RegistryError(f"{target} declares {cls.category}.{cls.slug}, registered as {name}")
        registry[name] = cls
    return registry


def extension_class(category: str, slug: str) -> type[Extension]:
    registry = load_registry()
    try:
        return registry[f"{category}.{slug}"]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise UnsupportedOperation(f"unknown extension {category}.{slug} (known: {known})") from None


def list_extensions() -> dict[str, list[str]]:
    listing: dict[str, list[str]] = {"servers": [], "gateways": [], "others": []}
    for cls in load_registry().values():
        if cls.operations:  # only what is implemented
            listing[cls.category].append(cls.slug)
    return {k: sorted(v) for k, v in listing.items()}


def get_extension(
    category: str,
    name: str,
    config: ExtensionConfig | Mapping[str, Any],
    *,
    transport: httpx.BaseTransport | None = None,
) -> Extension:
    """An extension instance for library use, without Celery."""
    return extension_class(category, name)(config, transport=transport)
