"""Real processes: a Redis server, ``paymenter-worker run`` subprocesses, and fakes on loopback.

Redis: ``PAYMENTER_TEST_REDIS_URL`` if set, else 127.0.0.1:6379 when it answers, else an embedded
redis-server started for the session. Each test gets a flushed database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from cryptography.fernet import Fernet

from tests.fakes.pterodactyl import FakePterodactyl
from tests.support import ROOT, WorkerProcess, redis_for_tests
from worker.embedded import free_port

RESULT_KEY = Fernet.generate_key().decode()
PANEL_KEY = "ptla_integrationsecret0987654321"
VISIBILITY_TIMEOUT = 6
API_TOKEN = "api-token-integration-5b7c1e9d"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from redis_for_tests(tmp_path_factory.mktemp("redis"), "PAYMENTER_TEST_REDIS_URL", 13)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    redis.Redis.from_url(redis_server).flushdb()
    return redis_server


@pytest.fixture
def r(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def fake_panel() -> Iterator[FakePterodactyl]:
    fake = FakePterodactyl(api_key=PANEL_KEY)
    with fake.serve():
        yield fake


@pytest.fixture
def worker_env(redis_url: str, fake_panel: FakePterodactyl, tmp_path: Path) -> dict[str, str]:
    connections = tmp_path / "connections.toml"
    connections.write_text(
        f'[connections.panel]\nextension = "servers.pterodactyl"\nhost = "{fake_panel.base_url}"\n'
        'api_key = "${PANEL_API_KEY}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTER_")}
    env.update(
        PAYMENTER_BROKER_URL=redis_url,
        PAYMENTER_CONNECTIONS=str(connections),
        PAYMENTER_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
        PAYMENTER_RESULT_KEY=RESULT_KEY,
        PAYMENTER_RETRY_BACKOFF_BASE="0.2",
        PAYMENTER_RETRY_BACKOFF_MAX="1",
        PANEL_API_KEY=PANEL_KEY,
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def start_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(name: str = "w1", queues: str | None = None, **extra_env: str) -> WorkerProcess:
        env = {**worker_env, **extra_env}
        worker = WorkerProcess(env, tmp_path / f"{name}.log", f"{name}-{len(started)}", queues=queues)
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()


class ApiProcess:
    """``paymenter-worker api`` served by uvicorn in a subprocess."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "api", "--port", str(self.port), *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30) -> ApiProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"API exited early:\n{self.log_path.read_text()}")
            time.sleep(0.1)
        raise AssertionError(f"API not up in {timeout}s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


@pytest.fixture
def api_env(worker_env: dict[str, str]) -> dict[str, str]:
    return {**worker_env, "PAYMENTER_API_TOKEN": API_TOKEN}


@pytest.fixture
def start_api(api_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    started: list[ApiProcess] = []

    def start(*args: str, **extra_env: str) -> ApiProcess:
        api = ApiProcess({**api_env, **extra_env}, tmp_path / f"api-{len(started)}.log", *args)
        started.append(api)
        return api.wait_ready()

    yield start
    for api in started:
        api.stop()


def service_payload(service_id: int, **properties: Any) -> dict[str, Any]:
    return {
        "id": service_id,
        "user": {
            "id": 9,
            "email": "alice@example.com",
            "first_name": "Alice",
            "last_name": "Liddell",
            "name": "Alice Liddell",
        },
        "product": {
            "id": 3,
            "name": "Minecraft 4G",
            "settings": {
                "nest_id": "1",
                "egg_id": "5",
                "memory": "4096",
                "swap": "0",
                "disk": "10240",
                "io": "500",
                "cpu": "200",
                "databases": "1",
                "backups": "2",
                "additional_allocations": "0",
                "location_ids": ["1"],
            },
        },
        "properties": properties,
    }


def wait_meta(r: redis.Redis, task_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = r.get(f"celery-task-meta-{task_id}")
        if raw:
            meta: dict[str, Any] = json.loads(raw)
            if meta["status"] in ("SUCCESS", "FAILURE"):
                return meta
        time.sleep(0.05)
    raise AssertionError(f"no final result for {task_id} in {timeout}s")
