"""Prometheus metrics of the worker (jobs) and of the HTTP API (requests), in separate registries.

The worker serves ``REGISTRY`` on ``PAYMENTER_METRICS_PORT`` (threads pool: one process, so plain
in-process counters); the API serves ``API_REGISTRY`` on its own ``/metrics``. Labels are bounded:
task names come from the registry (unknown names count as ``unknown``), error codes from the closed list.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import REGISTRY

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

JOBS = Counter(
    "paymenter_jobs",
    "Jobs that ended, by task and outcome (succeeded, replayed, failed); failures by error code",
    ["task", "outcome", "code"],
)
JOB_DURATION = Histogram(
    "paymenter_job_duration_seconds",
    "Wall time of one execution of a job, by task and outcome (including rescheduled runs)",
    ["task", "outcome"],
    buckets=DURATION_BUCKETS,
)
RETRIES = Counter("paymenter_job_retries", "Failed attempts re-scheduled for a retry", ["task"])
RESCHEDULES = Counter(
    "paymenter_job_reschedules",
    "Runs re-scheduled without a failure: a provider job still pending (poll) or a lease held (busy)",
    ["task", "kind"],
)
DEAD_LETTERS = Counter("paymenter_dead_letters", "Dead letters written, by error code", ["code"])
DEAD_LETTER_REPLAYS = Counter("paymenter_dead_letter_replays", "Dead letters published again", ["task"])

API_REGISTRY = CollectorRegistry()
API_REQUESTS = Counter(
    "paymenter_api_requests",
    "HTTP requests served by the API, by method, route template and status",
    ["method", "route", "status"],
    registry=API_REGISTRY,
)
API_DURATION = Histogram(
    "paymenter_api_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    registry=API_REGISTRY,
)
WEBHOOKS = Counter(
    "paymenter_webhooks_received",
    "Webhooks accepted and enqueued, by gateway",
    ["gateway"],
    registry=API_REGISTRY,
)


def record_outcome(task: str, outcome: str, seconds: float, code: str = "") -> None:
    """One execution ended: ``outcome`` is succeeded, replayed, failed, retry, poll or busy."""
    JOB_DURATION.labels(task, outcome).observe(seconds)
    if outcome in ("succeeded", "replayed", "failed"):
        JOBS.labels(task, outcome, code).inc()
    elif outcome == "retry":
        RETRIES.labels(task).inc()
    else:
        RESCHEDULES.labels(task, outcome).inc()


def serve_worker_metrics(port: int, host: str) -> None:
    """Expose ``REGISTRY`` over HTTP (unauthenticated, like Flower's: bind to a private interface)."""
    start_http_server(port, addr=host, registry=REGISTRY)
