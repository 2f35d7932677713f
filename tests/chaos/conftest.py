"""Chaos fixtures: a flushed Redis database of its own, real ``paymenter-worker run`` processes, and every
server integration's fake served on loopback with one connection profile each.

Redis: ``PAYMENTER_CHAOS_REDIS_URL`` if set, else database 12 of 127.0.0.1:6379 when it answers (the
integration suite uses 13), else an embedded redis-server started for the session.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.contract.harness import ServerHarness
from tests.contract.harnesses import SERVER_HARNESSES
from tests.fakes.base import FakeProvider
from tests.fakes.virtualizor import FakeVirtualizor
from tests.support import WorkerProcess, redis_for_tests

RESULT_KEY = Fernet.generate_key().decode()
VISIBILITY_TIMEOUT = 4


@pytest.fixture(scope="session")
def chaos_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from redis_for_tests(tmp_path_factory.mktemp("chaos-redis"), "PAYMENTER_CHAOS_REDIS_URL", 12)


@pytest.fixture
def redis_url(chaos_redis: str) -> str:
    redis.Redis.from_url(chaos_redis).flushdb()
    return chaos_redis


@pytest.fixture
def r(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


# --- worker processes ----------------------------------------------------------------------------


def worker_env(broker_url: str, connections: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTER_")}
    env.update(
        PAYMENTER_BROKER_URL=broker_url,
        PAYMENTER_CONNECTIONS=str(connections),
        PAYMENTER_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
        PAYMENTER_RESULT_KEY=RESULT_KEY,
        PAYMENTER_RETRY_BACKOFF_BASE="0.2",
        PAYMENTER_RETRY_BACKOFF_MAX="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
    """``start_worker(env, name=..., concurrency=..., ready=True)``; every worker is stopped at the end."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], name: str = "w", concurrency: int = 24, ready: bool = True) -> WorkerProcess:
        worker = WorkerProcess(env, tmp_path / f"{name}-{len(started)}.log", f"{name}{len(started)}", concurrency)
        started.append(worker)
        return worker.wait_ready() if ready else worker

    yield start
    for worker in started:
        worker.stop()


