"""The HTTP API served by ``paymenter-worker api`` (uvicorn in a subprocess), against real workers."""

from __future__ import annotations

import base64
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from extensions.payments import WebhookDelivery
from extensions.registry import extension_class, list_extensions
from tests.fakes.mollie import FakeMollie
from tests.fakes.pterodactyl import FakePterodactyl
from tests.integration.conftest import API_TOKEN, PANEL_KEY, ROOT, ApiProcess, service_payload
from worker.embedded import free_port

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
MOLLIE_KEY = "test_apiintegrationmolliekey0000"


def follow(api: ApiProcess, job_id: str, timeout: float = 30) -> dict[str, Any]:
    """Poll ``GET /api/v1/jobs/{id}`` until the job ends."""
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = httpx.get(f"{api.base_url}/api/v1/jobs/{job_id}", headers=AUTH, timeout=5).json()
        if status["state"] in ("SUCCESS", "FAILURE"):
            return status
        assert time.monotonic() < deadline, f"job {job_id} still {status['state']} after {timeout}s"
        time.sleep(0.05)


def queued_messages(r: redis.Redis, queue: str) -> list[dict[str, Any]]:
    """The protocol-2 messages waiting on a Redis queue, decoded: (headers, kwargs)."""
    decoded = []
    for raw in r.lrange(queue, 0, -1):
        envelope = json.loads(raw)
        _args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        decoded.append({"headers": envelope["headers"], "kwargs": kwargs})
    return decoded


def webhook_gateway() -> str:
    """A gateway that receives webhooks; the webhook tests fail (not skip) when none is implemented."""
    gateways = list_extensions()["gateways"]
    receiving = [g for g in gateways if "webhook" in extension_class("gateways", g).operations]
    assert receiving, f"no implemented gateway receives webhooks (gateways: {gateways})"
    return "paypal_ipn" if "paypal_ipn" in receiving else receiving[0]


def test_api_refuses_to_start_without_a_token_and_insecure_local_binds_loopback(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "worker.cli", "api", "--port", str(free_port())],
        cwd=ROOT,
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "PAYMENTER_API_TOKEN" in refused.stderr

    api = ApiProcess(worker_env, tmp_path / "insecure.log", "--insecure-local", "--host", "0.0.0.0")
    try:
        api.wait_ready()
        startup = api.log_path.read_text()
        assert f"http://127.0.0.1:{api.port}" in startup
        assert "0.0.0.0" not in startup
        listing = httpx.get(f"{api.base_url}/api/v1/admin/extensions", timeout=5)
        assert listing.status_code == 200  # no token configured: loopback without authentication
    finally:
        api.stop()


def test_auth_is_required_everywhere_but_webhooks_health_and_metrics(start_api: Any) -> None:
    api = start_api()
    protected = [
        ("GET", "/api/v1/admin/extensions"),
        ("GET", "/api/v1/admin/extensions/servers"),
        ("GET", "/api/v1/admin/extensions/servers/pterodactyl/metadata"),
        ("GET", "/api/v1/admin/extensions/servers/pterodactyl/config"),
        ("GET", "/api/v1/jobs/some-id"),
        ("GET", "/api/v1/dead-letters"),
        ("POST", "/api/v1/dead-letters/some-id/replay"),
    ]
    wrong = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {API_TOKEN}x"},
        {"Authorization": f"Basic {API_TOKEN}"},
    ]
    with httpx.Client(base_url=api.base_url, timeout=5) as http:
        for method, path in protected:
            for headers in wrong:
                refused = http.request(method, path, headers=headers)
                assert refused.status_code == 401, (method, path, headers)
                assert refused.json()["error"]["code"] == "unauthorized"
                assert refused.headers["www-authenticate"] == "Bearer"
            assert http.request(method, path, headers=AUTH).status_code != 401, (method, path)
        job = {"task": "extensions.list", "kwargs": {}}
        assert http.post("/api/v1/jobs", json=job).status_code == 401
        assert http.post("/api/v1/jobs", json=job, headers=AUTH).status_code == 202
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json() == {"status": "ready", "broker": True, "backend": True}
        assert http.get("/metrics").status_code == 200
        assert http.get("/openapi.json").status_code == 200


