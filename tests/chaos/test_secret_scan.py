"""After a run over several integrations whose profiles carry credentials, with a checkout password in
every service, a rejected inline config and failed jobs: no secret value appears in Redis (every key and
value of every type, broker message bodies decoded), the worker's log, Flower's API, events or dead
letters. Provider-generated customer credentials (unsealed here with the result key) are held to the
same rule: sealed everywhere, plain nowhere."""

from __future__ import annotations

import base64
import binascii
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.chaos.conftest import RESULT_KEY, StartWorker, build_fleet, wait_meta, wait_until, worker_env
from tests.support import ROOT
from worker.client import JobError, PaymenterClient
from worker.embedded import free_port

pytestmark = pytest.mark.chaos

SLUGS = ["convoy", "cpanel", "directadmin", "pterodactyl", "virtualizor"]
CHECKOUT_PASSWORD = "Checkout-Chaos-Secret-7301"
INLINE_SECRET = "inline-api-key-never-echoed-5522"
FLOWER_USER, FLOWER_PASSWORD = "ops", "flower-chaos-pass-9917"


def redis_dump(client: redis.Redis) -> list[str]:
    """Every key and every value of every type, as text."""
    found: list[str] = []
    for key in client.scan_iter("*", count=1000):
        found.append(key.decode(errors="replace"))
        kind = client.type(key).decode()
        value: Any
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = client.smembers(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = client.xrange(key)
        else:
            value = f"<{kind}>"
        found.append(flatten(value))
    return found


def flatten(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return " ".join(f"{flatten(k)}={flatten(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return " ".join(flatten(v) for v in value)
    return str(value)


def decoded_bodies(texts: list[str]) -> list[str]:
    """The base64 bodies of every broker message found in the texts (queues, unacked, delayed set)."""
    marker = '"body": "'
    bodies = []
    for text in texts:
        start = text.find(marker)
        while start != -1:
            end = text.find('"', start + len(marker))
            with contextlib.suppress(binascii.Error, ValueError):
                bodies.append(base64.b64decode(text[start + len(marker) : end]).decode(errors="replace"))
            start = text.find(marker, end)
    return bodies


@pytest.mark.timeout(180)
def test_no_secret_value_in_redis_logs_flower_events_or_dead_letters(
    redis_url: str, r: redis.Redis, start_worker: StartWorker, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        fleet = build_fleet(stack, tmp_path, SLUGS)
        env = worker_env(redis_url, fleet.profiles, PAYMENTER_FLOWER_BASIC_AUTH=f"{FLOWER_USER}:{FLOWER_PASSWORD}")
        worker = start_worker(env, name="scanned")
        port = free_port()
        flower_log = open(tmp_path / "flower.log", "wb")
        flower = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "flower", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=flower_log,
            stderr=subprocess.STDOUT,
        )
        stack.callback(flower_log.close)
        stack.callback(flower.wait, 10)
        stack.callback(flower.terminate)
        base = f"http://127.0.0.1:{port}"
        auth = (FLOWER_USER, FLOWER_PASSWORD)

        def flower_sees_worker() -> bool:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                return bool(httpx.get(f"{base}/api/workers", auth=auth, params={"refresh": "1"}, timeout=5).json())
            return False

        wait_until(flower_sees_worker, 40, "Flower to see the worker", interval=0.3)

        client = PaymenterClient(redis_url, result_key=RESULT_KEY)
        jobs = []
        generated: set[str] = set()
        for n, slug in enumerate(SLUGS):
            service = fleet.service(slug, 870 + n)
            service["properties"] = {**service["properties"], "password": CHECKOUT_PASSWORD}
            created = client.create_server(slug, connection=slug, service=service)
            jobs.append(created)
            envelope = client.wait(created, timeout=60)
            generated.update(v for v in envelope.get("secrets", {}).values() if len(v) >= 6)
            service["properties"] = {**service["properties"], **envelope["data"].get("properties", {})}
            jobs.append(client.suspend_server(slug, connection=slug, service=service))
            missing = fleet.service(slug, 880 + n)
            missing["properties"] = {**missing["properties"], "password": CHECKOUT_PASSWORD}
            jobs.append(client.suspend_server(slug, connection=slug, service=missing))  # not_found: a dead letter
        inline = client.enqueue(
            "servers.pterodactyl.create",
            {"config": {"host": "https://panel.example.com", "api_key": INLINE_SECRET}, "service": {"id": 1}},
        )
        jobs.append(inline)
        invalid = client.enqueue(
            "servers.cpanel.create", {"connection": "cpanel", "service": {"id": 2, "password": CHECKOUT_PASSWORD}}
        )
        jobs.append(invalid)
        outcomes = {}
        for job in jobs:
            try:
                outcomes[job.id] = client.wait(job, timeout=60)["status"]
            except JobError as exc:
                outcomes[job.id] = exc.code
        assert sum(1 for o in outcomes.values() if o == "succeeded") == 2 * len(SLUGS), outcomes
        assert len(r.zrange("paymenter:dead-letters", 0, -1)) >= len(SLUGS) + 2
        assert r.xlen("paymenter:events") >= 3 * len(SLUGS)
        wait_meta(r, inline.id)

        def flower_has_all() -> bool:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                tasks = httpx.get(f"{base}/api/tasks", auth=auth, timeout=5).json()
                return all(job.id in tasks and tasks[job.id].get("state") in ("SUCCESS", "FAILURE") for job in jobs)
            return False

        wait_until(flower_has_all, 30, "Flower to show every job", interval=0.3)
        flower_texts = [httpx.get(f"{base}/api/tasks", auth=auth, timeout=5).text]
        flower_texts.append(httpx.get(f"{base}/api/workers", auth=auth, timeout=5).text)
        flower_texts += [httpx.get(f"{base}/api/task/info/{job.id}", auth=auth, timeout=5).text for job in jobs]
        assert httpx.get(f"{base}/api/tasks", timeout=5).status_code == 401

    stored = redis_dump(r)
    places = {
        "redis": "\n".join(stored + decoded_bodies(stored)),
        "worker log": worker.log(),
        "flower api": "\n".join(flower_texts),
    }
    secrets = {
        **{f"profile secret {s[:6]}…": s for s in fleet.secrets},
        "checkout password": CHECKOUT_PASSWORD,
        "inline config secret": INLINE_SECRET,
        "result key": RESULT_KEY,
        **{f"generated credential {g[:3]}…": g for g in generated},
    }
    leaks = [f"{what} in {where}" for what, value in secrets.items() for where, text in places.items() if value in text]
    leaks += [f"Flower password in {where}" for where in ("redis", "worker log") if FLOWER_PASSWORD in places[where]]
    assert not leaks, "\n".join(leaks)
    assert generated, "no provider-generated credential was returned sealed"
    assert worker.alive()
