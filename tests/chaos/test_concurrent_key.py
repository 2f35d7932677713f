"""100 producers enqueue the same create under one idempotency key at the same moment, each with a client
of its own: half through ``PaymenterClient.create_server`` (the client derives the task id from the key
and payload), half as foreign producers that pick a fresh task id for every message. The provider sees
exactly one create and every result carries the same data."""

from __future__ import annotations

import contextlib
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.conftest import StartWorker, build_fleet, worker_env
from worker.client import Job, JobError, PaymenterClient, build_message, queue_for

pytestmark = pytest.mark.chaos

PRODUCERS = 100
KEY = "order-concurrent-1"


@pytest.mark.timeout(120)
def test_one_idempotency_key_enqueued_by_100_producers_at_once_calls_the_provider_once(
    redis_url: str, start_worker: StartWorker, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        fleet = build_fleet(stack, tmp_path, ["pterodactyl"])
        panel = fleet.fakes["pterodactyl"]
        harness = fleet.harnesses["pterodactyl"]
        panel.delay_response(harness.create_call, seconds=0.5)  # keep the first claim busy while the rest arrive
        worker = start_worker(worker_env(redis_url, fleet.profiles), name="crowd", concurrency=100)
        kwargs = {"connection": "pterodactyl", "service": fleet.service("pterodactyl", 811)}
        task = "servers.pterodactyl.create"
        barrier = threading.Barrier(PRODUCERS)
        jobs: list[Job] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def produce(n: int) -> None:
            try:
                client = PaymenterClient(redis_url)
                barrier.wait(30)
                if n % 2:
                    job = client.create_server("pterodactyl", connection="pterodactyl", service=kwargs["service"],
                                               idempotency_key=KEY)  # fmt: skip
                else:
                    job = Job(str(uuid.uuid4()), task, KEY)
                    queue = queue_for(task)
                    client.broker.lpush(queue, build_message(task, {**kwargs, "idempotency_key": KEY}, job.id, queue))
                with lock:
                    jobs.append(job)
            except BaseException as exc:
                with lock:
                    errors.append(exc)

        threads = [threading.Thread(target=produce, args=(n,)) for n in range(PRODUCERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert len(jobs) == PRODUCERS

        reader = PaymenterClient(redis_url)
        results: dict[str, dict[str, Any]] = {}
        failed: dict[str, str] = {}
        for job in jobs:
            try:
                results[job.id] = reader.wait(job, timeout=60)
            except JobError as exc:
                failed[job.id] = str(exc)
        assert not failed, f"{len(failed)} of the enqueues ended in failure: {sorted(set(failed.values()))}"
        assert len(results) == PRODUCERS // 2 + 1  # the client's enqueues share one task id
        assert panel.count("POST", "/api/application/servers") == 1
        assert harness.resources(panel, 811) == 1
        first = next(iter(results.values()))
        assert all(envelope["data"] == first["data"] for envelope in results.values())
        assert all(envelope["idempotency_key"] == KEY for envelope in results.values())
        # One run did the work; the rest replayed it. The client's fifty enqueues share one task id, and
        # Celery stores a result by reading then writing: a replay of that id finishing alongside the run
        # may store its `replayed: true` copy (the same data) last, so the run's own flag can be hidden.
        assert sum(1 for envelope in results.values() if not envelope["replayed"]) <= 1
        assert worker.alive()
