"""One job, start to end: deliveries, payload, connection, ledger, the call, result, events, failure.

This module knows nothing of Celery: ``Runtime.execute`` returns the result envelope, raises
``Reschedule`` (the task layer re-publishes) or raises ``JobFailed`` after writing the dead letter and
the ``job.failed`` event.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import ValidationError

from extensions.base import Extension, OperationResult, validation_message
from extensions.errors import (
    Conflict,
    ExtensionError,
    IdempotencyKeyReused,
    InvalidConfig,
    InvalidPayload,
    Pending,
    ProviderRejected,
    ProviderUnavailable,
    UnknownConnection,
)
from extensions.redaction import Redactor, sensitive_values
from worker import keys
from worker.deadletters import DeadLetters
from worker.errors import JobFailed, Replay, Reschedule
from worker.events import EventStream, build_event
from worker.ledger import Claim, Ledger
from worker.logs import set_idempotency_key
from worker.mutex import Mutexes
from worker.operations import JobPayload, OperationSpec, RequestPayload
from worker.profiles import Profiles
from worker.sealing import Sealer
from worker.settings import Settings

log = logging.getLogger("paymenter.job")

# The worker's own Redis is unreachable: not a verdict on the job, which must run again once it is back.
INFRASTRUCTURE_ERRORS = (redis.ConnectionError, redis.TimeoutError)

# How far a payment status has moved; a transaction never moves back.
# How long a job waiting for another's ``exclusive`` section sleeps between looks.
MUTEX_WAIT_S = 1.0
PAYMENT_RANK = {"payment.processing": 1, "payment.failed": 1, "payment.succeeded": 2, "payment.refunded": 3}

# Token bucket per connection. KEYS: bucket. ARGV: rate per second. Returns 0 (go) or ms to wait.
_TOKEN = """
local rate = tonumber(ARGV[1])
local capacity = math.max(1, rate)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local tokens = tonumber(redis.call('HGET', KEYS[1], 't') or capacity)
local stamp = tonumber(redis.call('HGET', KEYS[1], 'ts') or now)
tokens = math.min(capacity, tokens + (now - stamp) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return wait
"""

# Concurrency slots per connection. KEYS: slots. ARGV: cap, owner, expiry ms. Returns 0 (go) or ms to wait.
_SLOT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 0
end
return 500
"""

# KEYS: transaction. ARGV: rank, status, ttl. Returns new | stale | duplicate.
_TRANSITION = """
local rank = redis.call('HGET', KEYS[1], 'rank')
if rank and tonumber(rank) > tonumber(ARGV[1]) then return 'stale' end
if ARGV[2] ~= 'payment.refunded' and redis.call('HGET', KEYS[1], 'status') == ARGV[2] then return 'duplicate' end
redis.call('HSET', KEYS[1], 'rank', ARGV[1], 'status', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 'new'
"""


@dataclass(frozen=True)
class Delivery:
    """What the task layer knows of the message being run."""

    task_id: str
    retries: int = 0
    # The broker's tag of this very message: kept when a lost worker's message is restored, new for every
    # publish (a duplicate enqueue under the same task id is another message, not a redelivery).
    delivery_tag: str | None = None


class Job:
    """The state of one execution, so the steps below stay small."""

    def __init__(self, spec: OperationSpec, kwargs: dict[str, Any], delivery: Delivery, redactor: Redactor):
        self.spec = spec
        self.kwargs = kwargs
        self.delivery = delivery
        self.redactor = redactor
        self.key: str | None = kwargs.get("idempotency_key") if isinstance(kwargs.get("idempotency_key"), str) else None
        self.key_derived = False
        self.connection = str(kwargs.get("connection") or "inline")
        self.attempts = 1
        self.claims: list[tuple[str, str]] = []
        self.sections: set[str] = set()  # mutexes this job holds, from this run or an earlier one
        self.request: Any = None
        self.source = f"{spec.extension.category}.{spec.extension.slug}"

    @property
    def checkpoint_key(self) -> str:
        """What the job's checkpoints and sections are kept under: its idempotency key, else its task id."""
        return self.key or f"task:{self.delivery.task_id}"


class Runtime:
    def __init__(self, settings: Settings, profiles: Profiles, client: redis.Redis) -> None:
        self.settings = settings
        self.profiles = profiles
        self.redis = client
        self.sealer = Sealer(settings.result_key.get_secret_value() if settings.result_key else None)
        self.ledger = Ledger(client, lease_ms=settings.lease_ms, ttl_s=settings.result_ttl)
        self.mutexes = Mutexes(client, settings.result_ttl)
        self.events = EventStream(client, settings.events_maxlen)
        self.dead_letters = DeadLetters(client, self.sealer, settings.dead_letter_ttl)
        self.base_redactor = Redactor(profiles.secret_values())
        self._instances: dict[str, Extension] = {}
        self._lock = threading.Lock()
        self._transition = client.register_script(_TRANSITION)
        self._token = client.register_script(_TOKEN)
        self._slot = client.register_script(_SLOT)
        self.unsealed_checkpoints: dict[tuple[str, str], str] = {}

    def bind(self, connection: str, extension: Extension) -> None:
        """Serve ``connection`` with a ready instance (embedding the runtime, or a test transport)."""
        with self._lock:
            self._instances[connection] = extension
        self.base_redactor.add(*extension.config.secret_values())

    # --- entry point ---------------------------------------------------------------------------
    def execute(self, spec: OperationSpec, args: Any, kwargs: Any, delivery: Delivery) -> dict[str, Any]:
        kwargs = kwargs if isinstance(kwargs, dict) else {}
        redactor = Redactor()
        redactor.extend(self.base_redactor)
        redactor.add(*sensitive_values(kwargs))
        job = Job(spec, kwargs, delivery, redactor)
        try:
            if args:
                raise InvalidPayload("positional arguments are not accepted; send keyword arguments only")
            size = len(json.dumps(kwargs, default=str))
            if size > self.settings.max_payload_bytes:
                raise InvalidPayload(f"payload of {size} bytes is over the {self.settings.max_payload_bytes} allowed")
            payload = self._parse(job)
            extension = self._extension(job, payload)
            return self._run(job, payload, extension)
        except Reschedule as reschedule:
            self._keep_sections(job, reschedule.countdown)
            raise
        except JobFailed:
            raise
        except INFRASTRUCTURE_ERRORS:
            raise  # Redis itself is away: the task layer hands the message back instead of failing it
        except ExtensionError as exc:
            raise self.fail(job, exc) from None
        except Exception as exc:  # a defect in an integration must still end as a clear, safe failure
            log.error("unexpected %s in %s: %s", type(exc).__name__, spec.name, redactor.text(str(exc)))
            raise self.fail(job, ProviderRejected(f"internal error in {spec.name}: {type(exc).__name__}")) from None

    # --- steps ---------------------------------------------------------------------------------
    def _start(self, job: Job) -> Claim | None:
        """Count this delivery, read the job's failed attempts so far and claim its key, in one round trip.

        A message delivered more than ``max_deliveries`` times (its worker lost every time) fails here,
        for good, before the operation runs again."""
        counter = keys.deliveries(job.delivery.delivery_tag or job.delivery.task_id, job.delivery.retries)
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(counter)
        pipe.expire(counter, self.settings.result_ttl)
        pipe.get(keys.errors(job.delivery.task_id))
        owner = self.ledger.queue_claim(pipe, job.key, _fingerprint(job.kwargs)) if job.key is not None else ""
        deliveries, _, errors, *answer = pipe.execute()
        job.attempts = int(errors or 0) + 1
        claim = self.ledger.read_claim(job.key, owner, answer[0]) if job.key is not None else None
        if int(deliveries) > self.settings.max_deliveries:
            if claim is not None and claim.outcome == "claimed":
                self.ledger.release(str(job.key), claim.owner)
            raise ProviderUnavailable(
                f"delivered {int(deliveries) - 1} times without finishing (the worker was lost each time); "
                "not run again"
            )
        return claim

    def _parse(self, job: Job) -> Any:
        try:
            payload = job.spec.payload.model_validate(job.kwargs)
        except ValidationError as exc:
            raise InvalidPayload(validation_message(exc, f"{job.spec.name} payload")) from None
        if payload.connection is None and payload.config is None:
            raise InvalidPayload(f"{job.spec.name} payload: connection: Field required")
        model = job.spec.extension.payload_model(job.spec.operation)
        if isinstance(payload, RequestPayload) and model is not None:
            request = {k: v for k, v in job.kwargs.items() if k not in JobPayload.model_fields}
            try:
                job.request = model.model_validate(request)
            except ValidationError as exc:
                raise InvalidPayload(validation_message(exc, f"{job.spec.name} payload")) from None
        return payload

    def _extension(self, job: Job, payload: Any) -> Extension:
        cls = job.spec.extension
        if payload.config is not None:
            if not self.settings.allow_inline_config:
                raise InvalidPayload("inline config is disabled (PAYMENTER_ALLOW_INLINE_CONFIG); name a connection")
            job.redactor.add(*(str(v) for v in payload.config.values() if isinstance(v, str)))
            return cls(cls.parse_config(payload.config, "inline config"))
        name = payload.connection
        with self._lock:
            instance = self._instances.get(name)
            if instance is None or not isinstance(instance, cls):
                instance = cls(self.profiles.get(name, cls).config)
                self._instances[name] = instance
        return instance

    def _derive_key(self, job: Job, payload: Any) -> None:
        if job.key is None and job.spec.operation in job.spec.extension.keyed_operations:
            natural = getattr(getattr(payload, "service", None), "id", None)
            if natural is not None:
                job.key = f"{job.spec.name}:{job.connection}:{natural}"
                job.key_derived = True

    def claim(self, job: Job, key: str, fingerprint: str, *, derived: bool) -> None:
        """Claim ``key`` for this job; raise Replay, Reschedule or the key-reuse error when it cannot run."""
        self._settle(job, key, self.ledger.claim(key, fingerprint), derived=derived)

    def _settle(self, job: Job, key: str, claim: Claim, *, derived: bool) -> None:
        """Act on a claim of ``key``: run (holding it), replay, wait for the holder, or refuse the reuse."""
        set_idempotency_key(job.key or key)  # log lines carry the key the job settles on
        if claim.outcome == "replay":
            assert claim.result is not None
            raise Replay(claim.result)
        if claim.outcome == "mismatch":
            error = Conflict if derived else IdempotencyKeyReused
            raise error(f"idempotency key '{key}' was already used with a different payload")
        if claim.outcome == "busy":
            raise Reschedule(claim.retry_in_ms / 1000, "another delivery of this job holds its lease", "busy")
        job.claims.append((key, claim.owner))
        job.sections.update(claim.held)
        if job.key is None:
            job.key = key

    def _run(self, job: Job, payload: Any, extension: Extension) -> dict[str, Any]:
        self._derive_key(job, payload)
        claim = self._start(job)
        try:
            if claim is not None:
                self._settle(job, claim.key, claim, derived=job.key_derived)
            context = RuntimeContext(self, job, job.checkpoint_key)
            with self._admitted(job, payload):
                result = self._call(job, payload, extension, context)
        except Replay as replay:
            for key, owner in job.claims:  # an outer key that led to a replayed inner one succeeds alike
                self.ledger.succeed(key, owner, replay.result)
            return {**replay.result, "replayed": True}
        except Pending as pending:
            self._release(job)
            self._count_poll(job, pending)
            raise Reschedule(pending.delay, pending.reason, "poll") from None
        except ExtensionError as exc:
            self._release(job)
            if exc.retryable:
                raise self._retry(job, exc) from None
            raise
        except Exception:
            self._release(job)
            raise
        envelope = self._envelope(job, result)
        if result.events:
            envelope["data"]["events"] = self._publish_result_events(job, result)
        # One MULTI: the stored result, the service bookkeeping and the event land together or not at all, so
        # a worker lost here cannot leave a replayable result whose event was never published.
        pipe = self.redis.pipeline()
        for key, owner in job.claims:
            self.ledger.succeed(key, owner, envelope, pipe)
        self._after_success(job, payload, envelope, pipe)
        pipe.execute()
        self._leave_sections(job)
        return envelope

    def _keep_sections(self, job: Job, countdown: float) -> None:
        """A job re-scheduled inside a section keeps it at least until it runs again and could be lost there."""
        if job.sections:
            hold_ms = int((countdown + self.settings.visibility_timeout) * 1000)
            self.mutexes.extend(job.sections, job.checkpoint_key, hold_ms)

    def _leave_sections(self, job: Job) -> None:
        """The job has ended: leave the sections it holds, also those a killed earlier run entered."""
        self.mutexes.release(job.sections, job.checkpoint_key, keys.checkpoint(job.checkpoint_key))
        job.sections.clear()

    @contextmanager
    def _admitted(self, job: Job, payload: Any) -> Iterator[None]:
        """Hold the job back while its connection's opt-in rate limit or concurrency cap says so."""
        profile = self.profiles.get_any(job.connection) if payload.config is None else None
        limits = profile.limits if profile is not None else None
        if limits is not None and limits.rate_limit:
            wait = int(self._token(keys=[keys.bucket(job.connection)], args=[limits.rate_limit]))
            if wait:
                raise Reschedule(wait / 1000, f"connection {job.connection} is at its rate limit", "busy")
        slot = None
        if limits is not None and limits.max_concurrency:
            slot = uuid.uuid4().hex
            expiry = self.settings.visibility_timeout * 1000
            wait = int(self._slot(keys=[keys.slots(job.connection)], args=[limits.max_concurrency, slot, expiry]))
            if wait:
                raise Reschedule(wait / 1000, f"connection {job.connection} is at its concurrency cap", "busy")
        try:
            yield
        finally:
            if slot is not None:
                self.redis.zrem(keys.slots(job.connection), slot)

    def _call(self, job: Job, payload: Any, extension: Extension, context: RuntimeContext) -> OperationResult:
        method = extension.operation(job.spec.operation)
        service = getattr(payload, "service", None)
        if service is not None:
            return method(service, context)
        if job.request is not None:
            return method(job.request, context)
        return method()

    def _release(self, job: Job) -> None:
        for key, owner in job.claims:
            self.ledger.release(key, owner)
        job.claims.clear()

    def _retry(self, job: Job, exc: ExtensionError) -> Exception:
        counter = keys.errors(job.delivery.task_id)
        pipe = self.redis.pipeline()
        pipe.incr(counter)
        pipe.expire(counter, self.settings.result_ttl)
        errors = int(pipe.execute()[0])
        job.attempts = errors
        if errors > self.settings.max_retries:
            return self.fail(
                job, ProviderUnavailable(f"gave up after {errors} attempts: {exc.message}", exc.provider_status)
            )
        ceiling = min(self.settings.retry_backoff_max, self.settings.retry_backoff_base * 2 ** (errors - 1))
        countdown = max(random.uniform(ceiling / 2, ceiling), exc.retry_after or 0.0)
        log.info("%s attempt %s failed (%s); retrying in %.1fs", job.spec.name, errors, exc.code, countdown)
        return Reschedule(countdown, job.redactor.text(exc.message))

    def _count_poll(self, job: Job, pending: Pending) -> None:
        counter = keys.polls(job.delivery.task_id)
        pipe = self.redis.pipeline()
        pipe.incr(counter)
        pipe.expire(counter, self.settings.result_ttl)
        if int(pipe.execute()[0]) > self.settings.max_polls:
            raise ProviderUnavailable(f"still pending after {self.settings.max_polls} checks: {pending.reason}")

    def _envelope(self, job: Job, result: OperationResult) -> dict[str, Any]:
        data = job.redactor.data(dict(result.data))
        if result.properties:
            data["properties"] = {k: str(v) for k, v in result.properties.items()}
        cleared = set(result.cleared_properties)
        if job.spec.operation == "terminate":
            cleared.update(getattr(job.spec.extension, "resource_properties", ()))
        if cleared:
            data["properties_cleared"] = sorted(cleared)
        if result.secrets:
            sealed = {name: self.sealer.seal(value.get_secret_value()) for name, value in result.secrets.items()}
            if self.sealer.enabled:
                data["sealed"] = sealed
            else:
                data["sealed_omitted"] = sorted(result.secrets)
        return {
            "status": "succeeded",
            "operation": job.spec.name,
            "idempotency_key": job.key,
            "data": data,
            "replayed": False,
            "attempts": job.attempts,
        }

    def _after_success(self, job: Job, payload: Any, envelope: dict[str, Any], pipe: Any) -> None:
        """Queue on ``pipe`` the ledger bookkeeping of the service lifecycle and the operation's own event."""
        source = job.source
        service = getattr(payload, "service", None)
        if service is not None:
            marker = keys.service_create(source, job.connection, str(service.id))
            if job.spec.operation == "create" and job.key is not None:
                pipe.set(marker, job.key, ex=self.settings.result_ttl)
            elif job.spec.operation == "terminate":
                create_key: Any = self.redis.get(marker)
                self.ledger.forget(
                    create_key.decode() if create_key else f"{source}.create:{job.connection}:{service.id}", pipe
                )
                pipe.delete(marker)
        if job.spec.event is not None:
            data = {"connection": job.connection, "extension": source, **envelope["data"]}
            if service is not None:
                data["service_id"] = service.id
            self.events.publish(build_event(job.spec.event, source, job.key, data), pipe)

    def _publish_result_events(self, job: Job, result: OperationResult) -> list[dict[str, Any]]:
        """Publish what the operation reported; payment status changes only when they move forward.

        A late event that would move a transaction backwards (processing after succeeded) is marked
        ``stale`` and a repeat of the current status ``duplicate``; neither is published as news.
        """
        reported = []
        for event_type, event_data in result.events:
            event = build_event(event_type, job.source, job.key, job.redactor.data(event_data))
            verdict = self._payment_transition(job, event_type, event_data)
            if verdict == "new":
                self.events.publish(event)
            else:
                event[verdict] = True
            reported.append(event)
        return reported

    def _payment_transition(self, job: Job, event_type: str, data: dict[str, Any]) -> str:
        rank = PAYMENT_RANK.get(event_type)
        transaction = data.get("transaction_id")
        if rank is None or not transaction:
            return "new"
        key = keys.transaction(job.source, job.connection, str(transaction))
        verdict = self._transition(keys=[key], args=[rank, event_type, self.settings.result_ttl])
        return verdict.decode() if isinstance(verdict, bytes) else str(verdict)

    # --- failure -------------------------------------------------------------------------------
    def fail(self, job: Job, exc: ExtensionError) -> JobFailed:
        """Dead-letter the job, publish ``job.failed``, and return the exception the task raises."""
        self._leave_sections(job)
        error = exc.to_dict()
        error["message"] = job.redactor.text(error["message"])
        return self.fail_raw(
            task=job.spec.name,
            task_id=job.delivery.task_id,
            kwargs=job.kwargs,
            error=error,
            attempts=job.attempts,
            redactor=job.redactor,
            key=job.key,
        )

    def fail_raw(
        self,
        *,
        task: str | None,
        task_id: str | None,
        kwargs: Any,
        error: dict[str, Any],
        attempts: int,
        redactor: Redactor | None = None,
        key: str | None = None,
        raw: str | None = None,
    ) -> JobFailed:
        if redactor is None:
            redactor = Redactor()
            redactor.extend(self.base_redactor)
            redactor.add(*sensitive_values(kwargs))
        dead_id = self.dead_letters.record(
            task=task, task_id=task_id, kwargs=kwargs, error=error, attempts=attempts, redactor=redactor, raw=raw
        )
        data = {"task": task, "task_id": task_id, "error": error, "attempts": attempts, "dead_letter_id": dead_id}
        self.events.publish(build_event("job.failed", task or "unknown", key, data))
        log.warning("job %s (%s) failed: %s: %s", task_id, task, error["code"], error["message"])
        return JobFailed(error)


class RuntimeContext:
    """The JobContext the runtime gives an operation (see ``extensions.base.JobContext``)."""

    def __init__(self, runtime: Runtime, job: Job, checkpoint_key: str) -> None:
        self._runtime = runtime
        self._job = job
        self._checkpoints = runtime.ledger.checkpoints(checkpoint_key)
        self.idempotency_key = checkpoint_key
        self.connection = job.connection
        self.installation_id = runtime.settings.installation_id
        self.public_url = runtime.settings.public_url

    def checkpoint(self, name: str) -> str | None:
        return self._checkpoints.checkpoint(name)

    def save_checkpoint(self, name: str, value: str) -> None:
        self._checkpoints.save_checkpoint(name, value)

    def secret_checkpoint(self, name: str) -> str | None:
        sealer = self._runtime.sealer
        if not sealer.enabled:
            return self._runtime.unsealed_checkpoints.get((self.idempotency_key, name))
        token = self._checkpoints.checkpoint(f"sealed:{name}")
        try:
            return sealer.unseal(token) if token else None
        except ValueError:  # sealed under a key that has since been rotated
            return None

    def save_secret_checkpoint(self, name: str, value: str) -> None:
        # Sealed with PAYMENTER_RESULT_KEY, never in plain; with no key, only this process remembers it.
        self._job.redactor.add(value)
        token = self._runtime.sealer.seal(value)
        if token is None:
            self._runtime.unsealed_checkpoints[(self.idempotency_key, name)] = value
        else:
            self._checkpoints.save_checkpoint(f"sealed:{name}", token)

    def claim(self, natural_key: str) -> None:
        # The natural key is the identity: a provider re-delivering the same event is a replay, whatever
        # else changed in its delivery (a new signature timestamp).
        key = f"{self._job.spec.name}:{self.connection}:{natural_key}"
        self._runtime.claim(self._job, key, hashlib.sha256(key.encode()).hexdigest(), derived=True)

    @contextmanager
    def exclusive(self, name: str, ttl_s: float) -> Iterator[None]:
        key = keys.mutex(self._job.source, self.connection, name)
        checkpoints = keys.checkpoint(self.idempotency_key)
        # A holder killed inside comes back within the visibility timeout: it keeps its place that long too.
        ttl_ms = int((ttl_s + self._runtime.settings.visibility_timeout) * 1000)
        left_ms = self._runtime.mutexes.acquire(key, self.idempotency_key, checkpoints, ttl_ms)
        if left_ms:
            raise Reschedule(
                min(left_ms / 1000, MUTEX_WAIT_S), f"waiting for '{name}', which another job holds", "busy"
            )
        self._job.sections.add(key)
        yield
        # Left here only when the block completes: a job that re-schedules or dies inside comes back to finish
        # what it started there, and the runtime leaves its sections once the job ends for good.
        self._runtime.mutexes.release([key], self.idempotency_key, checkpoints)
        self._job.sections.discard(key)

    def recall(self, name: str) -> str | None:
        value = self._runtime.redis.get(keys.state(self._job.source, self.connection, name))
        return value.decode() if isinstance(value, bytes) else value

    def remember(self, name: str, value: str, ttl_s: int | None = None) -> None:
        key = keys.state(self._job.source, self.connection, name)
        self._runtime.redis.set(key, value, ex=ttl_s or self._runtime.settings.result_ttl)


def _fingerprint(kwargs: dict[str, Any]) -> str:
    material = {k: v for k, v in kwargs.items() if k != "idempotency_key"}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def load_runtime(settings: Settings) -> Runtime:
    """Validate profiles and connect; raise ``InvalidConfig`` naming the profile and field on bad input."""
    profiles = Profiles.load(settings.connections)
    client = redis.Redis.from_url(settings.backend_url)
    return Runtime(settings, profiles, client)


__all__ = ["Delivery", "InvalidConfig", "Runtime", "UnknownConnection", "load_runtime"]
