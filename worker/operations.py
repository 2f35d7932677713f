"""Task names and payload models: ``<category>.<slug>.<operation>`` for every registered extension."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from extensions.base import SERVER_OPERATIONS, Extension, Service
from extensions.registry import load_registry

SERVER_EVENTS = {
    "create": "service.created",
    "suspend": "service.suspended",
    "unsuspend": "service.unsuspended",
    "terminate": "service.terminated",
    "upgrade": "service.upgraded",
}
META_TASKS = ("extensions.list", "extensions.metadata", "extensions.config_schema")


class JobPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = Field(1, ge=1, le=1)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    connection: str | None = Field(None, min_length=1, max_length=100)
    config: dict[str, Any] | None = None


class ConnectionPayload(JobPayload):
    pass


class ServerPayload(JobPayload):
    service: Service


class RequestPayload(JobPayload):
    """The runtime's own kwargs; the rest is the operation's request, validated by the extension's model."""

    model_config = ConfigDict(extra="allow", frozen=True)


class MetaPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = Field(1, ge=1, le=1)
    idempotency_key: str | None = None
    category: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class OperationSpec:
    name: str
    extension: type[Extension]
    operation: str
    payload: type[JobPayload]
    event: str | None

    @property
    def queue(self) -> str:
        return self.extension.category


def _payload_model(extension: type[Extension], operation: str) -> type[JobPayload]:
    if operation == "test_config":
        return ConnectionPayload
    if extension.category == "servers":
        return ServerPayload
    return RequestPayload if extension.payload_model(operation) is not None else JobPayload


def operation_specs() -> list[OperationSpec]:
    specs = []
    for key, cls in sorted(load_registry().items()):
        ops = SERVER_OPERATIONS if cls.category == "servers" else tuple(sorted(cls.operations))
        for op in ops:
            if op in cls.operations:
                event = SERVER_EVENTS.get(op) if cls.category == "servers" else None
                specs.append(OperationSpec(f"{key}.{op}", cls, op, _payload_model(cls, op), event))
    return specs
