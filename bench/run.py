"""Benchmarks of the worker against a bare Celery baseline measured in the same run.

    python bench/run.py --quick     # about a minute, smaller counts
    python bench/run.py             # the full set, a few minutes

Prints one JSON line on stdout (progress goes to stderr). See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import celery  # noqa: E402
import kombu  # noqa: E402
import redis  # noqa: E402

from tests.contract.harness_pterodactyl import HARNESS  # noqa: E402
from worker.client import PaymenterClient  # noqa: E402
from worker.embedded import EmbeddedRedis  # noqa: E402

BENCH_DB = 11
CONCURRENCY = 100
PROVIDER_DELAY = 0.1
SERVERS = 50
FULL_TASK = "servers.pterodactyl.suspend"
BARE_TASK = "bench.bare.suspend"
ENQUEUE_QUEUE = "bench-enqueue"


@dataclass(frozen=True)
class Sizes:
    overhead_jobs: int
    io_jobs: int
    enqueue_jobs: int
    bare_enqueue_jobs: int
    latency_rate: float
    latency_seconds: float
    reps: int
    warmup_jobs: int = 100


QUICK = Sizes(overhead_jobs=500, io_jobs=600, enqueue_jobs=5000, bare_enqueue_jobs=1000, latency_rate=40,
              latency_seconds=5, reps=1)  # fmt: skip
FULL = Sizes(overhead_jobs=2000, io_jobs=2000, enqueue_jobs=20000, bare_enqueue_jobs=3000, latency_rate=50,
             latency_seconds=15, reps=2)  # fmt: skip


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- processes ----------------------------------------------------------------------------------------


def redis_url(stack: contextlib.ExitStack, workdir: Path) -> str:
    """127.0.0.1:6379 (database 11, flushed) if it answers, else an embedded redis-server."""
    url = f"redis://127.0.0.1:6379/{BENCH_DB}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        embedded = EmbeddedRedis(workdir)
        url = embedded.start()
        stack.callback(embedded.stop)
    redis.Redis.from_url(url).flushdb()
    return url


def start_fake(stack: contextlib.ExitStack, delay: float) -> dict[str, str]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fake_panel.py"), "--servers", str(SERVERS), "--delay", str(delay)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stack.callback(process.wait, 10)
    stack.callback(process.stdin.close)  # type: ignore[union-attr]
    line = process.stdout.readline()  # type: ignore[union-attr]
    if not line:
        raise RuntimeError("the fake panel did not start")
    info: dict[str, str] = json.loads(line)
    return info


class Worker:
    def __init__(self, kind: str, env: dict[str, str], log: Path) -> None:
        self.kind = kind
        self.log = log
        common = [f"--concurrency={CONCURRENCY}", "--loglevel=INFO", f"--hostname={log.stem}@%h"]
        if kind == "full":
            argv = [sys.executable, "-m", "worker.cli", "run", *common]
        else:
            argv = [sys.executable, "-m", "celery", "-A", "bench.bare_app", "worker", "--pool=threads",
                    "--queues=celery,servers,gateways,others", "--task-events", "--without-gossip",
                    "--without-mingle", *common]  # fmt: skip
        self._out = open(log, "wb")
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        raise RuntimeError("no VmRSS")

    def cpu_s(self) -> float:
        """User plus system CPU seconds the worker process has used so far (``/proc/<pid>/stat``)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._out.close()


@contextlib.contextmanager
def workers(kind: str, env: dict[str, str], workdir: Path, count: int = 1) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    try:
        for _ in range(count):
            started.append(Worker(kind, env, workdir / f"{kind}-{uuid.uuid4().hex[:6]}.log"))
        yield started
    finally:
        for running in started:
            running.stop()


# --- jobs -----------------------------------------------------------------------------------------


Batch = list[tuple[str, dict[str, Any], str | None]]


class Jobs:
    """Builds the jobs of each kind: the full-stack suspend (a key of its own each: ledger claim and
    success) and the bare task doing the same two provider calls."""

    def __init__(self) -> None:
        self.services = {i: HARNESS.service(i) for i in range(1, SERVERS + 1)}
        self.nonce = uuid.uuid4().hex[:8]
        self.count = 0

    def batch(self, kind: str, n: int, slow: bool = False) -> Batch:
        jobs: Batch = []
        for _ in range(n):
            self.count += 1
            sid = self.count % SERVERS + 1
            if kind == "full":
                kwargs = {"connection": "slowpanel" if slow else "panel", "service": self.services[sid]}
                jobs.append((FULL_TASK, kwargs, f"bench-{self.nonce}-{self.count}"))
            else:
                jobs.append((BARE_TASK, {"service_id": sid, "slow": slow}, None))
        return jobs


