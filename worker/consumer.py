"""A Celery consumer that dead-letters what it cannot run instead of only logging and dropping it.

Celery acknowledges an undecodable message, rejects one in an unknown format or with an invalid
header, and marks an unknown task name as ``NotRegistered``: each of those now also leaves a dead
letter and a ``job.failed`` event, and an unknown task's result holds the contract's error shape.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

from extensions.errors import InvalidPayload
from worker.errors import JobFailed

log = logging.getLogger(__name__)


def _raw_text(message: Any) -> str:
    body = getattr(message, "body", b"")
    if isinstance(body, bytes):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(body[:1500]).decode()
    return str(body)


def _kwargs_of(message: Any) -> Any:
    try:
        payload = message.decode()
    except Exception:  # undecodable: nothing to keep but the raw text
        return None
    if isinstance(payload, list | tuple) and len(payload) >= 2:
        return payload[1]
    return None


class Consumer(CeleryConsumer):  # type: ignore[misc]
    def _dead_letter(self, message: Any, reason: str, *, with_kwargs: bool = True) -> JobFailed | None:
        from worker.tasks import runtime

        headers = getattr(message, "headers", None) or {}
        headers = headers if isinstance(headers, dict) else {}
        try:
            return runtime().fail_raw(
                task=headers.get("task"),
                task_id=headers.get("id"),
                kwargs=_kwargs_of(message) if with_kwargs else None,
                error=InvalidPayload(reason).to_dict(),
                attempts=1,
                raw=_raw_text(message),
            )
        except Exception as exc:  # the consumer must keep serving even if Redis hiccups here
            log.error("could not dead-letter a bad message: %s", type(exc).__name__)
            return None

    def _store_failure(self, message: Any, failure: JobFailed | None) -> None:
        headers = getattr(message, "headers", None) or {}
        task_id = headers.get("id") if isinstance(headers, dict) else None
        if failure is not None and task_id:
            try:
                self.app.backend.mark_as_failure(task_id, failure)
            except Exception as exc:
                log.error("could not store the failure of %s: %s", task_id, type(exc).__name__)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        failure = self._dead_letter(message, f"undecodable message: {type(exc).__name__}", with_kwargs=False)
        self._store_failure(message, failure)
        message.ack()

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._dead_letter(message, "message in an unknown format (no task header)")
        message.reject_log_error(log, self.connection_errors)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        failure = self._dead_letter(message, f"invalid task message: {type(exc).__name__}")
        self._store_failure(message, failure)
        message.reject_log_error(log, self.connection_errors)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        # Celery's own handler logs the whole body (kwargs included): this one logs the name only.
        from worker.tasks import on_unknown_task

        headers = message.headers if isinstance(message.headers, dict) else {}
        name, task_id = str(headers.get("task")), str(headers.get("id"))
        log.error("unknown task name %r (id %s): dead-lettered", name, task_id)
        message.reject_log_error(log, self.connection_errors)
        try:
            failure = on_unknown_task(name, task_id, _kwargs_of(message))
        except Exception as err:
            log.error("could not dead-letter an unknown task: %s", type(err).__name__)
            return
        self._store_failure(message, failure)
        if self.event_dispatcher:
            self.event_dispatcher.send("task-failed", uuid=task_id, exception=f"JobFailed({failure})")
