"""A Pterodactyl panel for the benchmarks, in a process of its own: the stateful test fake, seeded with
servers for services 1..N, served on loopback by a threaded HTTP server (a thread per connection), every
answer held back by ``--delay`` seconds. Prints ``{"url", "api_key"}`` as one JSON line once it serves,
then runs until stdin closes."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from extensions.base import LocalContext, Service  # noqa: E402
from extensions.registry import get_extension  # noqa: E402
from tests.contract.harness_pterodactyl import HARNESS  # noqa: E402
from tests.fakes.pterodactyl import FakePterodactyl  # noqa: E402

API_KEY = HARNESS.secret


def seeded_panel(servers: int) -> FakePterodactyl:
    panel = HARNESS.make_fake()
    panel.add_node(3, "node-bench", ports=range(30000, 30000 + 2 * servers + 10), memory=1 << 30, disk=1 << 40)
    extension = get_extension("servers", "pterodactyl", HARNESS.config(panel.base_url), transport=panel.transport())
    for service_id in range(1, servers + 1):
        service = Service.model_validate(HARNESS.service(service_id))
        extension.operation("create")(service, LocalContext(f"seed-{service_id}"))
    panel.calls.clear()
    return panel


def hammer(base_url: str, threads: int, seconds: float) -> float:
    """Requests per second served to ``threads`` clients each looking a server up as fast as it can."""
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def run(slot: int) -> None:
        with httpx.Client(base_url=base_url, headers=headers) as client:
            while time.perf_counter() < stop:
                client.get(f"/api/application/servers/external/{slot % 50 + 1}").raise_for_status()
                counts[slot] += 1

    workers = [threading.Thread(target=run, args=(slot,)) for slot in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--hammer", metavar="URL", help="measure a running panel instead of serving one")
    parser.add_argument("--threads", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    if args.hammer:
        print(round(hammer(args.hammer, args.threads, args.seconds), 1))
        return 0
    panel = seeded_panel(args.servers)
    if args.delay > 0:
        panel.delay_response(".*", seconds=args.delay, times=1 << 62)
    with panel.serve() as url:
        print(json.dumps({"url": url, "api_key": API_KEY}), flush=True)
        sys.stdin.read()  # until the benchmark closes our stdin
    return 0


if __name__ == "__main__":
    sys.exit(main())
