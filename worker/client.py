"""The producer client: enqueue jobs by name, follow them, read their results.

It imports neither Celery nor any extension: it writes Celery protocol-2 messages straight to the
Redis broker (the same JSON a PHP billing system would push) and reads results from the backend keys.

    client = PaymenterClient("redis://127.0.0.1:6379/0", result_key=key)
    job = client.create_server("pterodactyl", connection="panel", service=service)
    envelope = client.wait(job)         # or raises JobError with the contract's error code
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

NAMESPACE = uuid.UUID("0f6c7a52-34c9-4a35-9d0c-8d6d0fd3b0a1")
CATEGORY_QUEUES = {"servers", "gateways", "others"}
TERMINAL = {"SUCCESS", "FAILURE", "REVOKED"}


class JobError(Exception):
    """A job ended in failure; ``code`` is one of the contract's error codes."""

    def __init__(self, code: str, message: str, retryable: bool = False, provider_status: int | None = None):
        super().__init__(code, message, retryable, provider_status)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.provider_status = provider_status

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class JobTimeout(TimeoutError):
    pass


@dataclass(frozen=True)
class Job:
    id: str
    task: str
    idempotency_key: str | None


def task_id_for(task: str, idempotency_key: str | None, kwargs: Mapping[str, Any] | None = None) -> str:
    """Same task, key and payload, same id: a producer retrying an enqueue cannot make two jobs.

    The payload is part of the id so that reusing a key for another payload gets a job of its own, whose
    ``idempotency_key_reused`` failure the producer can read (the backend never overwrites a success).
    """
    if idempotency_key is None:
        return str(uuid.uuid4())
    material = {k: v for k, v in (kwargs or {}).items() if k != "idempotency_key"}
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
    return str(uuid.uuid5(NAMESPACE, f"{task}\n{idempotency_key}\n{digest}"))


def queue_for(task: str) -> str:
    category = task.split(".", 1)[0]
    return category if category in CATEGORY_QUEUES else "celery"


def build_message(task: str, kwargs: Mapping[str, Any], task_id: str, queue: str, retries: int = 0) -> str:
    """The Redis-transport envelope of a Celery protocol-2 message (JSON body, keyword arguments only)."""
    body = json.dumps([[], dict(kwargs), {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    return json.dumps(
        {
            "body": base64.b64encode(body.encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": task,
                "id": task_id,
                "root_id": task_id,
                "parent_id": None,
                "group": None,
                "retries": retries,
                "eta": None,
                "expires": None,
                "timelimit": [None, None],
                "argsrepr": "()",
                "kwargsrepr": "{...}",
                "origin": f"paymenter-client@{socket.gethostname()}",
                "ignore_result": False,
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": queue, "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


class PaymenterClient:
    def __init__(
        self,
        broker_url: str,
        result_backend: str | None = None,
        *,
        result_key: str | None = None,
    ) -> None:
        self.broker = redis.Redis.from_url(broker_url)
        self.backend = redis.Redis.from_url(result_backend) if result_backend else self.broker
        self._fernet = None
        if result_key:
            from cryptography.fernet import Fernet

            self._fernet = Fernet(result_key.encode())

    # --- enqueue ---------------------------------------------------------------------------------
    def enqueue(
        self,
        task: str,
        kwargs: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        queue: str | None = None,
    ) -> Job:
        return self.enqueue_many([(task, kwargs or {}, idempotency_key)], queue=queue)[0]

    def enqueue_many(
        self,
        jobs: Iterable[tuple[str, Mapping[str, Any], str | None]],
        *,
        queue: str | None = None,
    ) -> list[Job]:
        """Enqueue many jobs in one pipelined round trip."""
        pipe = self.broker.pipeline(transaction=False)
        enqueued = []
        for task, kwargs, key in jobs:
            payload = dict(kwargs)
            if key is not None:
                payload["idempotency_key"] = key
            job = Job(task_id_for(task, key, payload), task, key)
            target = queue or queue_for(task)
            pipe.lpush(target, build_message(task, payload, job.id, target))
            enqueued.append(job)
        pipe.execute()
        return enqueued

    # --- typed helpers for the server operations ---------------------------------------------------
    def _server(
        self, op: str, extension: str, connection: str, service: Mapping[str, Any], idempotency_key: str | None
    ) -> Job:
        return self.enqueue(
            f"servers.{extension}.{op}",
            {"connection": connection, "service": dict(service)},
            idempotency_key=idempotency_key,
        )

    def create_server(
        self, extension: str, *, connection: str, service: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Job:
        return self._server("create", extension, connection, service, idempotency_key)

    def suspend_server(
        self, extension: str, *, connection: str, service: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Job:
        return self._server("suspend", extension, connection, service, idempotency_key)

    def unsuspend_server(
        self, extension: str, *, connection: str, service: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Job:
        return self._server("unsuspend", extension, connection, service, idempotency_key)

    def terminate_server(
        self, extension: str, *, connection: str, service: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Job:
        return self._server("terminate", extension, connection, service, idempotency_key)

    def upgrade_server(
        self, extension: str, *, connection: str, service: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Job:
        return self._server("upgrade", extension, connection, service, idempotency_key)

    def login_url(self, extension: str, *, connection: str, service: Mapping[str, Any]) -> Job:
        return self._server("login_url", extension, connection, service, None)

    def test_config(self, extension: str, *, connection: str) -> Job:
        category = "servers"
        return self.enqueue(f"{category}.{extension}.test_config", {"connection": connection})

    # --- results ---------------------------------------------------------------------------------
    def state(self, job: Job | str) -> dict[str, Any] | None:
        """The raw backend record (``status``, ``result``...) or None while nothing is stored."""
        task_id = job.id if isinstance(job, Job) else job
        raw = self.backend.get(f"celery-task-meta-{task_id}")
        return json.loads(raw) if raw else None

    def wait(self, job: Job | str, timeout: float = 60.0, poll: float = 0.05) -> dict[str, Any]:
        """The success envelope (with sealed fields unsealed into ``secrets``), or raise ``JobError``."""
        deadline = time.monotonic() + timeout
        while True:
            meta = self.state(job)
            if meta is not None and meta.get("status") in TERMINAL:
                return self._outcome(meta)
            if time.monotonic() >= deadline:
                raise JobTimeout(f"job {job.id if isinstance(job, Job) else job} not finished in {timeout}s")
            time.sleep(poll)

    def _outcome(self, meta: dict[str, Any]) -> dict[str, Any]:
        if meta["status"] == "SUCCESS":
            envelope: dict[str, Any] = dict(meta["result"])
            sealed = (envelope.get("data") or {}).get("sealed") or {}
            if sealed and self._fernet is not None:
                envelope["secrets"] = {k: self._fernet.decrypt(v.encode()).decode() for k, v in sealed.items()}
            return envelope
        raise error_from_meta(meta)


def error_from_meta(meta: Mapping[str, Any]) -> JobError:
    result = meta.get("result") or {}
    messages = result.get("exc_message") if isinstance(result, dict) else None
    if result.get("exc_type") == "JobFailed" and isinstance(messages, list) and messages:
        error = messages[0]
        return JobError(
            error.get("code", "provider_rejected"),
            error.get("message", ""),
            bool(error.get("retryable")),
            error.get("provider_status"),
        )
    return JobError("provider_rejected", f"{result.get('exc_type', 'failure')}: {messages}")
