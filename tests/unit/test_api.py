"""The HTTP API in process (FastAPI's test client on fakeredis): body carriage, limits, auth, job states."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from extensions.payments import WebhookDelivery
from tests.conftest import make_settings
from worker.api import MAX_WEBHOOK_BYTES, carry_body, create_app
from worker.client import PaymenterClient

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "unit-api-token-4242"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@given(st.binary(max_size=2048))
def test_any_body_reaches_the_gateway_as_the_same_bytes(raw: bytes) -> None:
    carried = json.loads(json.dumps(carry_body(raw)))  # through the job's JSON
    assert WebhookDelivery.model_validate(carried).raw_body == raw


def test_utf8_stays_readable_text_and_windows_1252_travels_as_base64() -> None:
    assert carry_body("Zoë €".encode()) == {"body": "Zoë €"}
    assert carry_body(b"id=tr_1") == {"body": "id=tr_1"}
    cp1252 = "Jérôme €".encode("cp1252")
    assert carry_body(cp1252) == {"body": "", "body_base64": base64.b64encode(cp1252).decode()}


@pytest.fixture
def broker() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def api(broker: fakeredis.FakeRedis, token: str | None = TOKEN) -> TestClient:
    client = PaymenterClient("redis://127.0.0.1:1/0")
    client.broker = client.backend = broker
    return TestClient(create_app(make_settings(), token=token, client=client))


def queued(broker: fakeredis.FakeRedis, queue: str) -> list[dict[str, Any]]:
    messages = []
    for raw in broker.lrange(queue, 0, -1):
        envelope = json.loads(raw)
        messages.append({"headers": envelope["headers"], "body": json.loads(base64.b64decode(envelope["body"]))})
    return messages


def test_webhook_is_enqueued_raw_without_auth_and_oversized_bodies_are_refused(broker: fakeredis.FakeRedis) -> None:
    http = api(broker)
    body = b"id=tr_WDqYK6vllg"
    answer = http.post("/webhooks/mollie/main?x=1", content=body, headers={"Stripe-Signature": "t=1,v1=abc"})
    assert answer.status_code == 200
    (message,) = queued(broker, "gateways")
    assert message["headers"]["task"] == "gateways.mollie.webhook"
    assert message["headers"]["id"] == answer.json()["id"]
    _args, kwargs, _embed = message["body"]
    assert kwargs["connection"] == "main"
    assert kwargs["webhook"]["body"] == "id=tr_WDqYK6vllg"
    assert kwargs["webhook"]["headers"]["stripe-signature"] == "t=1,v1=abc"
    assert kwargs["webhook"]["query"] == {"x": "1"}

    assert http.post("/webhooks/mollie/main", content=b"a" * (MAX_WEBHOOK_BYTES + 1)).status_code == 413
    assert http.post("/webhooks/mollie/main", content=b"a" * MAX_WEBHOOK_BYTES).status_code == 200
    assert http.post("/webhooks/pterodactyl/main", content=b"{}").status_code == 404  # a server, not a gateway
    assert broker.llen("gateways") == 2


def test_bearer_token_is_compared_whole(broker: fakeredis.FakeRedis) -> None:
    http = api(broker)
    for header in ("", "Bearer", f"Bearer {TOKEN[:-1]}", f"Bearer x{TOKEN}", f"bearer {TOKEN}x", f"Token {TOKEN}"):
        headers = {"Authorization": header} if header else {}
        assert http.get("/api/v1/dead-letters", headers=headers).status_code == 401, header
    assert http.get("/api/v1/dead-letters", headers=AUTH).status_code == 200
    assert api(broker, token=None).get("/api/v1/dead-letters").status_code == 200  # --insecure-local


def test_job_states_from_the_backend_record(broker: fakeredis.FakeRedis) -> None:
    http = api(broker)
    envelope = {"status": "succeeded", "operation": "extensions.list", "data": {}, "replayed": False, "attempts": 1}
    error = {"code": "not_found", "message": "gone", "retryable": False, "provider_status": 404}
    failure = {"exc_type": "JobFailed", "exc_module": "worker.errors", "exc_message": [error]}
    broker.set("celery-task-meta-ok", json.dumps({"status": "SUCCESS", "result": envelope}))
    broker.set("celery-task-meta-ko", json.dumps({"status": "FAILURE", "result": failure}))
    broker.set("celery-task-meta-re", json.dumps({"status": "RETRY", "result": {"exc_type": "Reschedule"}}))
    assert http.get("/api/v1/jobs/ok", headers=AUTH).json() == {"id": "ok", "state": "SUCCESS", "result": envelope}
    assert http.get("/api/v1/jobs/ko", headers=AUTH).json() == {"id": "ko", "state": "FAILURE", "error": error}
    assert http.get("/api/v1/jobs/re", headers=AUTH).json() == {"id": "re", "state": "RETRY"}
    assert http.get("/api/v1/jobs/none", headers=AUTH).json() == {"id": "none", "state": "PENDING"}


def test_jobs_route_by_category_and_keys_make_stable_ids(broker: fakeredis.FakeRedis) -> None:
    http = api(broker)
    job = {"task": "servers.pterodactyl.create", "kwargs": {"connection": "p", "service": {}}, "idempotency_key": "k"}
    first = http.post("/api/v1/jobs", json=job, headers=AUTH).json()
    assert http.post("/api/v1/jobs", json=job, headers=AUTH).json() == first
    http.post("/api/v1/jobs", json={"task": "extensions.list"}, headers=AUTH)
    (servers, _again) = queued(broker, "servers")
    assert servers["body"][1] == {"connection": "p", "service": {}, "idempotency_key": "k"}
    assert queued(broker, "celery")[0]["headers"]["task"] == "extensions.list"


def test_the_api_imports_no_celery() -> None:
    code = (
        "import sys; from tests.conftest import make_settings; from worker.api import create_app;"
        "create_app(make_settings(), token='t');"
        "print(sorted(m for m in sys.modules if m == 'celery' or m.startswith('celery.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
