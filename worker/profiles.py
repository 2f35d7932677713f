"""Connection profiles: ``[connections.<name>]`` tables naming an extension and its config fields.

Values may reference the environment as ``${VAR}`` so the file itself holds no secret. Every profile
is validated against its extension's config model at start; a bad one stops the worker with a message
naming the profile and the field.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extensions.base import Extension, ExtensionConfig
from extensions.errors import ExtensionError, InvalidConfig, UnknownConnection
from extensions.registry import extension_class

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Limits:
    """Opt-in per-connection limits (profile keys ``rate_limit`` per second, ``max_concurrency``)."""

    rate_limit: float | None = None
    max_concurrency: int | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    extension: type[Extension]
    config: ExtensionConfig
    limits: Limits = Limits()

    @property
    def key(self) -> str:
        return f"{self.extension.category}.{self.extension.slug}"


def _expand(value: Any, where: str) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in os.environ:
                raise InvalidConfig(f"{where}: environment variable {var} is not set")
            return os.environ[var]

        return _ENV_REF.sub(sub, value)
    if isinstance(value, list):
        return [_expand(v, where) for v in value]
    return value


def parse_profile(name: str, table: Mapping[str, Any]) -> Profile:
    where = f"connection profile '{name}'"
    raw = dict(table)
    target = raw.pop("extension", None)
    if not isinstance(target, str) or "." not in target:
        raise InvalidConfig(f"{where}: 'extension' must be '<category>.<slug>'")
    category, _, slug = target.partition(".")
    try:
        cls = extension_class(category, slug)
    except ExtensionError as exc:
        raise InvalidConfig(f"{where}: {exc.message}") from None
    limits = _limits(raw.pop("rate_limit", None), raw.pop("max_concurrency", None), where)
    values = {k: _expand(v, f"{where} field {k}") for k, v in raw.items()}
    return Profile(name, cls, cls.parse_config(values, where), limits)


def _limits(rate: Any, concurrency: Any, where: str) -> Limits:
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0):
        raise InvalidConfig(f"{where}: rate_limit must be a positive number of calls per second")
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
    ):
        raise InvalidConfig(f"{where}: max_concurrency must be a whole number of at least 1")
    return Limits(float(rate) if rate is not None else None, concurrency)


def parse_routes(table: Any, profiles: Mapping[str, Profile]) -> dict[str, list[str]]:
    """``[routes]``: event type (or ``prefix.*``, or ``*``) → connections whose extension can ``notify``."""
    if not isinstance(table, dict):
        raise InvalidConfig("[routes] must map event types to lists of connection names")
    routes: dict[str, list[str]] = {}
    for pattern, targets in table.items():
        names = [targets] if isinstance(targets, str) else targets
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InvalidConfig(f"route '{pattern}': expected a connection name or a list of them")
        for name in names:
            profile = profiles.get(name)
            if profile is None:
                raise InvalidConfig(f"route '{pattern}': no connection profile named '{name}'")
            if "notify" not in profile.extension.operations:
                raise InvalidConfig(f"route '{pattern}': connection '{name}' ({profile.key}) cannot notify")
        routes[pattern] = names
    return routes


class Profiles:
    def __init__(
        self, profiles: Mapping[str, Profile] | None = None, routes: Mapping[str, list[str]] | None = None
    ) -> None:
        self._profiles = dict(profiles or {})
        self.routes = dict(routes or {})

    @classmethod
    def load(cls, path: Path | None) -> Profiles:
        if path is None or not path.exists() or not path.read_text().strip():
            if path is not None and not path.exists():
                raise InvalidConfig(f"PAYMENTER_CONNECTIONS file {path} does not exist")
            return cls()
        try:
            document = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise InvalidConfig(f"{path}: not valid TOML: {exc}") from None
        tables = document.get("connections", {})
        if not isinstance(tables, dict):
            raise InvalidConfig(f"{path}: [connections] must be a table of profiles")
        profiles = {name: parse_profile(name, table) for name, table in tables.items()}
        return cls(profiles, parse_routes(document.get("routes", {}), profiles))

    def get(self, name: str, extension: type[Extension]) -> Profile:
        profile = self._profiles.get(name)
        if profile is None:
            raise UnknownConnection(f"no connection profile named '{name}'")
        if profile.extension is not extension:
            raise UnknownConnection(
                f"connection '{name}' is for {profile.key}, not {extension.category}.{extension.slug}"
            )
        return profile

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._profiles.values())

    def __len__(self) -> int:
        return len(self._profiles)

    def get_any(self, name: str) -> Profile | None:
        return self._profiles.get(name)

    def secret_values(self) -> list[str]:
        return [s for p in self._profiles.values() for s in p.config.secret_values()]