def wait_done(backend: redis.Redis, ids: list[str], timeout: float = 600) -> float:
    """Poll the result keys until every job has finished; the time the last one was seen done.

    Jobs finish roughly in enqueue order, so each poll reads only the newest pending jobs and reads the
    rest only once those are done: the poller stays light next to the worker it measures.
    """
    pending = list(ids)
    deadline = time.monotonic() + timeout
    failures: set[str] = set()

    def unfinished(chunk: list[str]) -> list[str]:
        still = []
        for task_id, raw in zip(chunk, backend.mget([f"celery-task-meta-{i}" for i in chunk]), strict=True):
            status = json.loads(raw)["status"] if raw else None
            if status == "FAILURE":
                failures.add(task_id)
            elif status != "SUCCESS":
                still.append(task_id)
        return still

    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} jobs still pending after {timeout}s")
        if not unfinished(pending[-100:]):
            pending = [i for start in range(0, len(pending), 500) for i in unfinished(pending[start : start + 500])]
        if pending:
            time.sleep(0.05)
    if failures:
        example = backend.get(f"celery-task-meta-{failures.pop()}")
        raise RuntimeError(f"{len(failures) + 1} benchmark jobs failed, e.g. {example!r}")
    return time.perf_counter()


def throughput(client: PaymenterClient, backend: redis.Redis, jobs: Batch) -> float:
    started = time.perf_counter()
    enqueued = client.enqueue_many(jobs)
    finished = wait_done(backend, [job.id for job in enqueued])
    return len(jobs) / (finished - started)


def latency(
    client: PaymenterClient, url: str, make: Callable[[], tuple[str, dict[str, Any], str | None]], sizes: Sizes
) -> tuple[float, float]:
    """Enqueue at a fixed rate; time each job from its enqueue to its result being published."""
    done: dict[str, float] = {}
    listener = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
    listener.psubscribe("celery-task-meta-*")
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            message = listener.get_message(timeout=0.2)
            if message and b'"status": "SUCCESS"' in message["data"]:
                done.setdefault(message["channel"].decode()[len("celery-task-meta-") :], time.perf_counter())

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    sent: dict[str, float] = {}
    total = int(sizes.latency_rate * sizes.latency_seconds)
    origin = time.perf_counter()
    for n in range(total):
        pause = origin + n / sizes.latency_rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        task, kwargs, key = make()
        at = time.perf_counter()
        sent[client.enqueue(task, kwargs, idempotency_key=key).id] = at
    deadline = time.monotonic() + 60
    while len(done.keys() & sent.keys()) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(5)
    listener.close()
    samples = sorted((done[i] - at) * 1000 for i, at in sent.items() if i in done)
    if len(samples) < len(sent):
        raise RuntimeError(f"{len(sent) - len(samples)} latency jobs never finished")
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return round(cuts[49], 1), round(cuts[98], 1)


def fake_capacity(base_url: str, seconds: float = 3.0, processes: int = 4) -> float:
    """Requests per second the slow fake serves to CONCURRENCY concurrent connections, opened by a few
    client processes (one Python process with that many threads is itself the limit). The ceiling is
    CONCURRENCY / delay."""
    per_process = str(CONCURRENCY // processes)
    clients = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "fake_panel.py"),
                "--hammer",
                base_url,
                "--threads",
                per_process,
                "--seconds",
                str(seconds),
            ],  # fmt: skip
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    return round(sum(float(client.communicate()[0]) for client in clients), 1)


