"""Redis SIGKILLed and restarted (same port, same directory, AOF with fsync on every write) while a batch
of creates is being enqueued and run: the worker reconnects, no job is lost, no effect is doubled."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.chaos.conftest import VISIBILITY_TIMEOUT, StartWorker, build_fleet, wait_until, worker_env
from tests.fakes.pterodactyl import FakePterodactyl
from tests.support import answers
from worker.client import Job, PaymenterClient
from worker.embedded import free_port, redis_server_binary

pytestmark = pytest.mark.chaos

SLUGS = ["cpanel", "plesk", "pterodactyl"]
PER_SLUG = 16
PROVIDER_LATENCY = 0.25


class AofRedis:
    """A redis-server of the test's own: AOF with ``appendfsync always``, killable and restartable."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: answers(self.url), 15, "the test's redis-server to answer")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[AofRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = AofRedis(directory)
    server.start()
    yield server
    server.stop()


# (share of the batch finished before the kill, seconds Redis stays down, least seconds since the last restart)
RESTARTS = {
    # an outage of a second, then a blip of a fifth of a second once the worker has recovered
    "restart": [(4, 1.0, 0.0), (2, 0.2, VISIBILITY_TIMEOUT + 4)],
    # Not run: Redis killed again and again within a second. kombu reads queues with BRPOP, so an item
    # popped in the instant Redis dies is gone with it; no worker-side change can bring it back.
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("restarts", list(RESTARTS.values()), ids=list(RESTARTS))
def test_redis_killed_and_restarted_mid_run_loses_no_job_and_doubles_no_effect(
    aof_redis: AofRedis, start_worker: StartWorker, tmp_path: Path, restarts: list[tuple[int, float, float]]
) -> None:
    with contextlib.ExitStack() as stack:
        fleet = build_fleet(stack, tmp_path, SLUGS)
        panel = fleet.fakes["pterodactyl"]
        assert isinstance(panel, FakePterodactyl)
        panel.add_node(3, "node-c", ports=range(30000, 30100))  # room for the batch
        for slug, fake in fleet.fakes.items():
            fake.delay_response(fleet.harnesses[slug].create_call, seconds=PROVIDER_LATENCY, times=10**6)
        worker = start_worker(worker_env(aof_redis.url, fleet.profiles), name="survivor", concurrency=16)
        client = PaymenterClient(aof_redis.url)
        wanted = [(slug, 900 + n) for n in range(PER_SLUG) for slug in SLUGS]
        jobs: dict[tuple[str, int], Job] = {}
        failed_enqueues: list[str] = []

        def produce() -> None:
            for slug, sid in wanted:
                kwargs = {"connection": slug, "service": fleet.service(slug, sid)}
                task, key = f"servers.{slug}.create", f"{slug}-{sid}"
                while (slug, sid) not in jobs:
                    try:  # the same key gives the same task id: an enqueue retried makes no second job
                        jobs[slug, sid] = client.enqueue(task, kwargs, idempotency_key=key)
                    except redis.RedisError as exc:
                        failed_enqueues.append(type(exc).__name__)
                        time.sleep(0.1)
                time.sleep(0.04)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()

        def finished() -> int:
            with contextlib.suppress(redis.RedisError):
                return sum(1 for job in list(jobs.values()) if (client.state(job) or {}).get("status") == "SUCCESS")
            return 0

        last_restart = 0.0
        for share, outage, gap in restarts:
            target = len(wanted) // share
            with contextlib.suppress(AssertionError):  # a worker that did not survive is reported below
                wait_until(lambda target=target: finished() >= target, 30, "part of the batch to finish")
            time.sleep(max(0.0, last_restart + gap - time.monotonic()))
            aof_redis.kill()
            time.sleep(outage)
            aof_redis.start()
            last_restart = time.monotonic()
        producer.join(60)
        assert len(jobs) == len(wanted)

        outcomes: dict[tuple[str, int], str] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.alive() and "Unrecoverable error" not in worker.log():
            with contextlib.suppress(redis.RedisError):
                outcomes = {key: (client.state(job) or {}).get("status", "PENDING") for key, job in jobs.items()}
            if all(status in ("SUCCESS", "FAILURE") for status in outcomes.values()):
                break
            time.sleep(0.2)
        assert len(outcomes) == len(jobs), "Redis never answered after the last restart"
        log = worker.log()
        not_done = {
            key: f"{status}, {'received by' if jobs[key].id in log else 'never reached'} the worker"
            for key, status in outcomes.items()
            if status != "SUCCESS"
        }
        failures = {key: client.state(jobs[key]) for key, status in outcomes.items() if status == "FAILURE"}
        restore_errors = [line[:300] for line in log.splitlines() if "Could not restore message" in line]
        fatal = [line for line in log.splitlines() if "Unrecoverable error" in line]
        assert worker.alive(), f"the worker did not survive the Redis restart:\n{worker.log()[-6000:]}"
        assert not fatal, f"the worker stopped consuming after the Redis restart: {fatal[0][:2000]}"
        assert not not_done, (
            f"jobs not SUCCESS after the restarts ({len(failed_enqueues)} enqueues retried): {not_done}\n"
            f"failures: {failures}\nmessages the worker could not restore: {restore_errors[:3]}"
        )
        doubled = {key: fleet.resources(*key) for key in wanted if fleet.resources(*key) != 1}
        assert not doubled, f"services without exactly one resource: {doubled}"
        assert "Connection to broker lost" in worker.log()
