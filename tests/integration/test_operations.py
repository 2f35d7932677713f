"""What an operator uses: the CLI against a live worker, and Flower showing jobs without secrets."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
import redis

from tests.fakes.pterodactyl import FakePterodactyl
from tests.integration.conftest import PANEL_KEY, ROOT, service_payload
from worker.embedded import free_port

pytestmark = pytest.mark.integration
CHECKOUT_PASSWORD = "Checkout-Secret-4242"


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_enqueue_wait_extensions_dead_letters_and_connections(
    worker_env: dict[str, str], start_worker: Any, r: redis.Redis, fake_panel: FakePterodactyl
) -> None:
    start_worker()
    kwargs = json.dumps({"connection": "panel", "service": service_payload(601)})
    done = cli(worker_env, "enqueue", "servers.pterodactyl.create", "--json", kwargs, "--wait")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"]["status"] == "succeeded"

    failed = cli(
        worker_env,
        "enqueue",
        "servers.pterodactyl.suspend",
        "--wait",
        "--json",
        json.dumps({"connection": "panel", "service": service_payload(602)}),
    )
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["error"]["code"] == "not_found"

    listing = cli(worker_env, "extensions", "list")
    assert "pterodactyl" in json.loads(listing.stdout)["servers"]
    shown = json.loads(cli(worker_env, "extensions", "show", "servers.pterodactyl").stdout)
    assert {f["name"] for f in shown["config"]} == {"host", "api_key"}

    records = [json.loads(line) for line in cli(worker_env, "dead-letters", "list").stdout.splitlines()]
    (record,) = records
    assert record["error"]["code"] == "not_found"
    replayed = cli(worker_env, "dead-letters", "replay", record["id"])
    assert replayed.returncode == 0, replayed.stderr
    new_id = json.loads(replayed.stdout)["id"]
    deadline = time.monotonic() + 20
    while not r.get(f"celery-task-meta-{new_id}"):
        assert time.monotonic() < deadline, "the replayed job never ran"
        time.sleep(0.05)

    check = cli(worker_env, "connections", "check")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout) == {"connection": "panel", "extension": "servers.pterodactyl", "ok": True}
    fake_panel.fail_next(401, match="GET /api/application/servers")
    check = cli(worker_env, "connections", "check")
    assert check.returncode == 1
    assert json.loads(check.stdout)["error"]["code"] == "auth_failed"
    assert PANEL_KEY not in check.stdout + check.stderr


def test_bad_profile_stops_the_worker_at_start_naming_profile_and_field(
    worker_env: dict[str, str], tmp_path: Any
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[connections.broken]\nextension = "servers.pterodactyl"\nhost = "https://x"\n')
    result = cli({**worker_env, "PAYMENTER_CONNECTIONS": str(bad)}, "run", timeout=60)
    assert result.returncode == 2
    assert "connection profile 'broken'" in result.stderr
    assert "api_key" in result.stderr


def test_flower_requires_auth_and_shows_jobs_without_secrets(
    worker_env: dict[str, str], start_worker: Any, redis_url: str
) -> None:
    refused = cli(worker_env, "flower", "--port", str(free_port()))
    assert refused.returncode == 2
    assert "PAYMENTER_FLOWER_BASIC_AUTH" in refused.stderr

    worker = start_worker()
    port = free_port()
    env = {**worker_env, "PAYMENTER_FLOWER_BASIC_AUTH": "ops:flower-pass-77"}
    flower = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "flower", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthcheck", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Flower did not start"
            time.sleep(0.2)
        assert httpx.get(f"{base}/api/tasks", timeout=5).status_code == 401
        time.sleep(2)  # let Flower subscribe to the worker's events before the job runs
        from worker.client import PaymenterClient

        client = PaymenterClient(redis_url)
        service = service_payload(603, password=CHECKOUT_PASSWORD)
        job = client.create_server("pterodactyl", connection="panel", service=service)
        client.wait(job)
        auth = ("ops", "flower-pass-77")
        deadline = time.monotonic() + 20
        while True:
            tasks = httpx.get(f"{base}/api/tasks", auth=auth, timeout=5).json()
            if job.id in tasks and tasks[job.id].get("state") == "SUCCESS":
                break
            assert time.monotonic() < deadline, f"Flower never saw the job: {tasks}"
            time.sleep(0.3)
        shown = json.dumps(tasks)
        assert "'password': '***'" in tasks[job.id]["kwargs"]
        assert CHECKOUT_PASSWORD not in shown
        assert PANEL_KEY not in shown
        assert CHECKOUT_PASSWORD not in worker.log_path.read_text()
        assert "flower-pass-77" not in " ".join(open(f"/proc/{flower.pid}/cmdline").read().split("\0"))
    finally:
        flower.terminate()
        flower.wait(10)