def test_admin_extension_endpoints(start_api: Any) -> None:
    api = start_api()
    with httpx.Client(base_url=f"{api.base_url}/api/v1/admin/extensions", headers=AUTH, timeout=5) as http:
        listing = httpx.get(f"{api.base_url}/api/v1/admin/extensions", headers=AUTH, timeout=5).json()
        assert listing == list_extensions()
        assert http.get("/servers").json() == listing["servers"]
        metadata = http.get("/servers/pterodactyl/metadata").json()
        assert metadata == extension_class("servers", "pterodactyl").get_metadata()
        assert set(metadata) == {"name", "description", "version", "author", "type"}
        assert metadata["type"] == "server"
        config = http.get("/servers/pterodactyl/config").json()
        assert isinstance(config, list)
        assert config == extension_class("servers", "pterodactyl").get_config()
        assert {f["name"] for f in config} == {"host", "api_key"}

        unknown_category = http.get("/nosuch")
        assert unknown_category.status_code == 404
        assert "unknown extension category 'nosuch'" in unknown_category.json()["error"]["message"]
        unknown_name = http.get("/servers/nosuch/metadata")
        assert unknown_name.status_code == 404
        assert unknown_name.json()["error"]["code"] == "not_found"
        assert "pterodactyl" in unknown_name.json()["error"]["message"]  # names what exists
        assert http.get("/gateways/pterodactyl/config").status_code == 404


def test_jobs_enqueued_and_followed_over_http_end_to_end(
    start_worker: Any, start_api: Any, fake_panel: FakePterodactyl
) -> None:
    start_worker()
    api = start_api()
    with httpx.Client(base_url=f"{api.base_url}/api/v1", headers=AUTH, timeout=5) as http:
        job = {
            "task": "servers.pterodactyl.create",
            "kwargs": {"connection": "panel", "service": service_payload(701)},
            "idempotency_key": "order-701",
        }
        accepted = http.post("/jobs", json=job)
        assert accepted.status_code == 202
        assert accepted.json()["task"] == "servers.pterodactyl.create"
        done = follow(api, accepted.json()["id"])
        assert done["state"] == "SUCCESS"
        assert "error" not in done
        envelope = done["result"]
        assert envelope["status"] == "succeeded"
        assert envelope["idempotency_key"] == "order-701"
        assert envelope["data"]["properties"]["pterodactyl_server_id"]
        assert len(fake_panel.servers_for("701")) == 1

        again = http.post("/jobs", json=job).json()
        assert again["id"] == accepted.json()["id"]  # same task, key and payload: the same job
        assert len(fake_panel.servers_for("701")) == 1

        failing = http.post(
            "/jobs",
            json={
                "task": "servers.pterodactyl.suspend",
                "kwargs": {"connection": "panel", "service": service_payload(702)},
            },
        )
        failed = follow(api, failing.json()["id"])
        assert failed["state"] == "FAILURE"
        assert "result" not in failed
        assert failed["error"]["code"] == "not_found"
        assert set(failed["error"]) == {"code", "message", "retryable", "provider_status"}

        assert http.get("/jobs/never-enqueued").json() == {"id": "never-enqueued", "state": "PENDING"}
        unknown = http.post("/jobs", json={"task": "servers.nosuch.create", "kwargs": {}})
        assert unknown.status_code == 404
        assert "unknown task 'servers.nosuch.create'" in unknown.json()["error"]["message"]
        assert http.post("/jobs", json={"task": "extensions.list", "kwargs": [1]}).status_code == 422


