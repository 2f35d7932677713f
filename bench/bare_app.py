"""The baseline: a bare Celery app with the worker's own settings (``worker.app.make_celery``: broker,
transport options, acks, prefetch, serializers, queues) and one plain task making the same provider calls
as ``servers.pterodactyl.suspend`` (look the server up by external id, then suspend it), with no
ledger, redaction, result envelope or events.

    celery -A bench.bare_app worker --pool=threads --concurrency=100
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import httpx

from worker.app import make_celery
from worker.settings import Settings

app = make_celery(Settings())
API = "/api/application"


@cache
def panel(slow: bool) -> httpx.Client:
    """One client per panel, shared by the pool's threads (as an extension's ``HttpApi`` is)."""
    url = os.environ.get("BENCH_SLOW_PANEL_URL" if slow else "BENCH_PANEL_URL", "http://127.0.0.1:1")
    return httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {os.environ.get('BENCH_PANEL_KEY', '')}", "Accept": "application/json"},
        timeout=httpx.Timeout(30.0, connect=10.0),
    )


@app.task(name="bench.bare.suspend", acks_late=True)  # type: ignore[untyped-decorator]
def suspend(service_id: int, slow: bool = False) -> dict[str, Any]:
    found = panel(slow).get(f"{API}/servers/external/{service_id}")
    found.raise_for_status()
    server_id = found.json()["attributes"]["id"]
    panel(slow).post(f"{API}/servers/{server_id}/suspend").raise_for_status()
    return {"server": server_id, "suspended": True}
