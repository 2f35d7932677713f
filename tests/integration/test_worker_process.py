"""A real worker process on a real Redis, driven the way foreign producers drive it."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
import redis

from tests.fakes.pterodactyl import FakePterodactyl
from tests.integration.conftest import PANEL_KEY, RESULT_KEY, VISIBILITY_TIMEOUT, service_payload, wait_meta
from worker.client import JobError, PaymenterClient

pytestmark = pytest.mark.integration


def raw_message(task: str, kwargs: dict[str, Any], task_id: str, queue: str = "celery") -> str:
    """Celery protocol 2 on the Redis transport, written by hand as a PHP producer would."""
    body = json.dumps([[], kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    return json.dumps(
        {
            "body": base64.b64encode(body.encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "php",
                "task": task,
                "id": task_id,
                "root_id": task_id,
                "parent_id": None,
                "group": None,
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


def dead_letters(r: redis.Redis) -> list[dict[str, Any]]:
    ids = r.zrange("paymenter:dead-letters", 0, -1)
    return [json.loads(r.get(f"paymenter:dead-letter:{i.decode()}")) for i in ids]


def test_raw_protocol_job_on_the_default_queue_is_served(
    r: redis.Redis, start_worker: Any, fake_panel: FakePterodactyl
) -> None:
    start_worker()
    task_id = str(uuid.uuid4())
    r.lpush(
        "celery",
        raw_message("servers.pterodactyl.create", {"connection": "panel", "service": service_payload(501)}, task_id),
    )
    meta = wait_meta(r, task_id)
    assert meta["status"] == "SUCCESS", meta
    envelope = meta["result"]
    assert envelope["status"] == "succeeded"
    assert envelope["operation"] == "servers.pterodactyl.create"
    assert envelope["replayed"] is False
    assert envelope["data"]["properties"]["pterodactyl_server_id"]
    assert len(fake_panel.servers_for("501")) == 1
    event = json.loads(r.xrange("paymenter:events")[-1][1][b"event"])
    assert event["type"] == "service.created"
    assert event["data"]["service_id"] == 501


def test_failure_is_readable_without_python(r: redis.Redis, start_worker: Any) -> None:
    start_worker()
    task_id = str(uuid.uuid4())
    r.lpush(
        "servers",
        raw_message(
            "servers.pterodactyl.suspend",
            {"connection": "panel", "service": service_payload(502)},
            task_id,
            queue="servers",
        ),
    )
    meta = wait_meta(r, task_id)
    assert meta["status"] == "FAILURE"
    assert meta["result"]["exc_type"] == "JobFailed"
    (error,) = meta["result"]["exc_message"]
    assert error["code"] == "not_found"
    assert set(error) == {"code", "message", "retryable", "provider_status"}


def test_client_round_trip_replay_and_lifecycle(redis_url: str, start_worker: Any, fake_panel: FakePterodactyl) -> None:
    worker = start_worker()
    client = PaymenterClient(redis_url, result_key=RESULT_KEY)
    service = service_payload(503)
    created = client.wait(
        client.create_server("pterodactyl", connection="panel", service=service, idempotency_key="order-503")
    )
    posts = fake_panel.count("POST", "/api/application/servers")
    duplicate = client.create_server("pterodactyl", connection="panel", service=service, idempotency_key="order-503")
    # Same key, same task id: the backend keeps the first SUCCESS, and the worker serves the duplicate
    # as a replay (Celery logs each returned envelope).
    deadline = time.monotonic() + 20
    while f"{duplicate.id}] succeeded" not in worker.log_path.read_text().split("'replayed': False")[-1]:
        assert time.monotonic() < deadline, "the duplicate was never served as a replay"
        time.sleep(0.05)
    assert "'replayed': True" in worker.log_path.read_text()
    assert client.wait(duplicate)["data"] == created["data"]
    assert fake_panel.count("POST", "/api/application/servers") == posts, "a replay must not call the panel"
    assert len(fake_panel.servers_for("503")) == 1
    with pytest.raises(JobError) as info:
        client.wait(
            client.create_server(
                "pterodactyl", connection="panel", service=service_payload(504), idempotency_key="order-503"
            )
        )
    assert info.value.code == "idempotency_key_reused"
    client.wait(client.suspend_server("pterodactyl", connection="panel", service=service))
    assert fake_panel.servers_for("503")[0]["status"] == "suspended"
    client.wait(client.terminate_server("pterodactyl", connection="panel", service=service))
    assert fake_panel.servers_for("503") == []
    jobs = client.enqueue_many(
        [("extensions.list", {}, None), ("extensions.metadata", {"category": "servers", "name": "pterodactyl"}, None)]
    )
    listing, metadata = (client.wait(j) for j in jobs)
    assert set(listing["data"]) == {"servers", "gateways", "others"}
    assert "pterodactyl" in listing["data"]["servers"]
    assert metadata["data"]["name"] == "Pterodactyl"


def test_transient_panel_errors_are_retried_by_the_worker(
    redis_url: str, start_worker: Any, fake_panel: FakePterodactyl
) -> None:
    start_worker()
    fake_panel.fail_next(502, times=2, match="GET /api/application/servers/external/")
    client = PaymenterClient(redis_url)
    envelope = client.wait(client.create_server("pterodactyl", connection="panel", service=service_payload(505)))
    assert envelope["attempts"] == 3
    assert len(fake_panel.servers_for("505")) == 1


def test_worker_killed_mid_create_is_recovered_with_exactly_one_server(
    redis_url: str, r: redis.Redis, start_worker: Any, fake_panel: FakePterodactyl
) -> None:
    first = start_worker("victim")
    fake_panel.delay_response("POST /api/application/servers$", seconds=30)
    client = PaymenterClient(redis_url)
    job = client.create_server("pterodactyl", connection="panel", service=service_payload(506))
    deadline = time.monotonic() + 20
    while not fake_panel.servers_for("506"):  # the panel made the server; its answer is held back
        assert time.monotonic() < deadline, "create never reached the panel"
        time.sleep(0.05)
    first.kill()
    killed_at = time.monotonic()
    start_worker("rescuer")
    envelope = client.wait(job, timeout=VISIBILITY_TIMEOUT + 30)
    assert envelope["status"] == "succeeded"
    assert envelope["data"]["adopted"] is True
    assert len(fake_panel.servers_for("506")) == 1
    assert time.monotonic() - killed_at < VISIBILITY_TIMEOUT + 25


def test_bad_messages_are_dead_lettered_and_the_worker_keeps_serving(
    redis_url: str, r: redis.Redis, start_worker: Any, fake_panel: FakePterodactyl
) -> None:
    worker = start_worker()
    ids = {name: str(uuid.uuid4()) for name in ("unknown", "invalid", "noconn", "malformed")}
    r.lpush("celery", raw_message("servers.nosuch.create", {"connection": "panel"}, ids["unknown"]))
    r.lpush(
        "celery",
        raw_message("servers.pterodactyl.create", {"connection": "panel", "service": {"id": 1}}, ids["invalid"]),
    )
    r.lpush(
        "celery",
        raw_message(
            "servers.pterodactyl.create", {"connection": "ghost", "service": service_payload(507)}, ids["noconn"]
        ),
    )
    broken = json.loads(raw_message("servers.pterodactyl.create", {}, ids["malformed"]))
    broken["body"] = base64.b64encode(b"{not json").decode()
    r.lpush("celery", json.dumps(broken))
    r.lpush("celery", "this is not even an envelope")

    expected = {
        "unknown": "unsupported_operation",
        "invalid": "invalid_payload",
        "noconn": "unknown_connection",
        "malformed": "invalid_payload",
    }
    for name, code in expected.items():
        meta = wait_meta(r, ids[name])
        assert meta["status"] == "FAILURE", (name, meta)
        assert meta["result"]["exc_message"][0]["code"] == code, (name, meta)
    recorded = {d["task_id"]: d["error"]["code"] for d in dead_letters(r)}
    for name, code in expected.items():
        assert recorded.get(ids[name]) == code, name
    deadline = time.monotonic() + 10
    while not any(d["raw"] == "this is not even an envelope" for d in dead_letters(r)):
        assert time.monotonic() < deadline, "the non-envelope item was not dead-lettered"
        time.sleep(0.05)
    failed_events = [json.loads(f[b"event"]) for _i, f in r.xrange("paymenter:events")]
    assert {e["data"]["task_id"] for e in failed_events if e["type"] == "job.failed"} >= set(ids.values())

    client = PaymenterClient(redis_url)
    envelope = client.wait(client.create_server("pterodactyl", connection="panel", service=service_payload(508)))
    assert envelope["status"] == "succeeded"
    assert worker.alive()
    assert PANEL_KEY not in worker.log_path.read_text()


def test_a_wait_longer_than_half_the_visibility_timeout_goes_through_the_delayed_set(
    redis_url: str, r: redis.Redis, start_worker: Any, fake_panel: FakePterodactyl
) -> None:
    worker = start_worker()
    wait = VISIBILITY_TIMEOUT  # longer than the longest countdown the broker may hold (half of it)
    fake_panel.fail_next(
        429, times=1, match="GET /api/application/servers/external/", headers={"Retry-After": str(wait)}
    )
    client = PaymenterClient(redis_url)
    job = client.create_server("pterodactyl", connection="panel", service=service_payload(509))
    deadline = time.monotonic() + 10
    while not r.zcard("paymenter:delayed"):
        assert time.monotonic() < deadline, "the long wait did not go to the delayed set"
        time.sleep(0.05)
    assert client.state(job)["status"] == "RETRY"
    started = time.monotonic()
    envelope = client.wait(job, timeout=wait + 20)
    assert time.monotonic() - started >= wait - 2
    assert envelope["attempts"] == 2
    assert r.zcard("paymenter:delayed") == 0
    assert len(fake_panel.servers_for("509")) == 1
    assert worker.alive()
