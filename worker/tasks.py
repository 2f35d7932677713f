"""Celery tasks by name: one per ``<category>.<slug>.<operation>`` plus ``extensions.*``.

Each task is a thin shell around ``Runtime.execute``; what the runtime asks for (retry, poll, busy
lease) becomes a re-published message here. Countdowns never exceed half the visibility timeout: a
longer wait goes to the delayed set, which the pump re-publishes when due.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import redis
from celery import Celery, Task, signals
from celery.exceptions import Ignore, InvalidTaskError, Reject
from celery.utils.saferepr import saferepr
from celery.worker.request import Request

from extensions.errors import ExtensionError, InvalidPayload, UnsupportedOperation
from extensions.redaction import Redactor
from extensions.registry import extension_class, list_extensions
from worker.app import QUEUES
from worker.errors import JobFailed, Reschedule
from worker.keys import DELAYED_SET
from worker.logs import bind_job, clear_job
from worker.metrics import record_outcome
from worker.operations import META_TASKS, MetaPayload, OperationSpec, operation_specs
from worker.runtime import INFRASTRUCTURE_ERRORS, Delivery, Runtime, load_runtime
from worker.settings import get_settings

log = logging.getLogger(__name__)

_payload_redactor = Redactor()


def redacted_repr(value: Any) -> str:
    """What logs, events and Flower show of a job's arguments: sensitive keys and inline config masked."""
    if isinstance(value, dict) and "config" in value:
        value = {**value, "config": "***"}
    return str(saferepr(_payload_redactor.data(value), maxlen=1024))


class RedactingRequest(Request):  # type: ignore[misc]
    """Sets argsrepr/kwargsrepr from the real arguments before the task-received event is sent.

    Foreign producers send no repr (Celery would then show the raw kwargs); Python producers' reprs are
    not trusted either.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # A body that is not [args, kwargs, embed], or headers of the wrong types: Celery would let this
            # escape and leave the message unacknowledged; as an invalid task it is dead-lettered instead.
            raise InvalidTaskError(f"malformed task message: {type(exc).__name__}") from None
        body_args, body_kwargs = self._request_dict.get("args"), self._request_dict.get("kwargs")
        if not isinstance(body_args, list | tuple) or not isinstance(body_kwargs, dict):
            raise InvalidTaskError("malformed task message: arguments must be a list and keyword arguments an object")
        limits = self._request_dict.get("timelimit")
        if limits is not None and not (
            isinstance(limits, list | tuple) and all(x is None or isinstance(x, int | float) for x in limits)
        ):
            raise InvalidTaskError("malformed task message: timelimit must be [soft, hard] seconds")
        self._argsrepr = redacted_repr(self._request_dict.get("args"))
        self._kwargsrepr = redacted_repr(self._request_dict.get("kwargs"))
        self._request_dict["argsrepr"] = self._argsrepr
        self._request_dict["kwargsrepr"] = self._kwargsrepr


class ExtensionTask(Task):  # type: ignore[misc]
    Request = "worker.tasks:RedactingRequest"
    acks_late = True
    typing = False
    max_retries = None  # bounded by the runtime's own attempt counter
    throws = (JobFailed,)


@cache
def runtime() -> Runtime:
    return load_runtime(get_settings())


def reschedule(task: Task, r: Reschedule) -> Exception:
    """Re-publish the running job after ``r.countdown`` seconds under the same task id."""
    settings = get_settings()
    request = task.request
    # Back to the queue it came from, whatever exchange a foreign producer named.
    queue = (request.delivery_info or {}).get("routing_key")
    queue = queue if queue in QUEUES else "celery"
    if r.countdown <= settings.max_countdown:
        retry: Exception = task.retry(
            countdown=max(r.countdown, 0.05), args=(), kwargs=request.kwargs, exc=None, throw=False, queue=queue
        )
        return retry
    entry = json.dumps(
        {
            "task": task.name,
            "id": request.id,
            "kwargs": request.kwargs,
            "retries": request.retries + 1,
            "queue": queue,
        }
    )
    runtime().redis.zadd(DELAYED_SET, {entry: time.time() + r.countdown})
    task.backend.mark_as_retry(request.id, r, request=request)
    ignore: Exception = Ignore()
    return ignore


def observed(task: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one execution and count how it ended (metrics)."""
    started = time.monotonic()
    try:
        envelope = run()
    except Reschedule as r:
        record_outcome(task, r.kind, time.monotonic() - started)
        raise
    except JobFailed as failed:
        record_outcome(task, "failed", time.monotonic() - started, str(failed.error.get("code")))
        raise
    record_outcome(task, "replayed" if envelope.get("replayed") else "succeeded", time.monotonic() - started)
    return envelope


