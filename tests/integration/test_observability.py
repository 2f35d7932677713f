"""What ops watch: the worker's Prometheus metrics, the API's request metrics, and JSON logs without secrets."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.pterodactyl import FakePterodactyl
from tests.integration.conftest import API_TOKEN, PANEL_KEY, RESULT_KEY, service_payload
from worker.client import JobError, PaymenterClient
from worker.embedded import free_port

pytestmark = pytest.mark.integration
CHECKOUT_PASSWORD = "Checkout-Secret-9090"


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics page, keyed by (name, labels)."""
    text = httpx.get(url, timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_worker_metrics_count_jobs_by_task_and_outcome(
    redis_url: str, start_worker: Any, fake_panel: FakePterodactyl
) -> None:
    port = free_port()
    start_worker(PAYMENTER_METRICS_PORT=str(port))
    client = PaymenterClient(redis_url)
    create = "servers.pterodactyl.create"
    service = service_payload(801)
    client.wait(client.create_server("pterodactyl", connection="panel", service=service, idempotency_key="o-801"))
    replay = client.enqueue(create, {"connection": "panel", "service": service}, idempotency_key="o-801")
    fake_panel.fail_next(502, match="GET /api/application/servers/external/")
    assert (
        client.wait(client.create_server("pterodactyl", connection="panel", service=service_payload(802)))["attempts"]
        == 2
    )
    with pytest.raises(JobError):
        client.wait(client.suspend_server("pterodactyl", connection="panel", service=service_payload(803)))
    client.wait(client.enqueue("extensions.list"))

    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 20
    while sample(scrape(url), "paymenter_jobs_total", task=create, outcome="replayed", code="") < 1:
        assert time.monotonic() < deadline, f"the replay of {replay.id} was never counted"
        time.sleep(0.1)
    samples = scrape(url)
    assert sample(samples, "paymenter_jobs_total", task=create, outcome="succeeded", code="") == 2
    assert sample(samples, "paymenter_jobs_total", task=create, outcome="replayed", code="") == 1
    suspend = "servers.pterodactyl.suspend"
    assert sample(samples, "paymenter_jobs_total", task=suspend, outcome="failed", code="not_found") == 1
    assert sample(samples, "paymenter_jobs_total", task="extensions.list", outcome="succeeded", code="") == 1
    assert sample(samples, "paymenter_job_retries_total", task=create) == 1
    assert sample(samples, "paymenter_dead_letters_total", code="not_found") == 1
    assert sample(samples, "paymenter_job_duration_seconds_count", task=create, outcome="succeeded") == 2
    assert sample(samples, "paymenter_job_duration_seconds_count", task=create, outcome="retry") == 1
    assert sample(samples, "paymenter_job_duration_seconds_sum", task=create, outcome="succeeded") > 0


def test_api_request_metrics_by_route_template(start_api: Any) -> None:
    api = start_api()
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    for job_id in ("a-1", "b-2", "c-3"):
        httpx.get(f"{api.base_url}/api/v1/jobs/{job_id}", headers=auth, timeout=5)
    httpx.get(f"{api.base_url}/api/v1/dead-letters", timeout=5)
    samples = scrape(f"{api.base_url}/metrics")
    route = "/api/v1/jobs/{job_id}"
    assert sample(samples, "paymenter_api_requests_total", method="GET", route=route, status="200") == 3
    assert (
        sample(samples, "paymenter_api_requests_total", method="GET", route="/api/v1/dead-letters", status="401") == 1
    )
    assert sample(samples, "paymenter_api_request_duration_seconds_count", method="GET", route=route) == 3
    assert not any("a-1" in str(labels) for _name, labels in samples)  # ids never become labels


def test_worker_logs_are_json_lines_with_the_job_identity_and_no_secret(
    redis_url: str, start_worker: Any, fake_panel: FakePterodactyl
) -> None:
    worker = start_worker()
    client = PaymenterClient(redis_url, result_key=RESULT_KEY)
    keyed = client.create_server(
        "pterodactyl",
        connection="panel",
        service=service_payload(811, password=CHECKOUT_PASSWORD),
        idempotency_key="order-811",
    )
    envelope = client.wait(keyed)
    derived = client.create_server("pterodactyl", connection="panel", service=service_payload(812))
    client.wait(derived)
    failed = client.suspend_server("pterodactyl", connection="panel", service=service_payload(813))
    with pytest.raises(JobError):
        client.wait(failed)
    time.sleep(0.5)  # the success line is written after the result is stored

    lines = worker.log_path.read_text().splitlines()
    parsed = [json.loads(line) for line in lines if line.strip()]  # every line is one JSON object
    assert all({"ts", "level", "logger", "message"} <= set(entry) for entry in parsed)

    def job_lines(task_id: str) -> list[dict[str, Any]]:
        return [e for e in parsed if e.get("task_id") == task_id]

    (done,) = [e for e in job_lines(keyed.id) if " succeeded in " in e["message"]]
    assert done["idempotency_key"] == "order-811"
    assert done["extension"] == "servers.pterodactyl"
    assert done["connection"] == "panel"
    (derived_done,) = [e for e in job_lines(derived.id) if " succeeded in " in e["message"]]
    assert derived_done["idempotency_key"] == "servers.pterodactyl.create:panel:812"  # the key the runtime derived
    failure = [e for e in job_lines(failed.id) if e["level"] == "warning"]
    assert failure
    assert "not_found" in failure[0]["message"]
    assert failure[0]["connection"] == "panel"

    text = "\n".join(lines)
    generated = list((envelope.get("secrets") or {}).values())
    for secret in (PANEL_KEY, CHECKOUT_PASSWORD, RESULT_KEY, *generated):
        assert secret not in text


def test_text_logs_on_request(redis_url: str, start_worker: Any) -> None:
    worker = start_worker(PAYMENTER_LOG_FORMAT="text")
    PaymenterClient(redis_url).wait(PaymenterClient(redis_url).enqueue("extensions.list"))
    text = worker.log_path.read_text()
    assert "ready." in text
    assert not any(line.startswith("{") for line in text.splitlines())
