"""The shared HTTP layer classifies once: retryable vs permanent, Retry-After, body errors, redaction."""

from __future__ import annotations

import httpx
import pytest

from extensions.errors import AuthFailed, Conflict, NotFound, ProviderRejected, ProviderUnavailable
from extensions.http import ApiRequest, ApiResponse, HttpApi, parse_retry_after
from extensions.redaction import Redactor

SECRET = "sk_test_supersecretvalue123"


def api(handler, **kwargs) -> HttpApi:  # type: ignore[no-untyped-def]
    return HttpApi(
        "https://provider.example/api/",
        provider="Example",
        headers={"Authorization": f"Bearer {SECRET}"},
        redactor=Redactor([SECRET]),
        transport=httpx.MockTransport(handler),
        **kwargs,
    )


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (429, ProviderUnavailable, True),
        (500, ProviderUnavailable, True),
        (502, ProviderUnavailable, True),
        (503, ProviderUnavailable, True),
        (504, ProviderUnavailable, True),
        (401, AuthFailed, False),
        (403, AuthFailed, False),
        (404, NotFound, False),
        (409, Conflict, False),
        (422, ProviderRejected, False),
        (400, ProviderRejected, False),
    ],
)
def test_status_is_classified(status: int, error: type[Exception], retryable: bool) -> None:
    client = api(lambda r: httpx.Response(status, json={"message": "nope"}))
    with pytest.raises(error) as info:
        client.send(ApiRequest("GET", "/things"))
    assert info.value.retryable is retryable  # type: ignore[attr-defined]
    assert info.value.provider_status == status  # type: ignore[attr-defined]
    assert "nope" in info.value.message  # type: ignore[attr-defined]


def test_retry_after_seconds_and_dates() -> None:
    client = api(lambda r: httpx.Response(429, headers={"Retry-After": "12"}))
    with pytest.raises(ProviderUnavailable) as info:
        client.send(ApiRequest("GET", "/x"))
    assert info.value.retry_after == 12
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_connect_error_and_timeout_are_retryable_and_say_so() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ProviderUnavailable, match="unreachable"):
        api(refuse).send(ApiRequest("POST", "/x"))
    with pytest.raises(ProviderUnavailable, match="outcome unknown"):
        api(slow).send(ApiRequest("POST", "/x"))


def test_allowed_status_is_returned_not_raised() -> None:
    response = api(lambda r: httpx.Response(404, json={})).send(ApiRequest("GET", "/gone"), allow={404})
    assert response.status == 404


def test_error_inside_a_200_body_is_an_error() -> None:
    def body_error(response: ApiResponse) -> str | None:
        return response.body.get("error") if response.body.get("result") == 0 else None

    client = api(lambda r: httpx.Response(200, json={"result": 0, "error": "account exists"}), error_in_body=body_error)
    with pytest.raises(ProviderRejected, match="account exists"):
        client.send(ApiRequest("POST", "/create"))


def test_messages_never_carry_the_secret_or_the_query_string() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=f"bad key {SECRET} for {request.url}")

    with pytest.raises(ProviderRejected) as info:
        api(echo).send(ApiRequest("GET", "/x", params={"api_key": "q-secret-value"}))
    assert SECRET not in info.value.message
    assert "q-secret-value" not in str(info.value) or "***" in str(info.value)
    assert "/x" in info.value.message


def test_tls_verification_is_on_by_default() -> None:
    client = HttpApi("https://provider.example", provider="Example")
    pool = client._client._transport._pool  # type: ignore[attr-defined]
    assert pool._ssl_context.verify_mode.name == "CERT_REQUIRED"