def test_dead_letters_listed_and_replayed_over_http(start_worker: Any, start_api: Any, r: redis.Redis) -> None:
    start_worker()
    api = start_api()
    with httpx.Client(base_url=f"{api.base_url}/api/v1", headers=AUTH, timeout=5) as http:
        service = service_payload(703, password="Checkout-Secret-703")
        failing = http.post(
            "/jobs", json={"task": "servers.pterodactyl.suspend", "kwargs": {"connection": "panel", "service": service}}
        )
        assert follow(api, failing.json()["id"])["state"] == "FAILURE"
        (record,) = http.get("/dead-letters").json()
        assert record["task"] == "servers.pterodactyl.suspend"
        assert record["task_id"] == failing.json()["id"]
        assert record["error"]["code"] == "not_found"
        assert "sealed_kwargs" not in record
        assert "Checkout-Secret-703" not in json.dumps(record)

        replayed = http.post(f"/dead-letters/{record['id']}/replay")
        assert replayed.status_code == 200
        outcome = replayed.json()
        assert outcome["replayed"] == record["id"]
        assert outcome["id"] != record["task_id"]
        rerun = follow(api, outcome["id"])
        assert rerun["state"] == "FAILURE"  # the service still does not exist: failed (and dead-lettered) again
        listed = http.get("/dead-letters").json()
        assert record["id"] not in {d["id"] for d in listed}
        assert [d["task_id"] for d in listed] == [outcome["id"]]

        missing = http.post("/dead-letters/no-such-letter/replay")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


def test_webhook_bodies_survive_byte_for_byte_and_are_answered_fast(start_api: Any, r: redis.Redis) -> None:
    api = start_api()
    slug = webhook_gateway()
    ipn = b"mc_gross=19.95&first_name=J%E9r%F4me&payment_status=Completed&custom=inv%3D42&charset=windows-1252"
    windows_1252 = "Jérôme paid 19,95 € — “thanks”".encode("cp1252")
    utf8_json = json.dumps({"id": "evt_1", "name": "Zoë"}, ensure_ascii=False).encode()
    bodies = [ipn, windows_1252, utf8_json, b"", bytes(range(256))]
    timings = []
    with httpx.Client(base_url=api.base_url, timeout=5) as http:  # no token: providers have none
        for body in bodies:
            started = time.perf_counter()
            answer = http.post(
                f"/webhooks/{slug}/gw?source=ipn&tag=a&tag=b",
                content=body,
                headers={"Content-Type": "application/x-www-form-urlencoded", "X-Trace": "t-1"},
            )
            timings.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text
            assert answer.json()["task"] == f"gateways.{slug}.webhook"
        too_big = http.post(f"/webhooks/{slug}/gw", content=b"x" * 1_000_001)
        assert too_big.status_code == 413
        assert too_big.json()["error"]["code"] == "payload_too_large"
        unknown = http.post("/webhooks/nosuch/gw", content=b"id=1")
        assert unknown.status_code == 404
        assert "no gateway 'nosuch'" in unknown.json()["error"]["message"]
    assert statistics.median(timings) < 0.05, timings
    assert max(timings) < 1.0, timings

    messages = list(reversed(queued_messages(r, "gateways")))  # LPUSH: newest first
    assert len(messages) == len(bodies)
    for body, message in zip(bodies, messages, strict=True):
        assert message["headers"]["task"] == f"gateways.{slug}.webhook"
        kwargs = message["kwargs"]
        assert kwargs["connection"] == "gw"
        webhook = kwargs["webhook"]
        assert WebhookDelivery.model_validate(webhook).raw_body == body  # what the gateway computes over
        assert webhook["headers"]["x-trace"] == "t-1"
        assert webhook["headers"]["content-type"] == "application/x-www-form-urlencoded"
        assert webhook["query"] == {"source": "ipn", "tag": ["a", "b"]}
        assert webhook["received_at"].endswith("Z")
    assert messages[0]["kwargs"]["webhook"]["body"] == ipn.decode()  # ASCII form posts stay plain text
    assert "body_base64" not in messages[0]["kwargs"]["webhook"]
    assert base64.b64decode(messages[1]["kwargs"]["webhook"]["body_base64"]) == windows_1252
    assert messages[2]["kwargs"]["webhook"]["body"] == utf8_json.decode()  # UTF-8 JSON stays readable
    assert not r.llen("celery")
    assert not r.llen("servers")


