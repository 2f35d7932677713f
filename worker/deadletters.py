"""Dead letters: jobs that failed for good, kept with their error so an operator can look and replay.

A record holds the task name, the task id, the kwargs with sensitive values masked, the same kwargs
sealed whole (when ``PAYMENTER_RESULT_KEY`` is set, so replay restores a customer-supplied password),
the error and the attempt count. Undecodable messages keep a redacted excerpt of the raw body.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import redis

from extensions.redaction import Redactor
from worker import keys
from worker.events import utcnow_iso
from worker.metrics import DEAD_LETTER_REPLAYS, DEAD_LETTERS
from worker.sealing import Sealer

if TYPE_CHECKING:
    from worker.client import Job, PaymenterClient

Records = list[dict[str, Any]]


class DeadLetters:
    def __init__(self, client: redis.Redis, sealer: Sealer, ttl_s: int) -> None:
        self.redis = client
        self.sealer = sealer
        self.ttl_s = ttl_s

    def record(
        self,
        *,
        task: str | None,
        task_id: str | None,
        kwargs: Any,
        error: dict[str, Any],
        attempts: int,
        redactor: Redactor,
        raw: str | None = None,
    ) -> str:
        dead_id = str(uuid.uuid4())
        record = {
            "id": dead_id,
            "task": task,
            "task_id": task_id,
            "kwargs": redactor.data(kwargs),
            "sealed_kwargs": self.sealer.seal_json(kwargs) if kwargs is not None else None,
            "error": error,
            "attempts": attempts,
            "failed_at": utcnow_iso(),
            "raw": redactor.text(raw)[:2000] if raw is not None else None,
        }
        pipe = self.redis.pipeline()
        pipe.set(keys.dead_letter(dead_id), json.dumps(record), ex=self.ttl_s)
        pipe.zadd(keys.DEAD_LETTER_INDEX, {dead_id: time.time()})
        pipe.zremrangebyscore(keys.DEAD_LETTER_INDEX, "-inf", time.time() - self.ttl_s)
        pipe.execute()
        DEAD_LETTERS.labels(str(error.get("code"))).inc()
        return dead_id

    def list(self, limit: int = 100) -> list[dict[str, Any]]:
        ids: Any = self.redis.zrevrange(keys.DEAD_LETTER_INDEX, 0, limit - 1)
        records = []
        for dead_id in ids:
            raw = self.redis.get(keys.dead_letter(dead_id.decode()))
            if raw is not None:
                records.append(json.loads(raw))
        return records

    def public(self, limit: int = 100) -> Records:
        """The records as shown to operators: the sealed copy of the kwargs left out."""
        return [{k: v for k, v in record.items() if k != "sealed_kwargs"} for record in self.list(limit)]

    def get(self, dead_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(keys.dead_letter(dead_id))
        return json.loads(raw) if raw is not None else None

    def replay_kwargs(self, record: dict[str, Any]) -> dict[str, Any]:
        """The kwargs to publish again: unsealed originals when possible, else the masked copy."""
        if record.get("sealed_kwargs") and self.sealer.enabled:
            kwargs: dict[str, Any] = json.loads(self.sealer.unseal(record["sealed_kwargs"]))
            return kwargs
        masked: dict[str, Any] = record.get("kwargs") or {}
        return masked

    def remove(self, dead_id: str) -> None:
        pipe = self.redis.pipeline()
        pipe.delete(keys.dead_letter(dead_id))
        pipe.zrem(keys.DEAD_LETTER_INDEX, dead_id)
        pipe.execute()


class ReplayError(Exception):
    """A dead letter that cannot be replayed; ``reason`` is ``not_found`` or ``not_replayable``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def replay(dead_letters: DeadLetters, client: PaymenterClient, dead_id: str) -> Job:
    """Publish a dead letter's job again (a new task id) and remove the dead letter: CLI and HTTP alike."""
    record = dead_letters.get(dead_id)
    if record is None:
        raise ReplayError("not_found", f"no dead letter {dead_id}")
    if not record.get("task"):
        raise ReplayError(
            "not_replayable", f"dead letter {dead_id} has no task name (a malformed message); nothing to replay"
        )
    try:
        kwargs = dead_letters.replay_kwargs(record)
    except ValueError as exc:  # sealed under a key that has since been rotated
        raise ReplayError("not_replayable", f"dead letter {dead_id}: {exc}") from None
    job = client.enqueue(record["task"], kwargs)
    dead_letters.remove(dead_id)
    DEAD_LETTER_REPLAYS.labels(record["task"]).inc()
    return job
