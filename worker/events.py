"""Events on the Redis Stream ``paymenter:events`` (DESIGN §3): fields ``id``, ``type`` and ``event``."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import redis

from worker.keys import EVENTS_STREAM


def utcnow_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


EVENT_NAMESPACE = uuid.UUID("6b3d1c6e-8f0e-4c55-9a57-2f1e4d3c2b10")


def build_event(event_type: str, source: str, idempotency_key: str | None, data: dict[str, Any]) -> dict[str, Any]:
    """The event envelope. With a job key its id is derived from the key, the type and the transaction,
    so a job run twice (a worker lost between publishing and recording success) repeats the same id and
    consumers can drop the repeat."""
    if idempotency_key is not None:
        identity = f"{idempotency_key}|{event_type}|{data.get('transaction_id') or ''}"
        event_id = str(uuid.uuid5(EVENT_NAMESPACE, identity))
    else:
        event_id = str(uuid.uuid4())
    return {
        "id": event_id,
        "type": event_type,
        "occurred_at": utcnow_iso(),
        "source": source,
        "idempotency_key": idempotency_key,
        "data": data,
    }


class EventStream:
    def __init__(self, client: redis.Redis, maxlen: int) -> None:
        self.redis = client
        self.maxlen = maxlen

    def publish(self, event: dict[str, Any], pipe: Any = None) -> str | None:
        """Append ``event``; its stream entry id, or None when queued on ``pipe`` for the caller to execute."""
        entry_id = (pipe or self.redis).xadd(
            EVENTS_STREAM,
            {"id": event["id"], "type": event["type"], "event": json.dumps(event, sort_keys=True)},
            maxlen=self.maxlen,
            approximate=True,
        )
        if pipe is not None:
            return None
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def read(self, after: str = "0", count: int = 1000) -> list[dict[str, Any]]:
        entries: Any = self.redis.xrange(EVENTS_STREAM, min=f"({after}" if after != "0" else "-", count=count)
        return [json.loads(fields[b"event"]) for _id, fields in entries]
