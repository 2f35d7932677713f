"""What the real-process suites (tests/integration, tests/chaos) share: a Redis to test against and worker
subprocesses with their output in a log file."""

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

import redis

from worker.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def redis_for_tests(directory: Path, override_variable: str, database: int) -> Iterator[str]:
    """The URL of ``$override_variable`` if set, else ``database`` of 127.0.0.1:6379 when it answers, else an
    embedded redis-server in ``directory`` for as long as the generator is open (a session fixture's body).
    Each suite has its own database so suites can run side by side."""
    url = os.environ.get(override_variable)
    if url:
        yield url
        return
    if answers("redis://127.0.0.1:6379/0"):
        yield f"redis://127.0.0.1:6379/{database}"
        return
    embedded = EmbeddedRedis(directory)
    embedded.start()
    yield embedded.url
    embedded.stop()


class WorkerProcess:
    """``python -m worker.cli run`` with its output in a log file."""

    def __init__(
        self, env: dict[str, str], log_path: Path, name: str, concurrency: int = 8, queues: str | None = None
    ) -> None:
        self.log_path = log_path
        self.name = name
        self._log = open(log_path, "ab")
        args = [sys.executable, "-m", "worker.cli", "run", f"--concurrency={concurrency}", f"--hostname={name}@%h"]
        self.process = subprocess.Popen(
            [*args, f"--queues={queues}"] if queues else args,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> WorkerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log():
                return self
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited early:\n{self.log()[-4000:]}")
            time.sleep(0.05)
        raise AssertionError(f"worker {self.name} not ready in {timeout}s:\n{self.log()[-4000:]}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_lines(self) -> list[dict[str, Any]]:
        """The worker's JSON log lines (``PAYMENTER_LOG_FORMAT=json``, the default of ``run``)."""
        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    def ran(self, task_id: str) -> bool:
        """Whether this worker finished ``task_id`` (Celery's own success line, carrying the job's id)."""
        return any(line.get("task_id") == task_id and " succeeded in " in line["message"] for line in self.log_lines())