def wait_meta(r: redis.Redis, task_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        raw = r.get(f"celery-task-meta-{task_id}")
        if raw:
            meta: dict[str, Any] = json.loads(raw)
            if meta["status"] in ("SUCCESS", "FAILURE"):
                return meta
        if time.monotonic() >= deadline:
            last = json.loads(raw) if raw else {}
            reason = (last.get("result") or {}).get("exc_message") if isinstance(last.get("result"), dict) else None
            raise AssertionError(f"no final result for {task_id} in {timeout}s (last: {last.get('status')} {reason})")
        time.sleep(0.05)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def dead_letters(r: redis.Redis) -> list[dict[str, Any]]:
    records = []
    for dead_id in r.zrange("paymenter:dead-letters", 0, -1):
        raw = r.get(f"paymenter:dead-letter:{dead_id.decode()}")
        if raw is not None:
            records.append(json.loads(raw))
    return records


# --- connection profiles ------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are a subset of TOML's
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to a profile")


def write_profiles(path: Path, profiles: dict[str, tuple[str, dict[str, Any]]]) -> Path:
    lines = []
    for name, (extension, config) in profiles.items():
        lines.append(f"[connections.{name}]")
        lines.append(f"extension = {toml_value(extension)}")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in config.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


# --- fakes on loopback ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopbackCertificate:
    pem: str
    context: ssl.SSLContext


def loopback_certificate(directory: Path) -> LoopbackCertificate:
    """A self-signed certificate for 127.0.0.1 (the Virtualizor profile trusts it through ``ca_cert``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_path, key_path = directory / "loopback.crt", directory / "loopback.key"
    cert_path.write_text(pem)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return LoopbackCertificate(pem, context)


def quick_fake(harness: ServerHarness) -> FakeProvider:
    """The harness's fake with its asynchronous work shortened, so a chaos round is not spent polling."""
    fake = harness.make_fake()
    knobs = {
        "task_steps": 1,  # Proxmox: a task ends on the next request
        "build_reads": 1,  # Virtualizor / VirtFusion: the build ends on the first read
        "lock_after_create": 0,  # VirtFusion: no lock after create
        "install_reads": 1,  # Convoy / Pterodactyl
        "delete_reads": 1,  # Convoy
    }
    for knob, value in knobs.items():
        if isinstance(getattr(fake, knob, None), int):
            setattr(fake, knob, min(getattr(fake, knob), value))
    return fake


@dataclass
class Fleet:
    """Every server integration's fake on loopback, one connection profile per integration (named by slug)."""

    harnesses: dict[str, ServerHarness]
    fakes: dict[str, FakeProvider]
    configs: dict[str, dict[str, Any]]
    profiles: Path
    secrets: set[str] = field(default_factory=set)

    def service(self, slug: str, service_id: int) -> dict[str, Any]:
        return self.harnesses[slug].service(service_id)

    def resources(self, slug: str, service_id: int) -> int:
        with self.fakes[slug].lock:
            return self.harnesses[slug].resources(self.fakes[slug], service_id)


SECRET_FIELDS = re.compile(r"key|password|pass|token|secret", re.IGNORECASE)


def build_fleet(stack: contextlib.ExitStack, directory: Path, slugs: list[str] | None = None) -> Fleet:
    certificate: LoopbackCertificate | None = None
    harnesses, fakes, configs = {}, {}, {}
    for harness in SERVER_HARNESSES:
        if slugs is not None and harness.slug not in slugs:
            continue
        fake = quick_fake(harness)
        if harness.slug == "virtualizor":  # its URL is https://<ip>:<port>: serve it over TLS
            certificate = certificate or loopback_certificate(directory)
            base_url = stack.enter_context(fake.serve(certificate.context))
            port = int(base_url.rsplit(":", 1)[1])
            config = {**harness.config(base_url), "port": port, "client_port": port, "ca_cert": certificate.pem}
        else:
            base_url = stack.enter_context(fake.serve())
            config = harness.config(base_url)
        harnesses[harness.slug], fakes[harness.slug], configs[harness.slug] = harness, fake, config
    profiles = write_profiles(
        directory / "connections.toml",
        {slug: (f"servers.{slug}", config) for slug, config in configs.items()},
    )
    secrets = {h.secret for h in harnesses.values()}
    for config in configs.values():
        secrets.update(str(v) for k, v in config.items() if SECRET_FIELDS.search(k) and len(str(v)) >= 8)
    return Fleet(harnesses, fakes, configs, profiles, secrets)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with contextlib.ExitStack() as stack:
        yield build_fleet(stack, tmp_path)


# --- holding provider calls -------------------------------------------------------------------------


def call_key(fake: FakeProvider, request: httpx.Request) -> str:
    """``METHOD /path`` as the fake records it (Virtualizor's fake appends the ``act`` to its one path)."""
    if isinstance(fake, FakeVirtualizor):
        return f"{request.method} {request.url.path}/{request.url.params.get('act', '')}"
    return f"{request.method} {request.url.path}"


class Choke:
    """Holds the first requests matching ``pattern`` at one fake, one per entry of ``modes``:

    - ``inside``: the fake performs the request (its effect lands) and its answer is held back with the
      fake's own ``delay_response`` knob, armed for exactly that request: a worker killed now dies mid-call;
    - ``answered``: the fake performs the request and holds the answer until ``release()``, then delivers
      it: a worker killed a few milliseconds later dies after the provider answered, between that call
      and its next one (or its ledger write).

    Other requests pass straight through.
    """

    def __init__(self, fake: FakeProvider, pattern: str, modes: list[str], hold_seconds: float = 60.0) -> None:
        self.fake = fake
        self.pattern = re.compile(pattern)
        self.modes = list(modes)
        self.hold_seconds = hold_seconds
        self.held: list[tuple[str, str]] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._inner = fake.handle
        with fake.lock:
            self._calls_before = len(fake.calls)
        fake.handle = self.handle  # type: ignore[method-assign]

    def handle(self, request: httpx.Request) -> httpx.Response:
        key = call_key(self.fake, request)
        with self._lock:
            mode = self.modes.pop(0) if self.modes and self.pattern.search(key) else None
            if mode is not None:
                self.held.append((mode, key))
            if mode == "inside":
                self.fake.delay_response(f"^{re.escape(key)}$", seconds=self.hold_seconds)
        response = self._inner(request)
        if mode == "answered":
            self.released.wait(self.hold_seconds)
        return response

    def all_held(self) -> bool:
        """Every mode has its request, and the effect of each has landed at the fake."""
        with self._lock:
            if self.modes:
                return False
            keys = [key for _, key in self.held]
        with self.fake.lock:  # the fake records a call and routes it under this lock
            served = {f"{m} {p}" for m, p in self.fake.calls[self._calls_before :]}
        return all(key in served for key in keys)

    def release(self) -> None:
        self.fake.handle = self._inner  # type: ignore[method-assign]
        self.released.set()
