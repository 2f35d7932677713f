"""The HTTP intake and operations API: extensions, jobs, dead letters, provider webhooks, health, metrics.

It imports no Celery and holds no provider secret: jobs and webhooks become protocol-2 messages through
the producer client, states are read from the result backend, and the worker does every verification.
Everything but webhooks, health and metrics needs ``Authorization: Bearer <PAYMENTER_API_TOKEN>``.

Webhook bodies travel as the gateways' ``WebhookDelivery`` reads them: ``body`` holds the raw bytes as
text when they are valid UTF-8 (JSON providers, form posts); any other body travels as ``body_base64``
(with ``body`` empty), so ``WebhookDelivery.raw_body`` gives back the exact bytes either way.
"""

from __future__ import annotations

import base64
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import redis
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from kombu.exceptions import KombuError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.api_models import (
    ConfigField,
    DeadLetter,
    ErrorBody,
    ExtensionListing,
    ExtensionMetadata,
    Health,
    JobAccepted,
    JobRequest,
    JobStatus,
    Readiness,
    ReplayOutcome,
    WebhookAccepted,
)
from worker.client import TERMINAL, Job, PaymenterClient, error_from_meta
from worker.deadletters import DeadLetters, ReplayError, replay
from worker.events import utcnow_iso
from worker.metrics import API_DURATION, API_REGISTRY, API_REQUESTS, WEBHOOKS
from worker.sealing import Sealer
from worker.settings import Settings

log = logging.getLogger("paymenter.api")

# The gateways' webhook model takes 1,000,000 characters of text (or their base64); a byte is at most one.
MAX_WEBHOOK_BYTES = 1_000_000
SLUG = r"^[a-z0-9_]{1,50}$"
# Task ids, profile names: no leading dot, so a value can never be a "." or ".." path segment.
NAME = r"^[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,199}$"
CATEGORIES = ("servers", "gateways", "others")
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
QUIET_ROUTES = {"/healthz", "/readyz", "/metrics"}

T = TypeVar("T")
BEARER = HTTPBearer(auto_error=False, description="PAYMENTER_API_TOKEN")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=dict(headers or {}))


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


@dataclass(frozen=True)
class Catalog:
    """What the worker serves, from the registry (no Celery): task names, webhook gateways, extensions."""

    tasks: frozenset[str]
    webhook_gateways: frozenset[str]
    extensions: dict[str, list[str]]

    @classmethod
    def load(cls) -> Catalog:
        from extensions.registry import list_extensions
        from worker.operations import META_TASKS, operation_specs

        specs = operation_specs()
        gateways = {s.extension.slug for s in specs if s.extension.category == "gateways" and s.operation == "webhook"}
        return cls(frozenset({s.name for s in specs} | set(META_TASKS)), frozenset(gateways), list_extensions())

    def extension(self, category: str, name: str | None = None) -> None:
        """Raise a 404 naming what exists unless ``category`` (and ``name``) are served."""
        if category not in self.extensions:
            raise ApiError(
                404, "not_found", f"unknown extension category '{category}' (known: {', '.join(CATEGORIES)})"
            )
        names = self.extensions[category]
        if name is not None and name not in names:
            known = ", ".join(names) or "none"
            raise ApiError(404, "not_found", f"no {category} extension '{name}' is implemented (known: {known})")


