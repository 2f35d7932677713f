"""Structured logs: one JSON object per line, job lines carrying the running job's identity.

The running job is held in a context variable, set when a task starts and cleared when it ends (each
thread of the pool has its own), so every line logged while it runs, by the runtime, an extension or
Celery itself, carries ``task_id``, ``idempotency_key``, ``extension`` and ``connection``. Messages are
redacted where they are made; this module adds no values of its own beyond the job's identity.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["json", "text"]
JOB_FIELDS = ("task_id", "idempotency_key", "extension", "connection")

_job: ContextVar[dict[str, str | None] | None] = ContextVar("paymenter_job", default=None)


def bind_job(task_id: str | None, task: str | None, kwargs: Any) -> Token[dict[str, str | None] | None]:
    """Mark the job this thread now runs; ``reset_job(token)`` when it ends."""
    kwargs = kwargs if isinstance(kwargs, dict) else {}
    parts = (task or "").split(".")
    key = kwargs.get("idempotency_key")
    connection = kwargs.get("connection")
    return _job.set(
        {
            "task_id": task_id,
            "task": task,
            "idempotency_key": key if isinstance(key, str) else None,
            "extension": ".".join(parts[:2]) if len(parts) == 3 else None,
            "connection": connection if isinstance(connection, str) else None,
        }
    )


def reset_job(token: Token[dict[str, str | None] | None]) -> None:
    _job.reset(token)


def clear_job() -> None:
    _job.set(None)


def set_idempotency_key(key: str | None) -> None:
    """The key the runtime settled on (a derived one, or a webhook's natural key)."""
    current = _job.get()
    if current is not None and key is not None:
        current["idempotency_key"] = key


def current_job() -> dict[str, str | None] | None:
    current = _job.get()
    return dict(current) if current is not None else None


class JobContextFilter(logging.Filter):
    """Copies the running job's identity onto each record (None outside a job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _job.get() or {}
        for name in JOB_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, current.get(name))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in JOB_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        for name in ("method", "route", "status", "duration_ms"):  # the API's access lines
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(name)s] %(message)s"


def configure_logging(fmt: LogFormat, level: str | int = "INFO") -> None:
    """Replace the root handlers with one stderr handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(JobContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.captureWarnings(True)  # Python warnings become log lines in the same format
    for name in ("httpx", "httpcore"):  # they log every URL, query string included
        logging.getLogger(name).setLevel(logging.WARNING)
