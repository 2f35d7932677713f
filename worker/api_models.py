"""Request and response models of the HTTP API: what ``/openapi.json`` publishes and responses obey."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobState = Literal["PENDING", "RECEIVED", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED"]


class ErrorDetail(BaseModel):
    code: str = Field(description="not_found, unauthorized, payload_too_large, not_replayable, unavailable")
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class ExtensionListing(BaseModel):
    servers: list[str]
    gateways: list[str]
    others: list[str]


class ExtensionMetadata(BaseModel):
    name: str
    description: str
    version: str
    author: str
    type: str


class ConfigField(BaseModel):
    """One field of an extension's config, as Paymenter's ``getConfig()`` lists it."""

    model_config = ConfigDict(extra="allow")

    name: str
    type: str
    label: str
    description: str | None = None
    required: bool
    default: Any = None
    options: dict[str, str] | None = None


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=200, examples=["servers.pterodactyl.create"])
    kwargs: dict[str, Any] = Field(default_factory=dict, description="the task's keyword arguments")
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


class JobAccepted(BaseModel):
    id: str
    task: str


class JobError(BaseModel):
    code: str
    message: str
    retryable: bool
    provider_status: int | None = None


class JobStatus(BaseModel):
    id: str
    state: str = Field(description="Celery's state: PENDING (or unknown), STARTED, RETRY, SUCCESS, FAILURE")
    result: dict[str, Any] | None = Field(None, description="the success envelope (SUCCESS only)")
    error: JobError | None = Field(None, description="the contract's error object (FAILURE only)")


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    task: str | None = None
    task_id: str | None = None
    kwargs: Any = Field(None, description="the job's kwargs with sensitive values masked")
    error: dict[str, Any]
    attempts: int
    failed_at: str
    raw: str | None = Field(None, description="a redacted excerpt of a message that could not be decoded")


class ReplayOutcome(BaseModel):
    replayed: str = Field(description="the dead letter's id (now removed)")
    id: str = Field(description="the new job's id")
    task: str


class WebhookAccepted(BaseModel):
    id: str = Field(description="the id of the job that will verify and interpret the webhook")
    task: str
    received_at: str


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    broker: bool
    backend: bool
