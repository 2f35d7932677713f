"""Operations plumbing in process: JSON log lines, the job log context, metrics, dead-letter replay, kombu."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import fakeredis
import pytest
from cryptography.fernet import Fernet
from kombu import Connection, Exchange, Queue  # type: ignore[attr-defined]

from extensions.redaction import Redactor
from worker.client import PaymenterClient
from worker.deadletters import DeadLetters, ReplayError, replay
from worker.logs import JobContextFilter, JsonFormatter, bind_job, clear_job, set_idempotency_key
from worker.metrics import REGISTRY, record_outcome
from worker.sealing import Sealer


def render(message: str, *args: Any) -> dict[str, Any]:
    record = logging.LogRecord("paymenter.job", logging.INFO, __file__, 1, message, args, None)
    JobContextFilter().filter(record)
    parsed: dict[str, Any] = json.loads(JsonFormatter().format(record))
    return parsed


def test_log_lines_carry_the_running_job_and_nothing_outside_one() -> None:
    kwargs = {"connection": "panel", "service": {"id": 7}, "idempotency_key": None}
    bind_job("task-1", "servers.pterodactyl.create", kwargs)
    try:
        set_idempotency_key("servers.pterodactyl.create:panel:7")
        line = render("attempt %s failed", 1)
    finally:
        clear_job()
    assert line["message"] == "attempt 1 failed"
    assert line["level"] == "info"
    assert line["task_id"] == "task-1"
    assert line["idempotency_key"] == "servers.pterodactyl.create:panel:7"
    assert line["extension"] == "servers.pterodactyl"
    assert line["connection"] == "panel"
    assert line["ts"].endswith("Z")
    outside = render("idle")
    assert not {"task_id", "idempotency_key", "extension", "connection"} & set(outside)


def test_record_outcome_counts_by_task_and_outcome() -> None:
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    task = "servers.unit.create"
    record_outcome(task, "succeeded", 0.2)
    record_outcome(task, "replayed", 0.01)
    record_outcome(task, "failed", 0.1, "not_found")
    record_outcome(task, "retry", 0.1)
    record_outcome(task, "poll", 0.1)
    assert value("paymenter_jobs_total", task=task, outcome="succeeded", code="") == 1
    assert value("paymenter_jobs_total", task=task, outcome="replayed", code="") == 1
    assert value("paymenter_jobs_total", task=task, outcome="failed", code="not_found") == 1
    assert value("paymenter_job_retries_total", task=task) == 1
    assert value("paymenter_job_reschedules_total", task=task, kind="poll") == 1
    assert value("paymenter_job_duration_seconds_count", task=task, outcome="succeeded") == 1


def test_replay_publishes_the_sealed_kwargs_again_and_removes_the_letter() -> None:
    backend = fakeredis.FakeRedis()
    letters = DeadLetters(backend, Sealer(Fernet.generate_key().decode()), 3600)
    kwargs = {"connection": "p", "service": {"id": 1, "properties": {"password": "Secret-77"}}}
    dead = letters.record(
        task="servers.x.create",
        task_id="t1",
        kwargs=kwargs,
        error={"code": "not_found"},
        attempts=1,
        redactor=Redactor(["Secret-77"]),
    )
    assert "Secret-77" not in json.dumps(letters.public())
    client = PaymenterClient("redis://127.0.0.1:1/0")
    client.broker = client.backend = backend
    job = replay(letters, client, dead)
    assert job.task == "servers.x.create"
    (raw,) = backend.lrange("servers", 0, -1)
    assert _kwargs(raw) == kwargs  # the original, password included, unsealed for the new job
    assert letters.get(dead) is None
    with pytest.raises(ReplayError) as info:
        replay(letters, client, dead)
    assert info.value.reason == "not_found"
    nameless = letters.record(
        task=None, task_id=None, kwargs=None, error={"code": "invalid_payload"}, attempts=1, redactor=Redactor()
    )
    with pytest.raises(ReplayError) as info:
        replay(letters, client, nameless)
    assert info.value.reason == "not_replayable"


def _kwargs(raw: bytes) -> Any:
    return json.loads(base64.b64decode(json.loads(raw)["body"]))[1]


def test_a_non_redis_broker_gets_the_same_protocol_2_message_through_kombu() -> None:
    client = PaymenterClient("memory://", "redis://127.0.0.1:1/0")
    job = client.enqueue("servers.pterodactyl.create", {"connection": "p", "service": {"id": 3}}, idempotency_key="k")
    with Connection("memory://") as connection:  # type: ignore[no-untyped-call]
        queue = Queue("servers", Exchange("servers"), routing_key="servers")  # type: ignore[no-untyped-call]
        message = queue(connection.default_channel).get(no_ack=True)
    assert message is not None
    assert message.headers["task"] == "servers.pterodactyl.create"
    assert message.headers["id"] == job.id
    assert message.properties["correlation_id"] == job.id
    assert message.content_type == "application/json"
    args, kwargs, embed = message.decode()
    assert args == []
    assert kwargs == {"connection": "p", "service": {"id": 3}, "idempotency_key": "k"}
    assert embed == {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    client.close()


def test_a_non_redis_broker_needs_a_result_backend() -> None:
    with pytest.raises(ValueError, match="result_backend"):
        PaymenterClient("amqp://guest:guest@127.0.0.1:5672//")
