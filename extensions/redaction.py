"""Redaction at the source: known secret values and sensitive keys never leave a job in plain text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

# Keys whose values are secret whatever the producer sends (matched on the normalised key name).
SENSITIVE_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api_?key|apikey|private|credential|authorization|cookie|"
    r"two_?factor|tfa|otp|client_secret|signature|^key$|_key$)",
    re.IGNORECASE,
)

# Shapes that are secrets even when nobody told us their value (bearer tokens, key prefixes).
_SECRET_SHAPES = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}|\b(ptl[ac]_|sk_(live|test)_|rk_(live|test)_|whsec_)[A-Za-z0-9_]{4,}"
)


# Names the pattern above would catch that hold no secret.
NOT_SECRET = frozenset({"idempotency_key", "publishable_key", "public_key", "natural_key", "partition_key"})


def is_sensitive_key(key: str) -> bool:
    return key.lower() not in NOT_SECRET and bool(SENSITIVE_KEY.search(key))


class Redactor:
    """Replaces every registered secret value (and secret-shaped tokens) with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        # Very short values would mask ordinary words; they are not credentials anyway.
        self._secrets.update(s for s in secrets if s and len(s) >= 4)

    def extend(self, other: Redactor) -> None:
        self._secrets.update(other._secrets)

    def text(self, value: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in value:
                value = value.replace(secret, MASK)
        return _SECRET_SHAPES.sub(lambda m: (m.group(1) or "") + MASK, value)

    def data(self, value: Any) -> Any:
        """A deep copy with sensitive keys masked and known secret values removed from strings."""
        if isinstance(value, Mapping):
            return {
                k: (MASK if is_sensitive_key(str(k)) and v not in (None, "") else self.data(v))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def sensitive_values(value: Any) -> list[str]:
    """Every string found under a sensitive key, so it can be registered with a Redactor."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            if is_sensitive_key(str(k)) and isinstance(v, str | int) and not isinstance(v, bool):
                found.append(str(v))
            else:
                found.extend(sensitive_values(v))
    elif isinstance(value, list | tuple):
        for v in value:
            found.extend(sensitive_values(v))
    return found