def _make_task(app: Celery, spec: OperationSpec) -> None:
    def run(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
        tag = (getattr(self.request, "properties", None) or {}).get("delivery_tag")
        delivery = Delivery(self.request.id, self.request.retries or 0, str(tag) if tag else None)
        try:
            return observed(spec.name, lambda: runtime().execute(spec, args, kwargs, delivery))
        except Reschedule as r:
            raise reschedule(self, r) from None
        except INFRASTRUCTURE_ERRORS as exc:
            # Redis is away: hand the message back (or leave it unacknowledged for the visibility sweep)
            # rather than record a failure the job did not earn.
            log.warning("%s: Redis unavailable (%s); the job goes back to the queue", spec.name, type(exc).__name__)
            raise Reject(str(type(exc).__name__), requeue=True) from None

    app.task(name=spec.name, base=ExtensionTask, bind=True, queue=spec.queue)(run)


def _meta(kind: str, payload: MetaPayload) -> dict[str, Any]:
    if kind == "extensions.list":
        return list_extensions()
    if not payload.category or not payload.name:
        raise InvalidPayload(f"{kind} payload: category and name are required")
    cls = extension_class(payload.category, payload.name)
    if kind == "extensions.metadata":
        return cls.get_metadata()
    product = getattr(cls, "get_product_config", None)
    return {
        "config": cls.get_config(),
        "product_config": product() if product else [],
        "operations": sorted(cls.operations),
    }


def _make_meta_task(app: Celery, name: str) -> None:
    def execute(self: Task, args: Any, kwargs: Any) -> dict[str, Any]:
        try:
            if args:
                raise InvalidPayload("positional arguments are not accepted; send keyword arguments only")
            try:
                payload = MetaPayload.model_validate(kwargs)
            except ValueError as exc:
                raise InvalidPayload(f"{name} payload: {exc.__class__.__name__}") from None
            data = _meta(name, payload)
        except ExtensionError as exc:
            raise runtime().fail_raw(
                task=name, task_id=self.request.id, kwargs=kwargs, error=exc.to_dict(), attempts=1
            ) from None
        return {
            "status": "succeeded",
            "operation": name,
            "idempotency_key": None,
            "data": data,
            "replayed": False,
            "attempts": 1,
        }

    def run(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return observed(name, lambda: execute(self, args, kwargs))

    app.task(name=name, base=ExtensionTask, bind=True)(run)


def _bind_log_context(task_id: str | None = None, task: Any = None, kwargs: Any = None, **_: Any) -> None:
    bind_job(task_id, getattr(task, "name", None), kwargs)


def _clear_log_context(**_: Any) -> None:
    clear_job()


# The running job's identity on every log line, Celery's own "succeeded" line included.
signals.task_prerun.connect(_bind_log_context, weak=False)
signals.task_postrun.connect(_clear_log_context, weak=False)


def register_tasks(app: Celery) -> None:
    for spec in operation_specs():
        _make_task(app, spec)
    for name in META_TASKS:
        _make_meta_task(app, name)


# --- delayed set pump ---------------------------------------------------------------------------


class DelayedPump:
    """Re-publishes delayed jobs when due. One pump per worker; a short lock keeps two from racing."""

    def __init__(self, app: Celery, client: redis.Redis) -> None:
        self.app = app
        self.redis = client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="delayed-pump", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def pump_once(self) -> int:
        if not self.redis.set("paymenter:delayed:lock", "1", nx=True, px=5000):
            return 0
        moved = 0
        try:
            due: Any = self.redis.zrangebyscore(DELAYED_SET, "-inf", time.time(), start=0, num=100)
            for raw in due:
                entry = json.loads(raw)
                self.app.send_task(
                    entry["task"],
                    kwargs=entry["kwargs"],
                    task_id=entry["id"],
                    retries=entry["retries"],
                    queue=entry.get("queue") or "celery",
                )
                self.redis.zrem(DELAYED_SET, raw)
                moved += 1
        finally:
            self.redis.delete("paymenter:delayed:lock")
        return moved

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.pump_once()
            except Exception as exc:  # keep pumping through broker hiccups
                log.warning("delayed pump: %s", type(exc).__name__)


def on_unknown_task(name: str, task_id: str, kwargs: Any) -> JobFailed:
    error = UnsupportedOperation(f"unknown task name '{name}'").to_dict()
    record_outcome("unknown", "failed", 0.0, error["code"])
    return runtime().fail_raw(task=name, task_id=task_id, kwargs=kwargs, error=error, attempts=1)
