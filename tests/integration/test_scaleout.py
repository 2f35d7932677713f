"""Scale-out: several worker processes on one broker, queues per category, and RabbitMQ as the broker.

The RabbitMQ test needs a RabbitMQ at ``PAYMENTER_TEST_RABBITMQ_URL`` (default 127.0.0.1:5672, guest).
When none answers it FAILS, unless ``PAYMENTER_SKIP_RABBITMQ=1`` says to skip it (and the skip says why).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.fakes.pterodactyl import FakePterodactyl
from tests.integration.conftest import API_TOKEN, VISIBILITY_TIMEOUT, WorkerProcess, service_payload
from worker.client import JobError, PaymenterClient

pytestmark = pytest.mark.integration
RABBITMQ_URL = os.environ.get("PAYMENTER_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
QUEUES = ("celery", "servers", "gateways", "others")


def lines_about(worker: WorkerProcess, task_id: str) -> list[dict[str, Any]]:
    return [line for line in worker.log_lines() if line.get("task_id") == task_id]


def test_queues_send_each_job_to_the_worker_that_consumes_its_queue(
    redis_url: str, r: redis.Redis, start_worker: Any, fake_panel: FakePterodactyl
) -> None:
    servers = start_worker("servers", queues="servers")
    rest = start_worker("rest", queues="gateways,others,celery")
    client = PaymenterClient(redis_url)
    create = client.create_server("pterodactyl", connection="panel", service=service_payload(901))
    listing = client.enqueue("extensions.list")
    gateway = client.enqueue("gateways.mollie.test_config", {"connection": "no-such-profile"})
    client.wait(create)
    client.wait(listing)
    with pytest.raises(JobError) as info:
        client.wait(gateway)
    assert info.value.code == "unknown_connection"
    time.sleep(0.5)  # success lines follow the stored result

    assert servers.ran(create.id)
    assert not lines_about(rest, create.id)
    assert rest.ran(listing.id)
    assert not lines_about(servers, listing.id)
    assert lines_about(rest, gateway.id)
    assert not lines_about(servers, gateway.id)
    assert len(fake_panel.servers_for("901")) == 1
    assert all(r.llen(queue) == 0 for queue in QUEUES)


def test_two_workers_on_one_queue_share_the_load_and_run_each_job_once(
    redis_url: str, start_worker: Any, fake_panel: FakePterodactyl
) -> None:
    workers = [start_worker("a", queues="servers"), start_worker("b", queues="servers")]
    count = 24
    fake_panel.add_node(3, "node-c", ports=range(30000, 30000 + count), memory=1 << 20)  # room for every job
    fake_panel.delay_response("POST /api/application/servers$", seconds=0.3, times=count)
    client = PaymenterClient(redis_url)
    jobs = client.enqueue_many(
        [("servers.pterodactyl.create", {"connection": "panel", "service": service_payload(910 + i)}, None)
         for i in range(count)]
    )  # fmt: skip
    for job in jobs:
        assert client.wait(job, timeout=60)["status"] == "succeeded"
    time.sleep(0.5)

    runs = {job.id: [w.name for w in workers if w.ran(job.id)] for job in jobs}
    assert all(len(ran_by) == 1 for ran_by in runs.values()), runs
    for worker in workers:
        done = [line for line in worker.log_lines() if " succeeded in " in line["message"]]
        assert len(done) == len({line["task_id"] for line in done}), "a job ran twice on one worker"
    shares = {w.name: sum(1 for ran_by in runs.values() if ran_by == [w.name]) for w in workers}
    assert all(share > 0 for share in shares.values()), shares
    assert sum(shares.values()) == count
    assert fake_panel.count("POST", "/api/application/servers") == count
    assert all(len(fake_panel.servers_for(str(910 + i))) == 1 for i in range(count))


# --- RabbitMQ as the broker, results in Redis ------------------------------------------------------------


def _purge_rabbitmq() -> None:
    from kombu import Connection, Exchange, Queue  # type: ignore[attr-defined]

    with Connection(RABBITMQ_URL, connect_timeout=3) as connection:
        channel = connection.channel()
        for name in QUEUES:
            queue = Queue(name, Exchange(name), routing_key=name, channel=channel)
            queue.declare()
            queue.purge()


@pytest.fixture
def rabbitmq() -> Iterator[str]:
    try:
        _purge_rabbitmq()
    except Exception as exc:
        where = re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", RABBITMQ_URL)
        reason = f"RabbitMQ does not answer at {where} ({type(exc).__name__}: {exc})"
        if os.environ.get("PAYMENTER_SKIP_RABBITMQ") == "1":
            print(f"skipping the RabbitMQ test: {reason}; PAYMENTER_SKIP_RABBITMQ=1", file=sys.stderr)
            pytest.skip(f"{reason}; skipped because PAYMENTER_SKIP_RABBITMQ=1")
        pytest.fail(f"{reason}. Start one, or set PAYMENTER_SKIP_RABBITMQ=1 to skip this test explicitly.")
    yield RABBITMQ_URL
    _purge_rabbitmq()


def test_rabbitmq_broker_with_results_in_redis(
    rabbitmq: str, redis_url: str, r: redis.Redis, start_worker: Any, start_api: Any, fake_panel: FakePterodactyl
) -> None:
    broker = {"PAYMENTER_BROKER_URL": rabbitmq, "PAYMENTER_RESULT_BACKEND": redis_url}
    first = start_worker("rabbit", **broker)
    client = PaymenterClient(rabbitmq, redis_url)
    try:
        service = service_payload(931)
        created = client.wait(
            client.create_server("pterodactyl", connection="panel", service=service, idempotency_key="rmq-931")
        )
        assert created["status"] == "succeeded"
        replayed = client.enqueue(
            "servers.pterodactyl.create", {"connection": "panel", "service": service}, idempotency_key="rmq-931"
        )
        assert client.wait(replayed)["data"] == created["data"]
        assert len(fake_panel.servers_for("931")) == 1
        with pytest.raises(JobError) as info:
            client.wait(client.suspend_server("pterodactyl", connection="panel", service=service_payload(932)))
        assert info.value.code == "not_found"
        assert r.get("celery-task-meta-" + replayed.id) is not None  # results in Redis, not in RabbitMQ

        api = start_api(**broker)
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        assert httpx.get(f"{api.base_url}/readyz", timeout=10).json()["broker"] is True
        accepted = httpx.post(
            f"{api.base_url}/api/v1/jobs", json={"task": "extensions.list"}, headers=auth, timeout=10
        ).json()
        assert client.wait(accepted["id"])["operation"] == "extensions.list"

        # A wait longer than half the visibility timeout goes through the delayed set, re-published via AMQP.
        fake_panel.fail_next(
            429, match="GET /api/application/servers/external/", headers={"Retry-After": str(VISIBILITY_TIMEOUT)}
        )
        delayed = client.wait(
            client.create_server("pterodactyl", connection="panel", service=service_payload(933)),
            timeout=VISIBILITY_TIMEOUT + 20,
        )
        assert delayed["attempts"] == 2

        # A worker killed mid-create: RabbitMQ hands the unacknowledged job to the next worker at once.
        fake_panel.delay_response("POST /api/application/servers$", seconds=30)
        job = client.create_server("pterodactyl", connection="panel", service=service_payload(934))
        deadline = time.monotonic() + 20
        while not fake_panel.servers_for("934"):
            assert time.monotonic() < deadline, "create never reached the panel"
            time.sleep(0.05)
        first.kill()
        start_worker("rescuer", **broker)
        rescued = client.wait(job, timeout=30)
        assert rescued["data"]["adopted"] is True
        assert len(fake_panel.servers_for("934")) == 1
        assert r.llen("servers") == 0
        assert r.llen("celery") == 0
    finally:
        client.close()
