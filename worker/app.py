"""The Celery app: JSON only, late acks with short leases, queues per category, tasks by name."""

from __future__ import annotations

import logging

from celery import Celery
from kombu import Exchange, Queue  # type: ignore[attr-defined]

from worker.settings import Settings
from worker.transport import install as install_transport

QUEUES = ("celery", "servers", "gateways", "others")


def quiet_http_logs() -> None:
    """httpx logs every URL at INFO, query string included (e-mails, some providers' keys): keep it down."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def make_celery(settings: Settings) -> Celery:
    quiet_http_logs()
    install_transport()
    if not settings.broker_url:
        raise RuntimeError("PAYMENTER_BROKER_URL is not set (the CLI starts an embedded Redis when it is unset)")
    vt = settings.visibility_timeout
    transport_options = {
        "visibility_timeout": vt,
        # Sweep for a dead worker's unacked jobs every 2 s instead of kombu's ~100 s default.
        "unacked_restore_interval": 2,
        "unacked_restore_throttle": 1,
    }
    app = Celery("paymenter", broker=settings.broker_url, backend=settings.backend_url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        event_serializer="json",
        task_protocol=2,
        task_acks_late=True,
        task_acks_on_failure_or_timeout=True,
        task_reject_on_worker_lost=True,
        task_track_started=True,
        task_send_sent_event=False,
        worker_send_task_events=True,
        worker_prefetch_multiplier=1,
        worker_deduplicate_successful_tasks=False,
        worker_hijack_root_logger=False,
        worker_consumer="worker.consumer:Consumer",
        broker_transport_options=transport_options,
        result_backend_transport_options={"visibility_timeout": vt},
        visibility_timeout=vt,
        broker_connection_retry_on_startup=True,
        result_expires=settings.result_ttl,
        result_extended=False,
        task_default_queue="celery",
        task_queues=[Queue(name, Exchange(name), routing_key=name) for name in QUEUES],  # type: ignore[no-untyped-call]
        task_routes={
            "servers.*": {"queue": "servers"},
            "gateways.*": {"queue": "gateways"},
            "others.*": {"queue": "others"},
        },
        # On a lost broker connection, running late-ack jobs are cancelled and redelivered (they are
        # idempotent); the future default, set now so the behaviour is chosen, not inherited.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_soft_shutdown_timeout=30,
        worker_enable_soft_shutdown_on_idle=True,
    )
    return app
