"""Fernet sealing of secret result fields and dead-letter payloads (key: ``PAYMENTER_RESULT_KEY``)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class Sealer:
    """Seals with the configured key; with no key, sealing is refused and callers leave values out."""

    def __init__(self, key: str | None) -> None:
        self._fernet = Fernet(key.encode()) if key else None

    @property
    def enabled(self) -> bool:
        return self._fernet is not None

    def seal(self, value: str) -> str | None:
        if self._fernet is None:
            return None
        return self._fernet.encrypt(value.encode()).decode()

    def seal_json(self, value: Any) -> str | None:
        return self.seal(json.dumps(value, sort_keys=True))

    def unseal(self, token: str) -> str:
        if self._fernet is None:
            raise ValueError("no PAYMENTER_RESULT_KEY: cannot unseal")
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("sealed value does not match the key") from None
