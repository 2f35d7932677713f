"""SIGKILL of the worker in the middle of every server integration's create and terminate.

Each phase runs one operation for two services of every integration at once in one worker. At each
fake, one service's provider call is held *inside* (the effect landed, the answer held back) and the
other's answer is delivered a few milliseconds before the kill (the worker dies after the provider
answered, between that call and the next or its ledger write); which service gets which is drawn at
random, and so is the moment of the kill. Where creates take turns, only the first create's call is
held, in a mode drawn at random, while the other waits for its turn. A fresh worker is started at once:
the jobs come back after the visibility timeout and must all succeed, leaving exactly one resource per
service after a create and none after a terminate. Two rounds of create + terminate run, so every
integration also provisions a service again after terminating it.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.chaos.conftest import (
    VISIBILITY_TIMEOUT,
    Choke,
    Fleet,
    StartWorker,
    WorkerProcess,
    build_fleet,
    wait_meta,
    wait_until,
    worker_env,
)
from tests.contract.harnesses import SERVER_HARNESSES
from worker.client import PaymenterClient

pytestmark = pytest.mark.chaos

# The call that removes the resource (the harnesses name only the create call).
TERMINATE_CALLS = {
    "convoy": r"^DELETE /api/application/servers/",
    "cpanel": r"^GET /json-api/removeacct$",
    "directadmin": r"^POST /CMD_API_SELECT_USERS$",
    "enhance": r"^DELETE /api/orgs/[^/]+/subscriptions/",
    "plesk": r"^DELETE /api/v2/domains/",
    "proxmox": r"^DELETE /api2/json/nodes/[^/]+/(qemu|lxc)/\d+$",
    "pterodactyl": r"^DELETE /api/application/servers/",
    "virtfusion": r"^DELETE /api/v1/servers/",
    "virtualizor": r"^POST /index\.php/vs$",
}
ANY_CHANGE = r"^(POST|PUT|PATCH|DELETE) "
# Panels whose creates of one customer run one at a time (``job.exclusive``): a create the provider cannot
# label waits for the one before it to name its server.
CREATES_TAKE_TURNS = {"virtfusion"}
SERVICES = (701, 702)
ROUNDS = 2


def run_phase(
    operation: str,
    fleet: Fleet,
    client: PaymenterClient,
    r: redis.Redis,
    victim: WorkerProcess,
    start_rescuer: Any,
    services: dict[tuple[str, int], dict[str, Any]],
    rng: random.Random,
) -> tuple[WorkerProcess, dict[tuple[str, int], dict[str, Any]], list[str]]:
    """One operation on every service with a kill in the middle; returns the rescuer, results and problems."""
    chokes = {}
    for slug, fake in fleet.fakes.items():
        pattern = fleet.harnesses[slug].create_call if operation == "create" else TERMINATE_CALLS.get(slug, ANY_CHANGE)
        modes = ["inside", "answered"]
        rng.shuffle(modes)
        if operation == "create" and slug in CREATES_TAKE_TURNS:
            modes = modes[:1]  # the second create waits for the held one's turn: only one call can be held
        chokes[slug] = Choke(fake, pattern, modes)
    jobs = {
        (slug, sid): client.enqueue(f"servers.{slug}.{operation}", {"connection": slug, "service": services[slug, sid]})
        for slug in fleet.fakes
        for sid in SERVICES
    }
    problems = []
    try:
        wait_until(lambda: all(c.all_held() for c in chokes.values()), 20, f"every {operation} call to be held")
    except AssertionError:  # a job that never reached its call: reported, and the phase goes on
        for slug, choke in chokes.items():
            if not choke.all_held():
                states = {sid: (client.state(jobs[slug, sid]) or {}).get("result") for sid in SERVICES}
                problems.append(f"{slug} {operation}: not every call reached the provider; results {states}")
    for choke in chokes.values():
        choke.release()  # the answered calls get their answers; the inside ones stay held
    time.sleep(rng.uniform(0.002, 0.03))
    victim.kill()
    rescuer = start_rescuer()

    results = {}
    for (slug, sid), job in jobs.items():
        held = dict(chokes[slug].held)
        try:
            meta = wait_meta(r, job.id, timeout=VISIBILITY_TIMEOUT + 60)
        except AssertionError as exc:
            with fleet.fakes[slug].lock:
                recent = fleet.fakes[slug].calls[-12:]
            trail = [line[:300] for w in (victim, rescuer) for line in w.log().splitlines() if job.id in line]
            problems.append(
                f"{slug} {operation} of service {sid}: {exc} (held {held}; last calls {recent}; "
                f"worker log lines of the job {trail[-8:]})"
            )
            continue
        if meta["status"] != "SUCCESS":
            problems.append(f"{slug} {operation} of service {sid} ended {meta['status']}: {meta['result']}")
            continue
        results[slug, sid] = meta["result"]
        expected = 1 if operation == "create" else 0
        found = fleet.resources(slug, sid)
        if found != expected:
            problems.append(f"{slug}: {found} resources for service {sid} after {operation} (held {held})")
    return rescuer, results, problems


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with contextlib.ExitStack() as stack:
        yield build_fleet(stack, tmp_path, [h.slug for h in SERVER_HARNESSES])


@pytest.mark.timeout(240)
def test_sigkill_inside_and_between_provider_calls_loses_no_job_and_doubles_no_resource(
    redis_url: str, r: redis.Redis, fleet: Fleet, start_worker: StartWorker, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    env = worker_env(redis_url, fleet.profiles)
    client = PaymenterClient(redis_url, result_key=None)
    worker = start_worker(env, name="victim")
    services = {(slug, sid): fleet.service(slug, sid) for slug in fleet.fakes for sid in SERVICES}
    problems: list[str] = []
    for round_ in range(ROUNDS):
        worker, created, found = run_phase(
            "create", fleet, client, r, worker, lambda: start_worker(env, name="rescuer"), services, rng
        )
        problems += [f"round {round_ + 1}: {p}" for p in found]
        for key, envelope in created.items():
            properties = envelope["data"].get("properties", {})
            services[key] = {**services[key], "properties": {**services[key]["properties"], **properties}}
        worker, _, found = run_phase(
            "terminate", fleet, client, r, worker, lambda: start_worker(env, name="rescuer"), services, rng
        )
        problems += [f"round {round_ + 1}: {p}" for p in found]
        services = {key: fleet.service(*key) for key in services}
    assert worker.alive()
    assert not problems, f"(random seed {seed})\n" + "\n".join(problems)