def carry_body(raw: bytes) -> dict[str, str]:
    """The raw body as the job's JSON carries it: UTF-8 text, or base64 for anything else."""
    try:
        return {"body": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body": "", "body_base64": base64.b64encode(raw).decode()}


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"webhook bodies are limited to {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "payload_too_large", f"webhook bodies are limited to {limit} bytes")
    return bytes(body)


def _headers(request: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():  # repeated headers join as HTTP says they may
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _query(request: Request) -> dict[str, str | list[str]]:
    query: dict[str, str | list[str]] = {}
    for name, value in request.query_params.multi_items():
        current = query.get(name)
        if current is None:
            query[name] = value
        else:
            query[name] = [*current, value] if isinstance(current, list) else [current, value]
    return query


class ObserveRequests:
    """Request metrics by route template, and one access line per request without path values or query."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            API_REQUESTS.labels(method, route, str(status)).inc()
            API_DURATION.labels(method, route).observe(elapsed)
            level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
            extra = {"method": method, "route": route, "status": status, "duration_ms": round(elapsed * 1000, 2)}
            log.log(level, "%s %s %s", method, route, status, extra=extra)


def _bearer(token: str | None) -> Callable[..., None]:
    expected = token.encode() if token else None

    def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
        if expected is None:  # --insecure-local without a token: loopback only
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise ApiError(
                401,
                "unauthorized",
                "a valid bearer token is required (Authorization: Bearer <PAYMENTER_API_TOKEN>)",
                {"WWW-Authenticate": "Bearer"},
            )

    return require_token


class Backend:
    """The API's side effects: enqueueing, reading job states, dead letters, reachability."""

    def __init__(self, settings: Settings, client: PaymenterClient) -> None:
        self.client = client
        sealer = Sealer(settings.result_key.get_secret_value() if settings.result_key else None)
        self.dead_letters = DeadLetters(client.backend, sealer, settings.dead_letter_ttl)

    @staticmethod
    def guard(action: Callable[[], T]) -> T:
        """Run a broker or backend call; a connection failure is a 503 the caller may retry."""
        try:
            return action()
        except (redis.RedisError, KombuError, OSError) as exc:
            raise ApiError(503, "unavailable", f"broker or result backend unreachable ({type(exc).__name__})") from None

    def enqueue(self, task: str, kwargs: dict[str, Any], key: str | None = None) -> Job:
        return self.guard(lambda: self.client.enqueue(task, kwargs, idempotency_key=key))

    def status(self, job_id: str) -> JobStatus:
        meta = self.guard(lambda: self.client.state(job_id))
        state = str(meta.get("status") or "PENDING") if meta else "PENDING"
        if state == "SUCCESS" and meta is not None:
            return JobStatus(id=job_id, state=state, result=meta.get("result"))
        if state in TERMINAL and meta is not None:
            failure = error_from_meta(meta)
            error = {
                "code": failure.code,
                "message": failure.message,
                "retryable": failure.retryable,
                "provider_status": failure.provider_status,
            }
            return JobStatus.model_validate({"id": job_id, "state": state, "error": error})
        return JobStatus(id=job_id, state=state)

    def readiness(self) -> Readiness:
        broker = _reachable(self.client.ping_broker)
        backend = _reachable(self.client.backend.ping)
        return Readiness(status="ready" if broker and backend else "unavailable", broker=broker, backend=backend)


def _reachable(check: Callable[[], object]) -> bool:
    try:
        check()
    except Exception:  # any failure to answer is "not ready"
        return False
    return True


def _admin_routes(catalog: Catalog) -> APIRouter:
    router = APIRouter(prefix="/api/v1/admin/extensions", tags=["extensions"])
    category_path = Path(pattern=r"^[a-z_]{1,30}$", examples=["servers"])
    name_path = Path(pattern=SLUG, examples=["pterodactyl"])

    @router.get("", response_model=ExtensionListing)
    def list_all() -> dict[str, list[str]]:
        """The implemented extensions by category (what the ``extensions.list`` task returns)."""
        return catalog.extensions

    @router.get("/{category}", response_model=list[str], responses=_responses(404))
    def list_category(category: str = category_path) -> list[str]:
        catalog.extension(category)
        return catalog.extensions[category]

    @router.get("/{category}/{name}/metadata", response_model=ExtensionMetadata, responses=_responses(404))
    def metadata(category: str = category_path, name: str = name_path) -> dict[str, str]:
        from extensions.registry import extension_class

        catalog.extension(category, name)
        return extension_class(category, name).get_metadata()

    @router.get("/{category}/{name}/config", response_model=list[ConfigField], responses=_responses(404))
    def config(category: str = category_path, name: str = name_path) -> list[dict[str, Any]]:
        """The bare array of config fields (name, type, label, description, required, default, options)."""
        from extensions.registry import extension_class

        catalog.extension(category, name)
        return extension_class(category, name).get_config()

    return router


def _job_routes(catalog: Catalog, backend: Backend) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.post(
        "/jobs", status_code=202, response_model=JobAccepted, responses=_responses(400, 404, 503), tags=["jobs"]
    )
    def enqueue(job: JobRequest) -> JobAccepted:
        """Enqueue a job by task name; follow it with ``GET /api/v1/jobs/{id}``."""
        if job.task not in catalog.tasks:
            raise ApiError(404, "not_found", f"unknown task '{job.task}' (see GET /api/v1/admin/extensions)")
        enqueued = backend.enqueue(job.task, job.kwargs, job.idempotency_key)
        return JobAccepted(id=enqueued.id, task=enqueued.task)

    @router.get(
        "/jobs/{job_id}",
        response_model=JobStatus,
        response_model_exclude_none=True,
        responses=_responses(503),
        tags=["jobs"],
    )
    def job_status(job_id: str = Path(pattern=NAME)) -> JobStatus:
        """A job's state; ``result`` on SUCCESS, the contract's ``error`` on FAILURE (unknown ids are PENDING)."""
        return backend.status(job_id)

    @router.get("/dead-letters", response_model=list[DeadLetter], responses=_responses(503), tags=["dead letters"])
    def dead_letters(limit: int = Query(100, ge=1, le=1000)) -> list[DeadLetter]:
        records = backend.guard(lambda: backend.dead_letters.public(limit))
        fields = DeadLetter.model_fields
        return [DeadLetter.model_validate({k: v for k, v in r.items() if k in fields}) for r in records]

    @router.post(
        "/dead-letters/{dead_id}/replay",
        response_model=ReplayOutcome,
        responses=_responses(404, 409, 503),
        tags=["dead letters"],
    )
    def replay_dead_letter(dead_id: str = Path(pattern=NAME)) -> ReplayOutcome:
        """Publish the job again (the original kwargs when they were sealed) and remove the dead letter."""
        try:
            job = backend.guard(lambda: replay(backend.dead_letters, backend.client, dead_id))
        except ReplayError as exc:
            raise ApiError(404 if exc.reason == "not_found" else 409, exc.reason, exc.message) from None
        return ReplayOutcome(replayed=dead_id, id=job.id, task=job.task)

    return router


WEBHOOK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "description": "The provider's raw body, kept byte for byte (any content type)",
        "content": {
            "application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": True}},
            "application/json": {"schema": {}},
        },
    }
}