def test_a_webhook_posted_over_http_ends_as_a_payment_event(
    start_worker: Any, start_api: Any, r: redis.Redis, worker_env: dict[str, str], tmp_path: Path
) -> None:
    fake = FakeMollie(api_key=MOLLIE_KEY)
    with fake.serve() as base_url:
        connections = tmp_path / "with-mollie.toml"
        connections.write_text(
            Path(worker_env["PAYMENTER_CONNECTIONS"]).read_text()
            + f'\n[connections.mollie-main]\nextension = "gateways.mollie"\napi_key = "{MOLLIE_KEY}"\n'
            f'api_base = "{base_url}"\n'
        )
        worker = start_worker(PAYMENTER_CONNECTIONS=str(connections))
        api = start_api()
        payment = fake.create_payment("24.50", "EUR", metadata={"invoice_id": 4711})
        fake.set_status(payment["id"], "paid")
        answer = httpx.post(
            f"{api.base_url}/webhooks/mollie/mollie-main",
            content=FakeMollie.webhook_body(payment["id"]),
            headers=FakeMollie.WEBHOOK_HEADERS,
            timeout=5,
        )
        assert answer.status_code == 200
        done = follow(api, answer.json()["id"])
        assert done["state"] == "SUCCESS", done
        events = [json.loads(fields[b"event"]) for _id, fields in r.xrange("paymenter:events")]
        (paid,) = [e for e in events if e["type"] == "payment.succeeded"]
        assert paid["source"] == "gateways.mollie"
        assert str(paid["data"]["invoice_id"]) == "4711"
        assert paid["data"]["amount"] == "24.50"
        assert paid["data"]["currency"] == "EUR"
        assert paid["data"]["transaction_id"] == payment["id"]
        assert MOLLIE_KEY not in worker.log_path.read_text()


def test_readiness_reports_an_unreachable_broker(start_api: Any, redis_url: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    api = start_api(PAYMENTER_BROKER_URL=dead, PAYMENTER_RESULT_BACKEND=redis_url)
    assert httpx.get(f"{api.base_url}/healthz", timeout=5).status_code == 200
    ready = httpx.get(f"{api.base_url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "broker": False, "backend": True}
    enqueue = httpx.post(f"{api.base_url}/api/v1/jobs", json={"task": "extensions.list"}, headers=AUTH, timeout=15)
    assert enqueue.status_code == 503
    assert enqueue.json()["error"]["code"] == "unavailable"


def test_openapi_holds_under_generated_requests(start_api: Any, tmp_path: Path) -> None:
    """Schemathesis over the published OpenAPI, every check on: no 5xx, every answer as documented."""
    api = start_api()
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{api.base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {API_TOKEN}",
            "--checks",
            "all",
            "--max-examples",
            "25",
            "--generation-deterministic",
            "--request-timeout",
            "10",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    published = httpx.get(f"{api.base_url}/openapi.json", timeout=5).json()["paths"]
    operations = sum(len(methods) for methods in published.values())
    assert f"Tested: {operations}" in run.stdout  # every published operation was exercised


def test_no_secret_in_api_answers_or_logs(start_worker: Any, start_api: Any, fake_panel: FakePterodactyl) -> None:
    start_worker()
    api = start_api()
    service = service_payload(704, password="Checkout-Secret-704")
    accepted = httpx.post(
        f"{api.base_url}/api/v1/jobs",
        json={"task": "servers.pterodactyl.create", "kwargs": {"connection": "panel", "service": service}},
        headers=AUTH,
        timeout=5,
    ).json()
    done = follow(api, accepted["id"])
    shown = json.dumps(done)
    assert done["state"] == "SUCCESS"
    assert "Checkout-Secret-704" not in shown
    assert PANEL_KEY not in shown
    log = api.log_path.read_text()
    for secret in (API_TOKEN, "Checkout-Secret-704", PANEL_KEY):
        assert secret not in log
    access = [json.loads(line) for line in log.splitlines() if line.startswith("{") and '"route"' in line]
    assert {"method": "GET", "route": "/api/v1/jobs/{job_id}", "status": 200}.items() <= access[-1].items()
