"""Shared fixtures: an in-process runtime on fakeredis and a driver that plays the task layer's part."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
from cryptography.fernet import Fernet

from extensions.base import Extension
from worker.errors import JobFailed, Reschedule
from worker.operations import OperationSpec, operation_specs
from worker.profiles import Profiles
from worker.runtime import Delivery, Runtime
from worker.settings import Settings

RESULT_KEY = Fernet.generate_key().decode()


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "broker_url": "redis://127.0.0.1:1/0",
        "result_key": RESULT_KEY,
        "visibility_timeout": 60,
        "max_retries": 3,
        "retry_backoff_base": 0.01,
        "retry_backoff_max": 0.05,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def redis_client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def runtime(redis_client: fakeredis.FakeRedis) -> Runtime:
    return Runtime(make_settings(), Profiles(), redis_client)


def spec_for(name: str) -> OperationSpec:
    for spec in operation_specs():
        if spec.name == name:
            return spec
    raise KeyError(name)


class JobDriver:
    """Runs a job the way the task layer does: a Reschedule re-runs it under the same task id."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.reschedules: list[Reschedule] = []

    @property
    def retries(self) -> list[Reschedule]:
        """Re-schedules caused by failed attempts (not polls of a provider job still running)."""
        return [r for r in self.reschedules if r.kind == "retry"]

    def run(self, name: str, kwargs: dict[str, Any], task_id: str = "task-1", max_runs: int = 50) -> dict[str, Any]:
        spec = spec_for(name)
        retries = 0
        for _ in range(max_runs):
            try:
                return self.runtime.execute(spec, (), kwargs, Delivery(task_id, retries))
            except Reschedule as r:
                self.reschedules.append(r)
                retries += 1
        raise AssertionError(f"{name} still rescheduling after {max_runs} runs")

    def fail(self, name: str, kwargs: dict[str, Any], task_id: str = "task-f") -> dict[str, Any]:
        with pytest.raises(JobFailed) as info:
            self.run(name, kwargs, task_id)
        return info.value.error


@pytest.fixture
def driver(runtime: Runtime) -> JobDriver:
    return JobDriver(runtime)


@pytest.fixture
def bind(runtime: Runtime) -> Callable[[str, Extension], None]:
    return runtime.bind


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    return caplog
