"""Poison on the queues: garbage envelopes and bodies, unknown tasks, hostile headers, a 5 MB payload, and
a message that takes its worker down every time it runs. Each is dead-lettered with a clear error and
the worker keeps serving: a good job after them succeeds and the worker process is still alive."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from extensions.errors import ERROR_CODES
from tests.chaos.conftest import (
    VISIBILITY_TIMEOUT,
    Fleet,
    StartWorker,
    dead_letters,
    wait_meta,
    wait_until,
    worker_env,
)
from worker.client import PaymenterClient

pytestmark = pytest.mark.chaos

CONTRACT_CODES = set(ERROR_CODES)
EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def envelope(
    task: str | None,
    task_id: str,
    body: bytes,
    *,
    content_type: str = "application/json",
    headers: dict[str, Any] | None = None,
    queue: str = "celery",
) -> str:
    base_headers: dict[str, Any] = {"lang": "php", "id": task_id, "root_id": task_id, "parent_id": None, "group": None}
    if task is not None:
        base_headers["task"] = task
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": content_type,
            "headers": {**base_headers, **(headers or {})},
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


def body(args: Any, kwargs: Any) -> bytes:
    return json.dumps([args, kwargs, EMBED]).encode()


def nested(depth: int) -> bytes:
    return b'[[], {"service": ' + b"[" * depth + b"]" * depth + b"}, {}]"


# Hostile headers on an otherwise good job: the worker may ignore the header and run the job, or refuse
# the message with a dead letter; it must neither crash nor drop it.
MAY_RUN = {"eta not a date", "retries not a number", "timelimit garbage"}


def poison(fleet: Fleet) -> dict[str, tuple[str, str]]:
    """name -> (raw queue item, task id); every one of them carries a task id."""
    good = {"connection": "pterodactyl", "service": fleet.service("pterodactyl", 850)}
    headed = {n: {"connection": "pterodactyl", "service": fleet.service("pterodactyl", 860 + n)} for n in range(3)}
    big = fleet.service("pterodactyl", 851)
    big["properties"] = {"notes": "x" * (5 * 1024 * 1024)}
    create = "servers.pterodactyl.create"
    cases: dict[str, tuple[str | None, bytes, dict[str, Any]]] = {
        "unknown task": ("servers.nosuch.create", body([], good), {}),
        "meta task unknown": ("extensions.nosuch", body([], {}), {}),
        "body not JSON": (create, b"{not json", {}),
        "body not UTF-8": (create, b"\xff\xfe\x00garbage", {}),
        "body a string": (create, b'"just a string"', {}),
        "body an object": (create, b'{"connection": "pterodactyl"}', {}),
        "body too short": (create, b"[[]]", {}),
        "positional args": (create, body([1, 2], good), {}),
        "kwargs a list": (create, body([], [1, 2]), {}),
        "kwargs null": (create, body([], None), {}),
        "nested 100k deep": (create, nested(100_000), {}),
        "pickle content": (create, b"\x80\x04K\x01.", {"content_type": "application/x-python-serialize"}),
        "eta not a date": (create, body([], headed[0]), {"headers": {"eta": "not-a-date"}}),
        "retries not a number": (create, body([], headed[1]), {"headers": {"retries": "many"}}),
        "timelimit garbage": (create, body([], headed[2]), {"headers": {"timelimit": "forever"}}),
        "5 MB payload": (create, body([], {"connection": "pterodactyl", "service": big}), {}),
    }
    built = {}
    for name, (task, raw, options) in cases.items():
        task_id = str(uuid.uuid4())
        content_type = options.get("content_type", "application/json")
        built[name] = (envelope(task, task_id, raw, content_type=content_type, headers=options.get("headers")), task_id)
    return built


NOT_ENVELOPES = ["this is not even an envelope", "[]", "{}", "null", "12345", '{"body": 17}']


@pytest.mark.timeout(180)
def test_poison_is_dead_lettered_and_the_worker_keeps_serving(
    redis_url: str, r: redis.Redis, fleet: Fleet, start_worker: StartWorker, tmp_path: Path
) -> None:
    env = worker_env(redis_url, fleet.profiles, PAYMENTER_MAX_DELIVERIES="1")
    worker = start_worker(env, name="target")
    client = PaymenterClient(redis_url)
    panel = fleet.fakes["pterodactyl"]

    items = poison(fleet)
    for raw, _ in items.values():
        r.lpush("celery", raw)
    for raw in NOT_ENVELOPES:
        r.lpush("celery", raw)

    finals: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 20
    while len(finals) < len(items) and time.monotonic() < deadline:
        for name, (_, task_id) in items.items():
            meta = client.state(task_id)
            if name not in finals and meta is not None and meta.get("status") in ("SUCCESS", "FAILURE"):
                finals[name] = meta
        time.sleep(0.1)

    problems = [f"{name}: no result stored (the job vanished)" for name in items if name not in finals]
    for name, meta in finals.items():
        if name in MAY_RUN and meta["status"] == "SUCCESS":
            continue
        if meta["status"] != "FAILURE" or meta["result"].get("exc_type") != "JobFailed":
            problems.append(f"{name}: ended {meta['status']} {str(meta['result'])[:300]}")
        elif meta["result"]["exc_message"][0]["code"] not in CONTRACT_CODES:
            problems.append(f"{name}: error code {meta['result']['exc_message'][0]['code']!r} is not a contract code")
    raws = [str(d.get("raw")) for d in dead_letters(r)]
    recorded = {d.get("task_id") for d in dead_letters(r)}
    problems += [
        f"{name}: no dead letter"
        for name, (_, task_id) in items.items()
        if task_id not in recorded
        and not any(task_id in raw for raw in raws)
        and finals.get(name, {}).get("status") != "SUCCESS"
    ]
    problems += [f"non-envelope {raw!r}: no dead letter" for raw in NOT_ENVELOPES if not any(raw in x for x in raws)]
    if "Connection to broker lost" in worker.log():
        problems.append("a poison item was taken for a lost broker connection (the consumer restarted)")
    harness = fleet.harnesses["pterodactyl"]
    problems += [
        f"poison reached the provider for service {sid}" for sid in (850, 851) if harness.resources(panel, sid)
    ]
    settled = r.zcard("paymenter:dead-letters")

    # A message that takes its worker down each time it runs: past PAYMENTER_MAX_DELIVERIES it is not run again.
    created = panel.count("POST", "/api/application/servers")
    panel.delay_response(harness.create_call, seconds=60)
    killer = client.create_server("pterodactyl", connection="pterodactyl", service=fleet.service("pterodactyl", 852))
    wait_until(
        lambda: panel.count("POST", "/api/application/servers") > created, 20, "the killer job to reach the panel"
    )
    worker.kill()
    worker = start_worker(env, name="target")
    meta = wait_meta(r, killer.id, timeout=VISIBILITY_TIMEOUT + 30)
    if meta["status"] != "FAILURE" or meta["result"]["exc_message"][0]["code"] != "provider_unavailable":
        problems.append(f"the message that kills its worker ended {meta['status']}: {meta['result']}")
    elif killer.id not in {d.get("task_id") for d in dead_letters(r)}:
        problems.append("the message that kills its worker has no dead letter")
    # Across a visibility timeout and a restart, no poison came back: only the killer's dead letter is new.
    again = [d for d in dead_letters(r)[settled:] if d.get("task_id") != killer.id]
    if again:
        repeated = [(d["task_id"], d["error"]["message"]) for d in again]
        problems.append(f"poison delivered and dead-lettered again: {repeated}")
    if r.hlen("unacked"):
        problems.append(f"{r.hlen('unacked')} message(s) stuck unacknowledged")

    started = time.monotonic()
    good = client.wait(
        client.create_server("pterodactyl", connection="pterodactyl", service=fleet.service("pterodactyl", 853)),
        timeout=30,
    )
    assert good["status"] == "succeeded"
    assert time.monotonic() - started < 30
    assert worker.alive()
    assert not problems, "\n".join(problems)
