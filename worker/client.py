"""The producer client: enqueue jobs by name, follow them, read their results.

It imports neither Celery nor any extension: it writes Celery protocol-2 messages straight to the
Redis broker (the same JSON a PHP billing system would push) and reads results from the backend keys.
With another broker (RabbitMQ: ``amqp://``) the same message is published through kombu, and the
results stay in Redis (``result_backend`` is then required).

    client = PaymenterClient("redis://127.0.0.1:6379/0", result_key=key)
    job = client.create_server("pterodactyl", connection="panel", service=service)
    envelope = client.wait(job)         # or raises JobError with the contract's error code
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

NAMESPACE = uuid.UUID("0f6c7a52-34c9-4a35-9d0c-8d6d0fd3b0a1")
CATEGORY_QUEUES = {"servers", "gateways", "others"}
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
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


def is_redis_url(url: str) -> bool:
    return url.startswith(REDIS_SCHEMES)


def message_body(kwargs: Mapping[str, Any]) -> list[Any]:
    """Protocol 2's body: no positional arguments, the keyword arguments, no workflow."""
    return [[], dict(kwargs), {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]


def message_headers(task: str, task_id: str, retries: int = 0) -> dict[str, Any]:
    return {
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
    }


def build_message(task: str, kwargs: Mapping[str, Any], task_id: str, queue: str, retries: int = 0) -> str:
    """The Redis-transport envelope of a Celery protocol-2 message (JSON body, keyword arguments only)."""
    body = json.dumps(message_body(kwargs))
    return json.dumps(
        {
            "body": base64.b64encode(body.encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": message_headers(task, task_id, retries),
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


class KombuPublisher:
    """Publishes protocol-2 messages through kombu (any broker kombu speaks, RabbitMQ in practice).

    One connection, opened on first use and re-established by ``ensure`` when it drops; the queues are
    declared exactly as the worker declares them (a direct exchange named after the queue).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._connection: Any = None
        self._publish: Any = None

    def publish(self, messages: Iterable[tuple[str, Mapping[str, Any], str, str]]) -> None:
        """``messages``: (task, kwargs, task id, queue)."""
        from kombu import Connection, Exchange, Producer, Queue  # type: ignore[attr-defined]

        with self._lock:  # a kombu connection is not thread-safe; the API publishes from a thread pool
            if self._connection is None:
                self._connection = Connection(self.url, connect_timeout=5)  # type: ignore[no-untyped-call]
                producer = Producer(self._connection)  # type: ignore[no-untyped-call]
                self._publish = self._connection.ensure(producer, producer.publish, max_retries=3)
            for task, kwargs, task_id, queue in messages:
                exchange = Exchange(queue, type="direct")  # type: ignore[no-untyped-call]
                self._publish(
                    message_body(kwargs),
                    exchange=exchange,
                    routing_key=queue,
                    declare=[Queue(queue, exchange, routing_key=queue)],  # type: ignore[no-untyped-call]
                    serializer="json",
                    headers=message_headers(task, task_id),
                    correlation_id=task_id,
                    reply_to="",
                    delivery_mode=2,
                )

    def ping(self, timeout: float = 3.0) -> None:
        """Raise unless the broker accepts a connection."""
        from kombu import Connection  # type: ignore[attr-defined]

        with Connection(self.url, connect_timeout=timeout) as connection:  # type: ignore[no-untyped-call]
            connection.ensure_connection(max_retries=1, timeout=timeout)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.release()
                self._connection = None


class PaymenterClient:
    def __init__(
        self,
        broker_url: str,
        result_backend: str | None = None,
        *,
        result_key: str | None = None,
        socket_timeout: float | None = None,
    ) -> None:
        self.broker: redis.Redis | None = None
        self._publisher: KombuPublisher | None = None
        timeouts = {"socket_timeout": socket_timeout, "socket_connect_timeout": socket_timeout}
        if is_redis_url(broker_url):
            self.broker = redis.Redis.from_url(broker_url, **timeouts)
        elif not result_backend:
            raise ValueError("the results are in Redis: give result_backend when the broker is not Redis")
        else:
            self._publisher = KombuPublisher(broker_url)
        backend = redis.Redis.from_url(result_backend, **timeouts) if result_backend else self.broker
        assert backend is not None
        self.backend: redis.Redis = backend
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
        """Enqueue many jobs in one round trip (a Redis pipeline; one kombu connection otherwise)."""
        messages = []
        enqueued = []
        for task, kwargs, key in jobs:
            payload = dict(kwargs)
            if key is not None:
                payload["idempotency_key"] = key
            job = Job(task_id_for(task, key, payload), task, key)
            messages.append((task, payload, job.id, queue or queue_for(task)))
            enqueued.append(job)
        if self._publisher is not None:
            self._publisher.publish(messages)
            return enqueued
        assert self.broker is not None
        pipe = self.broker.pipeline(transaction=False)
        for task, payload, task_id, target in messages:
            pipe.lpush(target, build_message(task, payload, task_id, target))
        pipe.execute()
        return enqueued

    def ping_broker(self) -> None:
        """Raise unless the broker answers."""
        if self._publisher is not None:
            self._publisher.ping()
        else:
            assert self.broker is not None
            self.broker.ping()

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()

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
