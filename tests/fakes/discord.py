"""A strict Discord Execute Webhook: messages per webhook, server-side limits, rate-limit buckets.

``POST /api/webhooks/{id}/{token}`` records the JSON body and query and answers 200 with a message object
(``?wait=true``) or 204. It validates the body as Discord does (≤25 fields, names ≤256, values ≤1024 and
not blank, title ≤256, description ≤4096, all text ≤6000, content ≤2000, ≤10 embeds) and answers 400
``Invalid Form Body`` with the offending paths. Each webhook has a bucket of ``limit`` requests per
``window`` seconds on ``clock`` (a callable the test controls): answers carry ``X-RateLimit-*`` headers and
an empty bucket answers 429. Unknown webhooks answer 404 (code 10015), a wrong token 401 (code 50027).

Knobs: ``script(status, body, headers, times)`` answers the next sends with a Discord-shaped error
(``rate_limit(retry_after, is_global)`` for a 429); ``delete(webhook_id)`` removes a webhook.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.fakes.base import FakeProvider

PATH = re.compile(r"^/api/webhooks/(\d+)/([^/]+)/?$")
ERRORS = {
    400: {"message": "Invalid Form Body", "code": 50035, "errors": {}},
    401: {"message": "Invalid Webhook Token", "code": 50027},
    404: {"message": "Unknown Webhook", "code": 10015},
    500: {"message": "500: Internal Server Error", "code": 0},
}


@dataclass
class Webhook:
    token: str
    channel_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    used: int = 0
    window_start: float = 0.0


@dataclass
class Scripted:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int


def _too_long(errors: dict[str, str], path: str, value: Any, limit: int, required: bool = False) -> int:
    text = value if isinstance(value, str) else ""
    if value is not None and not isinstance(value, str):
        errors[path] = "Must be a string."
    elif len(text) > limit:
        errors[path] = f"Must be {limit} or fewer in length."
    elif required and not text.strip():
        errors[path] = "This field is required"
    return len(text)


def validate(body: Any) -> dict[str, str]:
    """Discord's form checks: ``{path: problem}``, empty when the body is acceptable."""
    errors: dict[str, str] = {}
    if not isinstance(body, dict):
        return {"body": "Must be a JSON object."}
    embeds = body.get("embeds") or []
    if not body.get("content") and not embeds:
        errors["content"] = "Cannot send an empty message"
    _too_long(errors, "content", body.get("content"), 2000)
    if len(embeds) > 10:
        errors["embeds"] = "Must be 10 or fewer in length."
    total = 0
    for i, embed in enumerate(embeds):
        total += _too_long(errors, f"embeds.{i}.title", embed.get("title"), 256)
        total += _too_long(errors, f"embeds.{i}.description", embed.get("description"), 4096)
        total += _too_long(errors, f"embeds.{i}.footer.text", (embed.get("footer") or {}).get("text"), 2048)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            errors[f"embeds.{i}.fields"] = "Must be 25 or fewer in length."
        for j, item in enumerate(fields):
            total += _too_long(errors, f"embeds.{i}.fields.{j}.name", item.get("name"), 256, required=True)
            total += _too_long(errors, f"embeds.{i}.fields.{j}.value", item.get("value"), 1024, required=True)
    if total > 6000:
        errors["embeds"] = "Embed size exceeds maximum size of 6000"
    return errors


class FakeDiscord(FakeProvider):
    def __init__(self, clock: Callable[[], float] = time.time, limit: int = 5, window: float = 2.0) -> None:
        super().__init__()
        self.clock = clock
        self.limit = limit
        self.window = window
        self.webhooks: dict[str, Webhook] = {}
        self.bodies: list[str] = []  # every raw body received, accepted or not
        self._scripted: list[Scripted] = []
        self._ids = itertools.count(1_100_000_000_000_000_000)

    # --- setup and knobs ---------------------------------------------------------------------------
    def add_webhook(self, webhook_id: str, token: str, channel_id: str = "900000000000000001") -> str:
        self.webhooks[webhook_id] = Webhook(token, channel_id)
        return f"https://discord.com/api/webhooks/{webhook_id}/{token}"

    def delete(self, webhook_id: str) -> None:
        self.webhooks.pop(webhook_id, None)

    def script(
        self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        self._scripted.append(Scripted(status, body or ERRORS.get(status, {}), headers or {}, times))

    def rate_limit(self, retry_after: float = 0.5, is_global: bool = False, times: int = 1) -> None:
        headers = {
            "Retry-After": str(max(1, round(retry_after))),
            "X-RateLimit-Scope": "global" if is_global else "user",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
        self.script(429, body, headers, times)

    def messages(self, webhook_id: str) -> list[dict[str, Any]]:
        hook = self.webhooks.get(webhook_id)
        return [m["body"] for m in hook.messages] if hook else []

    # --- the API ----------------------------------------------------------------------------------------
    def route(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.content.decode("utf-8", "replace"))
        match = PATH.match(request.url.path)
        if request.method != "POST" or match is None:
            return httpx.Response(405, json={"message": "405: Method Not Allowed", "code": 0})
        if self._scripted:
            scripted = self._scripted[0]
            scripted.times -= 1
            if scripted.times <= 0:
                self._scripted.pop(0)
            return httpx.Response(scripted.status, json=scripted.body, headers=scripted.headers)
        hook = self.webhooks.get(match.group(1))
        if hook is None:
            return httpx.Response(404, json=ERRORS[404])
        if hook.token != match.group(2):
            return httpx.Response(401, json=ERRORS[401])
        now = self.clock()
        if now - hook.window_start >= self.window:
            hook.window_start, hook.used = now, 0
        reset_after = round(hook.window_start + self.window - now, 3)
        if hook.used >= self.limit:
            headers = self._headers(hook, reset_after) | {"Retry-After": str(max(1, round(reset_after)))}
            body = {"message": "You are being rate limited.", "retry_after": reset_after, "global": False}
            return httpx.Response(429, json=body, headers=headers | {"X-RateLimit-Scope": "user"})
        hook.used += 1
        body = json.loads(request.content or b"null")
        errors = validate(body)
        if errors:
            detail = {path: {"_errors": [{"code": "INVALID", "message": text}]} for path, text in errors.items()}
            return httpx.Response(400, json={**ERRORS[400], "errors": detail}, headers=self._headers(hook, reset_after))
        message = {"id": str(next(self._ids)), "channel_id": hook.channel_id, **body}
        hook.messages.append({"body": body, "query": dict(request.url.params), "id": message["id"]})
        if request.url.params.get("wait") == "true":
            return httpx.Response(200, json=message, headers=self._headers(hook, reset_after))
        return httpx.Response(204, headers=self._headers(hook, reset_after))

    def _headers(self, hook: Webhook, reset_after: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - hook.used)),
            "X-RateLimit-Reset": f"{hook.window_start + self.window:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": f"bucket-{id(hook):x}",
        }
