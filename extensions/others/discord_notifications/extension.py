"""DiscordNotifications: one embed per event, posted to a Discord webhook (``notify``).

``notify(event, data)`` takes Paymenter's twelve events (``invoice.paid`` or ``Invoice Paid``, filtered by
the ``events`` setting) and this worker's own event types arriving through the fan-out (``[routes]``).

Idempotency: Discord's Execute Webhook has no idempotency key, so delivery is at-least-once. The runtime
ledger de-duplicates jobs that carry an idempotency key (the fan-out always sends
``fanout:<event id>:<connection>``); only a crash between Discord's answer and the ledger write can repeat a
message. No event is emitted; the result is ``{"message_id", "event"}`` or ``{"skipped": reason}``.

Rate limits are shared by every worker through connection state (``remember``/``recall``): an answer with
``X-RateLimit-Remaining: 0`` or a 429 (per-route or global) pauses the webhook until its reset, and any
send before then re-schedules itself (``Pending``) without calling Discord. A webhook answering 404 (or 401
"Invalid Webhook Token") is marked dead and never called again; later sends fail at once.
"""

from __future__ import annotations

import random
import time
from typing import Any

import httpx
from pydantic import ConfigDict, Field

from extensions.base import JobContext, OperationResult, OtherExtension, Payload
from extensions.errors import AuthFailed, InvalidPayload, NotFound, Pending
from extensions.http import ApiRequest, ApiResponse, HttpApi
from extensions.others.discord_notifications import mapping as m
from extensions.others.discord_notifications.config import DiscordConfig

DISCORD_BASE = "https://discord.com"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
DEAD_TTL_S = 365 * 24 * 3600
JITTER_S = (0.05, 0.5)


class NotifyRequest(Payload):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event: str = Field(min_length=1, max_length=100)
    data: dict[str, Any] = Field(default_factory=dict)


class DiscordNotifications(OtherExtension[DiscordConfig]):
    slug = "discord_notifications"
    display_name = "DiscordNotifications"
    description = "Posts Paymenter and worker events to a Discord channel through a webhook"
    Config = DiscordConfig
    operations = frozenset({"notify"})
    payloads = {"notify": NotifyRequest}

    def setup(self) -> None:
        self.webhook_id, token = self.config.webhook()
        self.redactor.add(token)
        self.path = f"/api/webhooks/{self.webhook_id}/{token}"
        self.links = m.Links(self.config.app_url)
        self.clock = time.time  # replaced in tests to move time forward
        self.api = HttpApi(
            self.config.api_base or DISCORD_BASE,
            provider="discord",
            redactor=self.redactor,
            transport=self.transport,
            timeout=TIMEOUT,
            error_message=m.error_reason,
        )

    def notify(self, request: NotifyRequest, job: JobContext) -> OperationResult:
        event = m.event_type(request.event)
        if m.is_paymenter_event(event, request.data) and event not in self.config.events:
            return OperationResult(data={"skipped": f"event {event} is not selected", "event": event})
        try:
            embed = m.build_embed(event, request.data, self.links)
        except ValueError as exc:
            raise InvalidPayload(f"others.discord_notifications.notify payload: {exc}") from None
        if embed is None:
            return OperationResult(data={"skipped": "no visible changes", "event": event})
        self._check_webhook(job)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(self.clock()))
        body = m.message(m.fit(embed, stamp), self.config.ping_type, self.config.ping_id)
        response = self._send(body, job)
        message_id = response.body.get("id") if isinstance(response.body, dict) else None
        return OperationResult(data={"message_id": message_id, "event": event})

    # --- the one I/O path -------------------------------------------------------------------------

    def _check_webhook(self, job: JobContext) -> None:
        dead = job.recall(f"dead:{self.webhook_id}")
        if dead is not None:
            error = NotFound if dead.startswith("HTTP 404") else AuthFailed
            raise error(f"discord webhook {self.webhook_id} is disabled ({dead}); set a new webhook_url")
        paused_until = float(job.recall(f"paused:{self.webhook_id}") or 0)
        if paused_until > self.clock():
            self._pause(job, paused_until - self.clock(), "rate limit bucket is empty", remember=False)

    def _send(self, body: dict[str, Any], job: JobContext) -> ApiResponse:
        request = ApiRequest("POST", self.path, params={"wait": "true"}, json=body)
        response = self.api.send(request, allow=(401, 404, 429))
        if response.status == 429:
            wait, is_global = m.rate_limited(response)
            self._pause(job, wait, "global rate limit" if is_global else "rate limited")
        if response.status in (401, 404):
            reason = m.dead_reason(response)
            if reason is None:
                raise self.api.classify(response, "POST webhook")
            job.remember(f"dead:{self.webhook_id}", reason, DEAD_TTL_S)
            error = NotFound if response.status == 404 else AuthFailed
            raise error(f"discord webhook {self.webhook_id} answered {reason}; sending disabled", response.status)
        refill = m.bucket_exhausted(response)
        if refill is not None:
            job.remember(f"paused:{self.webhook_id}", repr(self.clock() + refill), int(refill) + 2)
        return response

    def _pause(self, job: JobContext, wait: float, why: str, *, remember: bool = True) -> None:
        if remember:  # every worker's next send to this webhook waits too
            job.remember(f"paused:{self.webhook_id}", repr(self.clock() + wait), int(wait) + 2)
        raise Pending(f"discord webhook {self.webhook_id}: {why}", delay=wait + random.uniform(*JITTER_S))