def _public_routes(catalog: Catalog, backend: Backend) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/webhooks/{slug}/{connection}",
        response_model=WebhookAccepted,
        responses=_responses(404, 413, 503),
        openapi_extra=WEBHOOK_BODY,
        tags=["webhooks"],
    )
    async def webhook(
        request: Request,
        slug: str = Path(pattern=SLUG, examples=["mollie"]),
        connection: str = Path(pattern=NAME, examples=["default"]),
    ) -> WebhookAccepted:
        """Receive a provider webhook: kept raw and enqueued as ``gateways.<slug>.webhook``; verified by the worker."""
        received_at = utcnow_iso()
        if slug not in catalog.webhook_gateways:
            known = ", ".join(sorted(catalog.webhook_gateways)) or "none"
            raise ApiError(404, "not_found", f"no gateway '{slug}' receives webhooks here (known: {known})")
        webhook = {
            **carry_body(await read_limited(request, MAX_WEBHOOK_BYTES)),
            "headers": _headers(request),
            "query": _query(request),
            "received_at": received_at,
        }
        task = f"gateways.{slug}.webhook"
        job = await run_in_threadpool(backend.enqueue, task, {"connection": connection, "webhook": webhook})
        WEBHOOKS.labels(slug).inc()
        return WebhookAccepted(id=job.id, task=task, received_at=received_at)

    @router.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}}, tags=["health"])
    def readyz() -> Any:
        """The broker and the result backend answer (503 otherwise)."""
        readiness = backend.readiness()
        return readiness if readiness.status == "ready" else JSONResponse(readiness.model_dump(), 503)

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(API_REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router


def create_app(settings: Settings, *, token: str | None, client: PaymenterClient | None = None) -> FastAPI:
    """The API for ``settings``; ``token`` None means no authentication (only ever bound to loopback)."""
    if client is None:
        if not settings.broker_url:
            raise RuntimeError("PAYMENTER_BROKER_URL is not set")
        client = PaymenterClient(settings.broker_url, settings.result_backend, socket_timeout=5.0)
    catalog = Catalog.load()
    backend = Backend(settings, client)
    app = FastAPI(
        title="paymenter-worker",
        version="1",
        description="Jobs, dead letters and extension listings of the Paymenter worker; provider webhook intake.",
        redoc_url=None,
    )
    auth = [Depends(_bearer(token))]
    unauthorized = _responses(401)
    app.include_router(_admin_routes(catalog), dependencies=auth, responses=unauthorized)
    app.include_router(_job_routes(catalog, backend), dependencies=auth, responses=unauthorized)
    app.include_router(_public_routes(catalog, backend))

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "http_error"
        return _error(exc.status_code, code, str(exc.detail), exc.headers)

    app.add_middleware(ObserveRequests)
    return app
