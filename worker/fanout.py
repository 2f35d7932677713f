"""Fan-out: a routing table sends this worker's own events to notification connections.

Every worker runs one loop reading ``paymenter:events`` through a consumer group, so each stream entry
is handled by one worker. A matching route enqueues ``others.<slug>.notify`` with the idempotency key
``fanout:<event id>:<connection>`` and a task id derived from it: re-reading an entry after a crash (or
a job redelivered by the broker) hits the ledger, so each (event, channel) is delivered once.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import redis
from celery import Celery

from worker.client import task_id_for
from worker.keys import EVENTS_STREAM
from worker.profiles import Profiles

log = logging.getLogger(__name__)

GROUP = "paymenter-fanout"
RECLAIM_IDLE_MS = 60_000


def matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


class FanOut:
    def __init__(self, app: Celery, client: redis.Redis, profiles: Profiles, consumer: str) -> None:
        self.app = app
        self.redis = client
        self.profiles = profiles
        self.consumer = consumer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fanout", daemon=True)

    def ensure_group(self) -> None:
        try:
            # New groups start at the end: configuring a route does not replay the stream's history.
            self.redis.xgroup_create(EVENTS_STREAM, GROUP, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def targets(self, event: dict[str, Any]) -> list[tuple[str, str]]:
        """(task name, connection) pairs this event goes to."""
        found: list[tuple[str, str]] = []
        for pattern, connections in self.profiles.routes.items():
            if not matches(pattern, event["type"]):
                continue
            for connection in connections:
                profile = self.profiles.get_any(connection)
                if profile is None:
                    continue
                task = f"{profile.key}.notify"
                failed_task = str((event.get("data") or {}).get("task") or "")
                if event["type"] == "job.failed" and failed_task.startswith(profile.key + "."):
                    continue  # a failing channel must not notify itself about its own failures
                if (task, connection) not in found:
                    found.append((task, connection))
        return found

    def dispatch(self, event: dict[str, Any]) -> int:
        sent = 0
        for task, connection in self.targets(event):
            key = f"fanout:{event['id']}:{connection}"
            kwargs = {
                "connection": connection,
                "event": event["type"],
                "data": event.get("data") or {},
                "idempotency_key": key,
            }
            self.app.send_task(task, kwargs=kwargs, task_id=task_id_for(task, key, kwargs), queue="others")
            sent += 1
        return sent

    def run_once(self, block_ms: int = 1000) -> int:
        """Handle new entries (and ones another worker left unacknowledged); return how many were handled."""
        handled = 0
        reclaimed: Any = self.redis.xautoclaim(EVENTS_STREAM, GROUP, self.consumer, RECLAIM_IDLE_MS, "0-0", count=100)
        batches: list[Any] = [reclaimed[1]] if reclaimed and reclaimed[1] else []
        fresh: Any = self.redis.xreadgroup(GROUP, self.consumer, {EVENTS_STREAM: ">"}, count=100, block=block_ms)
        for _stream, entries in fresh or []:
            batches.append(entries)
        for entries in batches:
            for entry_id, fields in entries:
                if fields:
                    try:
                        self.dispatch(json.loads(fields[b"event"]))
                    except (ValueError, KeyError) as exc:
                        log.error("fan-out skipped a malformed event %s: %s", entry_id, type(exc).__name__)
                self.redis.xack(EVENTS_STREAM, GROUP, entry_id)
                handled += 1
        return handled

    def start(self) -> None:
        if not self.profiles.routes:
            return
        self.ensure_group()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # keep routing through broker or Redis hiccups
                log.warning("fan-out: %s", type(exc).__name__)
                self._stop.wait(1.0)