def enqueue_rates(client: PaymenterClient, jobs: Jobs, sizes: Sizes) -> tuple[float, float, float]:
    """Batch enqueue (one pipelined round trip), the client one by one, and sequential apply_async."""
    from bench.bare_app import suspend

    batch = jobs.batch("full", sizes.enqueue_jobs)
    started = time.perf_counter()
    client.enqueue_many(batch, queue=ENQUEUE_QUEUE)
    batched = sizes.enqueue_jobs / (time.perf_counter() - started)
    single = jobs.batch("full", sizes.bare_enqueue_jobs)
    started = time.perf_counter()
    for task, kwargs, key in single:
        client.enqueue(task, kwargs, idempotency_key=key, queue=ENQUEUE_QUEUE)
    one_by_one = sizes.bare_enqueue_jobs / (time.perf_counter() - started)
    started = time.perf_counter()
    for n in range(sizes.bare_enqueue_jobs):
        suspend.apply_async(kwargs={"service_id": n % SERVERS + 1}, queue=ENQUEUE_QUEUE)
    bare = sizes.bare_enqueue_jobs / (time.perf_counter() - started)
    client.broker.delete(ENQUEUE_QUEUE)
    return round(batched), round(one_by_one), round(bare)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def machine(url: str) -> dict[str, Any]:
    info: Any = redis.Redis.from_url(url).info("server")
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "redis_server": info["redis_version"],
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def measure(kind: str, env: dict[str, str], workdir: Path, url: str, jobs: Jobs, sizes: Sizes) -> dict[str, Any]:
    client = PaymenterClient(url)
    backend = redis.Redis.from_url(url)
    with workers(kind, env, workdir) as (running,):
        throughput(client, backend, jobs.batch(kind, sizes.warmup_jobs))
        throughput(client, backend, jobs.batch(kind, sizes.warmup_jobs, slow=True))
        say(f"{kind}: overhead run ({sizes.overhead_jobs} jobs, instant provider)")
        cpu_before = running.cpu_s()
        fast = throughput(client, backend, jobs.batch(kind, sizes.overhead_jobs))
        cpu_ms = (running.cpu_s() - cpu_before) / sizes.overhead_jobs * 1000
        say(f"{kind}: {fast:.0f} jobs/s; I/O run ({sizes.io_jobs} jobs, {PROVIDER_DELAY * 1000:.0f} ms provider)")
        slow = throughput(client, backend, jobs.batch(kind, sizes.io_jobs, slow=True))
        say(f"{kind}: {slow:.0f} jobs/s; latency at {sizes.latency_rate:.0f}/s")
        p50, p99 = latency(client, url, lambda: jobs.batch(kind, 1)[0], sizes)
        rss = running.rss_mb()
    with workers(kind, env, workdir, count=2) as pair:
        throughput(client, backend, jobs.batch(kind, sizes.warmup_jobs, slow=True))
        say(f"{kind}: I/O run on {len(pair)} worker processes")
        scaled = throughput(client, backend, jobs.batch(kind, sizes.io_jobs, slow=True))
    return {"fast": fast, "slow": slow, "scaled": scaled, "p50": p50, "p99": p99, "rss": rss, "cpu_ms": cpu_ms}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts, about a minute")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paymenter-bench-")))
        url = redis_url(stack, workdir)
        fast_panel = start_fake(stack, 0.0)
        slow_panel = start_fake(stack, PROVIDER_DELAY)
        profiles = workdir / "connections.toml"
        profiles.write_text(
            "".join(
                f'[connections.{name}]\nextension = "servers.pterodactyl"\nhost = "{panel["url"]}"\n'
                f'api_key = "{panel["api_key"]}"\n'
                for name, panel in (("panel", fast_panel), ("slowpanel", slow_panel))
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTER_")}
        env.update(
            PAYMENTER_BROKER_URL=url,
            PAYMENTER_CONNECTIONS=str(profiles),
            PAYMENTER_CONCURRENCY=str(CONCURRENCY),
            BENCH_PANEL_URL=fast_panel["url"],
            BENCH_SLOW_PANEL_URL=slow_panel["url"],
            BENCH_PANEL_KEY=fast_panel["api_key"],
            PYTHONPATH=str(ROOT),
        )
        os.environ.update(PAYMENTER_BROKER_URL=url)
        report: dict[str, Any] = {"machine": machine(url)}

        say("fake panel capacity")
        capacity = fake_capacity(slow_panel["url"])
        say("enqueue rates")
        jobs = Jobs()
        enqueue_per_s, enqueue_single_per_s, bare_enqueue_per_s = enqueue_rates(PaymenterClient(url), jobs, sizes)

        runs: dict[str, list[dict[str, Any]]] = {"bare": [], "full": []}
        for rep in range(sizes.reps):
            for kind in ("bare", "full"):
                say(f"rep {rep + 1}/{sizes.reps}: {kind}")
                runs[kind].append(measure(kind, env, workdir, url, jobs, sizes))

        def pick(kind: str, field: str) -> float:
            return median([run[field] for run in runs[kind]])

        full_fast, bare_fast = pick("full", "fast"), pick("bare", "fast")
        full_slow, bare_slow = pick("full", "slow"), pick("bare", "slow")
        report.update(
            overhead_ratio=round(full_fast / bare_fast, 3),
            full_jobs_per_s=full_fast,
            bare_jobs_per_s=bare_fast,
            cpu_ms_per_job=pick("full", "cpu_ms"),
            bare_cpu_ms_per_job=pick("bare", "cpu_ms"),
            io_jobs_per_s=full_slow,
            bare_io_jobs_per_s=bare_slow,
            io_ratio=round(full_slow / bare_slow, 3),
            io_jobs_per_s_2_workers=pick("full", "scaled"),
            bare_io_jobs_per_s_2_workers=pick("bare", "scaled"),
            enqueue_per_s=enqueue_per_s,
            enqueue_single_per_s=enqueue_single_per_s,
            bare_enqueue_per_s=bare_enqueue_per_s,
            p50_ms=pick("full", "p50"),
            p99_ms=pick("full", "p99"),
            bare_p50_ms=pick("bare", "p50"),
            bare_p99_ms=pick("bare", "p99"),
            rss_mb=max(run["rss"] for run in runs["full"]),
            bare_rss_mb=max(run["rss"] for run in runs["bare"]),
            fake_panel_rps=capacity,
            counts={
                "mode": "quick" if args.quick else "full",
                "overhead_jobs": sizes.overhead_jobs,
                "io_jobs": sizes.io_jobs,
                "enqueue_jobs": sizes.enqueue_jobs,
                "single_enqueue_jobs": sizes.bare_enqueue_jobs,
                "latency_jobs": int(sizes.latency_rate * sizes.latency_seconds),
                "latency_rate_per_s": sizes.latency_rate,
                "reps": sizes.reps,
                "warmup_jobs": sizes.warmup_jobs,
                "pool": "threads",
                "concurrency": CONCURRENCY,
                "provider_calls_per_job": 2,
                "provider_delay_ms": PROVIDER_DELAY * 1000,
                "panel_servers": SERVERS,
            },
        )
        report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
