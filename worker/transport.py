"""The Redis transport with one change: an item on a queue that is not a message envelope at all
(not JSON, not an object) is dead-lettered instead of stopping the worker with an unrecoverable error.
"""

from __future__ import annotations

import json
import logging
from queue import Empty
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

from extensions.errors import InvalidPayload

log = logging.getLogger(__name__)


def dead_letter_raw(raw: str, reason: str) -> None:
    from worker.tasks import runtime

    try:
        runtime().fail_raw(
            task=None, task_id=None, kwargs=None, error=InvalidPayload(reason).to_dict(), attempts=1, raw=raw
        )
    except Exception as exc:  # never let bookkeeping stop the consumer
        log.error("could not dead-letter a malformed queue item: %s", type(exc).__name__)


class Channel(kombu_redis.Channel):
    def _brpop_read(self, **options: Any) -> bool:
        try:
            result: bool = super()._brpop_read(**options)  # type: ignore[no-untyped-call]
        except Empty:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # Checked before connection errors: kombu counts some of these as a lost connection, and a
            # reconnect would restore every job in flight for nothing.
            raw = getattr(exc, "doc", None) or ""
            log.error("malformed item on a queue (%s): dead-lettered", type(exc).__name__)
            dead_letter_raw(str(raw), f"malformed queue item: {type(exc).__name__}")
            return True
        return result

    def _do_restore_message(
        self, payload: Any, exchange: str, routing_key: str, pipe: Any, leftmost: bool = False
    ) -> None:
        # A rejected job restored on a channel already closed by a lost connection would be logged and
        # dropped by kombu; a connection error aborts that restore and leaves it for the visibility sweep.
        if getattr(self, "exchange_types", None) is None:
            raise RedisConnectionError("the channel is closed; the message waits for the visibility sweep")
        super()._do_restore_message(payload, exchange, routing_key, pipe, leftmost)  # type: ignore[no-untyped-call]

    def _connparams(self, asynchronous: bool = False) -> Any:
        # After a lost connection kombu may close a channel whose connection it already released
        # (``client`` is None) and fail with AttributeError, which stops the worker; a connection error
        # here is what the consumer expects and recovers from.
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection was released")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]


class Transport(kombu_redis.Transport):
    def _deliver(self, message: Any, queue: str) -> None:
        # An item that is JSON but no message envelope never reaches Celery: it is dead-lettered whole.
        if not (
            isinstance(message, dict)
            and isinstance(message.get("properties"), dict)
            and isinstance(message.get("headers", {}), dict)
        ):
            log.error("an item on queue %s is not a message envelope: dead-lettered", queue)
            dead_letter_raw(json.dumps(message)[:4000], "malformed queue item: not a message envelope")
            return
        super()._deliver(message, queue)  # type: ignore[no-untyped-call]

    Channel = Channel


def install() -> None:
    """Make ``redis://`` URLs use this transport (kombu resolves transports through its alias table)."""
    TRANSPORT_ALIASES["redis"] = "worker.transport:Transport"
