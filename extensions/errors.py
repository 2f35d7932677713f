"""The one error tree every integration raises, and the wire shape producers read.

    ExtensionError(code, message, retryable, provider_status)
    ├── RetryableError                 retry with backoff; Retry-After honoured
    │   └── ProviderUnavailable        connect errors, timeouts, 429, 5xx, "busy"/"locked"
    └── PermanentError                 fail at once, dead-letter
        ├── InvalidPayload, InvalidConfig, UnknownConnection, UnsupportedOperation
        ├── AuthFailed, ProviderRejected, NotFound, Conflict
        └── SignatureInvalid, IdempotencyKeyReused

``Pending`` is not an error: it tells the runtime to look again later (a provider job still running)
without counting a retry. Every constructor argument reaches ``Exception.__init__`` so errors survive
pickling and JSON round trips.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

ErrorCode = Literal[
    "invalid_payload",
    "invalid_config",
    "unknown_connection",
    "unsupported_operation",
    "auth_failed",
    "provider_rejected",
    "not_found",
    "conflict",
    "signature_invalid",
    "idempotency_key_reused",
    "provider_unavailable",
]

ERROR_CODES: tuple[str, ...] = ErrorCode.__args__  # type: ignore[attr-defined]


class ExtensionError(Exception):
    code: ClassVar[ErrorCode] = "provider_rejected"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        provider_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider_status, retry_after)
        self.message = message
        self.provider_status = provider_status
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "provider_status": self.provider_status,
        }


class RetryableError(ExtensionError):
    code = "provider_unavailable"
    retryable = True


class ProviderUnavailable(RetryableError):
    code = "provider_unavailable"


class PermanentError(ExtensionError):
    retryable = False


class InvalidPayload(PermanentError):
    code = "invalid_payload"


class InvalidConfig(PermanentError):
    code = "invalid_config"


class UnknownConnection(PermanentError):
    code = "unknown_connection"


class UnsupportedOperation(PermanentError):
    code = "unsupported_operation"


class AuthFailed(PermanentError):
    code = "auth_failed"


class ProviderRejected(PermanentError):
    code = "provider_rejected"


class NotFound(PermanentError):
    code = "not_found"


class Conflict(PermanentError):
    code = "conflict"


class SignatureInvalid(PermanentError):
    code = "signature_invalid"


class IdempotencyKeyReused(PermanentError):
    code = "idempotency_key_reused"


_BY_CODE: dict[str, type[ExtensionError]] = {
    cls.code: cls
    for cls in (
        InvalidPayload,
        InvalidConfig,
        UnknownConnection,
        UnsupportedOperation,
        AuthFailed,
        ProviderRejected,
        NotFound,
        Conflict,
        SignatureInvalid,
        IdempotencyKeyReused,
        ProviderUnavailable,
    )
}


def error_from_dict(error: dict[str, Any]) -> ExtensionError:
    """Rebuild a typed error from its wire shape (what a producer reads from the result backend)."""
    cls = _BY_CODE.get(str(error.get("code")), ProviderRejected)
    return cls(str(error.get("message", "")), error.get("provider_status"))


class Pending(Exception):
    """The provider is still working (an install, a hypervisor task): look again after ``delay`` seconds."""

    def __init__(self, reason: str, delay: float = 5.0) -> None:
        super().__init__(reason, delay)
        self.reason = reason
        self.delay = delay
