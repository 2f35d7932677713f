"""``job.exclusive``: sections of different jobs that must not overlap, on a tiny in-test extension."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, SecretStr

from extensions.base import ExtensionConfig, JobContext, OperationResult, ServerExtension, Service, config_field
from extensions.errors import Pending, ProviderRejected, ProviderUnavailable
from worker.errors import JobFailed, Reschedule
from worker.operations import SERVER_EVENTS, OperationSpec, ServerPayload
from worker.runtime import Delivery, Runtime


class TurnsConfig(ExtensionConfig):
    api_key: SecretStr = config_field(type="password", label="API key")


class Turns(ServerExtension):
    """Its create runs a section per customer; what happens inside is scripted per service id."""

    slug = "turns"
    display_name = "Turns"
    Config = TurnsConfig
    ProductSettings = BaseModel
    operations = frozenset({"create"})
    ttl_s: ClassVar[float] = 60.0
    inside: ClassVar[dict[int, list[Exception | None]]] = {}
    entered: ClassVar[list[int]] = []
    done: ClassVar[set[int]] = set()  # services whose create finds its work done and skips the section

    def create(self, service: Service, job: JobContext) -> OperationResult:
        if service.id in Turns.done:
            return OperationResult(data={"service": service.id})
        with job.exclusive(f"customer:{service.user.id}", Turns.ttl_s):
            Turns.entered.append(service.id)
            steps = Turns.inside.get(service.id) or [None]
            step = steps.pop(0)
            if step is not None:
                raise step
        return OperationResult(data={"service": service.id})


CREATE = OperationSpec("servers.turns.create", Turns, "create", ServerPayload, SERVER_EVENTS["create"])


@pytest.fixture(autouse=True)
def _reset() -> None:
    Turns.ttl_s = 60.0
    Turns.inside = {}
    Turns.entered = []
    Turns.done = set()


@pytest.fixture
def turns(runtime: Runtime) -> Runtime:
    runtime.bind("turns", Turns({"api_key": "turns-key-0123456789"}))
    return runtime


def service(service_id: int, user_id: int = 1) -> dict[str, Any]:
    return {"id": service_id, "user": {"id": user_id, "email": "a@b.c"}, "product": {"id": 2, "name": "P"}}


def run(runtime: Runtime, service_id: int, user_id: int = 1, retries: int = 0) -> dict[str, Any]:
    kwargs = {"connection": "turns", "service": service(service_id, user_id)}
    result: dict[str, Any] = runtime.execute(CREATE, (), kwargs, Delivery(f"task-{service_id}", retries))
    return result


def test_a_job_that_re_schedules_inside_keeps_its_place_until_it_finishes(turns: Runtime) -> None:
    Turns.inside = {1: [ProviderUnavailable("timed out"), Pending("still locked", 1)]}
    with pytest.raises(Reschedule):
        run(turns, 1)
    with pytest.raises(Reschedule) as waiting:
        run(turns, 2)  # same customer: waits, its section never entered
    assert waiting.value.kind == "busy"
    assert 0 < waiting.value.countdown <= 1.0
    assert Turns.entered == [1]
    with pytest.raises(Reschedule):
        run(turns, 1, retries=1)  # the holder's own next run walks back in
    assert run(turns, 1, retries=2)["status"] == "succeeded"
    assert run(turns, 2, retries=1)["status"] == "succeeded"  # the holder left: the next one enters
    assert Turns.entered == [1, 1, 1, 2]


def test_a_job_that_ends_without_entering_again_still_leaves(turns: Runtime, redis_client: Any) -> None:
    Turns.inside = {1: [ProviderUnavailable("timed out")]}
    with pytest.raises(Reschedule):
        run(turns, 1)  # or a worker killed inside: the section stays with job 1
    Turns.done = {1}  # its next run finds the work done without entering the section
    assert run(turns, 1, retries=1)["status"] == "succeeded"
    assert run(turns, 2)["status"] == "succeeded"
    assert not redis_client.keys("paymenter:mutex:*")


def test_other_customers_are_not_held_up(turns: Runtime) -> None:
    Turns.inside = {1: [ProviderUnavailable("timed out")]}
    with pytest.raises(Reschedule):
        run(turns, 1, user_id=1)
    assert run(turns, 2, user_id=2)["status"] == "succeeded"


def test_a_job_that_fails_for_good_lets_the_next_one_in(turns: Runtime) -> None:
    Turns.inside = {1: [ProviderRejected("no capacity")]}
    with pytest.raises(JobFailed):
        run(turns, 1)
    assert run(turns, 2)["status"] == "succeeded"


def test_a_section_outlives_its_holder_by_the_ttl_plus_the_visibility_timeout(
    turns: Runtime, redis_client: Any
) -> None:
    visibility_ms = turns.settings.visibility_timeout * 1000
    Turns.inside = {1: [ProviderUnavailable("timed out")]}
    with pytest.raises(Reschedule):
        run(turns, 1)  # as good as a worker killed inside: nobody lets go
    (key,) = redis_client.keys("paymenter:mutex:*")
    assert visibility_ms < redis_client.pttl(key) <= Turns.ttl_s * 1000 + visibility_ms
    redis_client.pexpire(key, 1)  # ... and the holder never came back within that
    time.sleep(0.01)
    assert run(turns, 2)["status"] == "succeeded"


def test_a_holder_re_scheduled_for_long_keeps_its_place_until_it_runs_again(turns: Runtime, redis_client: Any) -> None:
    Turns.inside = {1: [Pending("installing", 900)]}
    with pytest.raises(Reschedule) as later:
        run(turns, 1)
    assert later.value.countdown == 900
    (key,) = redis_client.keys("paymenter:mutex:*")
    assert redis_client.pttl(key) > 900_000  # longer than the holder's own ttl_s of 60 s
    with pytest.raises(Reschedule):
        run(turns, 2)
