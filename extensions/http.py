"""The one HTTP path every integration uses: timeouts, TLS on, auth, error classification, redaction.

Integrations build :class:`ApiRequest` values in pure functions and hand them to :meth:`HttpApi.send`.
Classification happens here, once:

- connect errors, timeouts, 429 and the ``retryable_statuses`` (5xx by default) → ``ProviderUnavailable``
  carrying ``Retry-After`` when the provider sent one;
- 401/403 → ``AuthFailed``; 404 → ``NotFound``; 409 → ``Conflict``; other 4xx → ``ProviderRejected``;
- a 2xx whose body reports an error (``error_in_body`` hook) → ``ProviderRejected``.

Messages carry the provider's own reason, redacted, and never a URL with a query string.
"""

from __future__ import annotations

import email.utils
import json
import logging
import ssl
import time
import weakref
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from extensions.errors import (
    AuthFailed,
    Conflict,
    ExtensionError,
    InvalidConfig,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
)
from extensions.redaction import Redactor

log = logging.getLogger(__name__)


# The redactors of every live HttpApi, so log records of the HTTP stack can be cleaned too.
_REDACTORS: weakref.WeakSet[Redactor] = weakref.WeakSet()


class _RedactedHttpxLog(logging.Filter):
    """httpx logs every request URL at INFO: drop the query (e-mail filters, keys of providers that
    authenticate in the query) and mask secrets in the path (a Discord webhook URL is its own credential)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_clean_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


def _clean_url(url: httpx.URL) -> str:
    text = str(url.copy_with(query=None))
    for redactor in list(_REDACTORS):
        text = redactor.text(text)
    return text


if not any(isinstance(f, _RedactedHttpxLog) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_RedactedHttpxLog())


def tls_verification(ca_file: str | None) -> ssl.SSLContext | bool:
    """Verification always on; ``ca_file`` adds a trusted PEM (a panel with a self-signed certificate)."""
    if not ca_file:
        return True
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError):
        raise InvalidConfig(f"ca_file: {ca_file} is not a readable PEM certificate file") from None


DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_RETRYABLE = frozenset({429, 500, 502, 503, 504})
MAX_MESSAGE = 500


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    params: Mapping[str, Any] | list[tuple[str, Any]] | None = None
    json: Any = None
    form: Mapping[str, Any] | None = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: httpx.Headers
    text: str
    body: Any  # parsed JSON, or None when the body is not JSON

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


BodyErrorHook = Callable[[ApiResponse], str | None]
MessageHook = Callable[[ApiResponse], str | None]


def default_error_message(response: ApiResponse) -> str | None:
    """The provider's reason from the common error shapes, or None."""
    body = response.body
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return str(first.get("detail") or first.get("message") or first)
        for key in ("message", "error_description", "error", "detail", "reason"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and value.get("message"):
                return str(value["message"])
    return None


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpApi:
    """A configured client for one provider API; the only place an integration does I/O."""

    def __init__(
        self,
        base_url: str,
        *,
        provider: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        redactor: Redactor | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        ca_file: str | None = None,
        retryable_statuses: Collection[int] = DEFAULT_RETRYABLE,
        error_in_body: BodyErrorHook | None = None,
        error_message: MessageHook | None = None,
    ) -> None:
        self.provider = provider
        self.redactor = redactor or Redactor()
        _REDACTORS.add(self.redactor)
        self.retryable_statuses = frozenset(retryable_statuses)
        self._error_in_body = error_in_body
        self._error_message = error_message or default_error_message
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=dict(headers or {}),
            params=dict(params or {}),  # APIs that authenticate in the query string (never logged)
            auth=auth,
            timeout=timeout,
            verify=tls_verification(ca_file),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def send(self, request: ApiRequest, *, allow: Collection[int] = ()) -> ApiResponse:
        """Send ``request``; return the response if 2xx or in ``allow``, else raise the classified error."""
        where = f"{request.method} {request.path}"
        try:
            raw = self._client.request(
                request.method,
                request.path,
                params=request.params,
                json=request.json,
                data=request.form,
                content=request.content,
                headers=dict(request.headers),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ProviderUnavailable(f"{self.provider} unreachable ({where}): {type(exc).__name__}") from None
        except httpx.TimeoutException as exc:
            # The request may have reached the provider: callers reconcile before repeating an effect.
            raise ProviderUnavailable(
                f"{self.provider} timed out, outcome unknown ({where}): {type(exc).__name__}"
            ) from None
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"{self.provider} transport error ({where}): {type(exc).__name__}") from None
        response = _wrap(raw)
        log.debug("%s %s -> %s", self.provider, self.redactor.text(where), response.status)
        if response.status in allow:
            return response
        if response.ok:
            problem = self._error_in_body(response) if self._error_in_body else None
            if problem is None:
                return response
            raise ProviderRejected(self._message(where, problem), response.status)
        raise self.classify(response, where)

    def classify(self, response: ApiResponse, where: str) -> ExtensionError:
        reason = self._error_message(response) or _snippet(response.text) or "no reason given"
        message = self._message(where, f"HTTP {response.status}: {reason}")
        status = response.status
        if status == 429 or status in self.retryable_statuses:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return ProviderUnavailable(message, status, retry_after)
        if status in (401, 403):
            return AuthFailed(message, status)
        if status == 404:
            return NotFound(message, status)
        if status == 409:
            return Conflict(message, status)
        if status >= 500:
            return ProviderUnavailable(message, status)
        return ProviderRejected(message, status)

    def _message(self, where: str, reason: str) -> str:
        return self.redactor.text(f"{self.provider} {where}: {reason}")[:MAX_MESSAGE]


def _wrap(raw: httpx.Response) -> ApiResponse:
    text = raw.text
    body: Any = None
    if text:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
    return ApiResponse(status=raw.status_code, headers=raw.headers, text=text, body=body)


def _snippet(text: str) -> str:
    return " ".join(text.split())[:200]
