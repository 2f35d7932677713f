"""Base classes of every integration, their config models and the typed values they exchange.

An integration is a subclass of :class:`ServerExtension`, :class:`GatewayExtension` or
:class:`OtherExtension` with a pydantic ``Config`` model (fields under Paymenter's PHP names, declared
with :func:`config_field` so ``get_config()`` lists them as the seed did), the set of ``operations`` it
supports, and one method per operation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Annotated, Any, ClassVar, Generic, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError

from extensions.errors import ExtensionError, InvalidConfig, InvalidPayload, UnsupportedOperation
from extensions.redaction import Redactor

Category = Literal["servers", "gateways", "others"]
FieldType = Literal["text", "password", "number", "boolean", "select", "textarea"]
CATEGORY_TYPE: dict[str, str] = {"servers": "server", "gateways": "gateway", "others": "other"}


def _checkbox(value: Any) -> Any:
    """Paymenter stores checkboxes as "1"/"0" (and forms send "on"); "0" must not read as true."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "on", "yes"):
            return True
        if lowered in ("0", "false", "off", "no", ""):
            return False
    if value is None:
        return False
    return value


Checkbox = Annotated[bool, BeforeValidator(_checkbox)]


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


OptionalInt = Annotated[int | None, BeforeValidator(_blank_to_none)]
OptionalStr = Annotated[str | None, BeforeValidator(_blank_to_none)]


def http_url(value: str) -> str:
    """An http(s) base URL, without surrounding spaces or trailing slashes."""
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return value


def _optional_http_url(value: str | None) -> str | None:
    return None if value is None else http_url(value)


BaseUrl = Annotated[str, AfterValidator(http_url)]
OptionalBaseUrl = Annotated[str | None, BeforeValidator(_blank_to_none), AfterValidator(_optional_http_url)]


def config_field(
    default: Any = ...,
    *,
    type: FieldType = "text",
    label: str,
    description: str | None = None,
    options: Mapping[str, str] | None = None,
    alias: str | None = None,
) -> Any:
    """A pydantic field that also describes itself the way Paymenter's ``getConfig()`` does."""
    extra = {"paymenter": {"type": type, "label": label, "description": description, "options": options}}
    return Field(default, json_schema_extra=extra, alias=alias)  # type: ignore[arg-type]


class ExtensionConfig(BaseModel):
    """Base of every connection config: frozen, unknown keys refused, credentials as ``SecretStr``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def secret_values(self) -> list[str]:
        return [v.get_secret_value() for v in self.__dict__.values() if isinstance(v, SecretStr)]


ConfigT = TypeVar("ConfigT", bound=ExtensionConfig)


def describe_fields(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The seed's field list (name, type, label, description, required, default, options)."""
    fields = []
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        meta = extra.get("paymenter", {}) if isinstance(extra, dict) else {}
        assert isinstance(meta, dict)
        default = None if info.is_required() else info.default
        if isinstance(default, SecretStr):
            default = None
        fields.append(
            {
                "name": info.alias or name,
                "type": meta.get("type", "text"),
                "label": meta.get("label", name),
                "description": meta.get("description"),
                "required": info.is_required(),
                "default": default,
                "options": meta.get("options"),
            }
        )
    return fields


def validation_message(exc: ValidationError, where: str) -> str:
    """``where: field: problem; ...`` without echoing the offending input values."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return f"{where}: " + "; ".join(parts)


# --- payloads -------------------------------------------------------------------------------------


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ServiceUser(Payload):
    id: int | str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None

    @property
    def display_name(self) -> str:
        joined = " ".join(p for p in (self.first_name, self.last_name) if p)
        return self.name or joined or self.email.split("@")[0]


class Product(Payload):
    id: int | str
    name: str
    settings: dict[str, Any] = Field(default_factory=dict)


class Service(Payload):
    id: int | str
    user: ServiceUser
    product: Product
    properties: dict[str, Any] = Field(default_factory=dict)


# --- results and job context -------------------------------------------------------------------


class OperationResult(BaseModel):
    """What an operation produced.

    ``properties`` are strings the billing system stores and sends back (``cleared_properties`` it
    deletes); ``secrets`` are values the
    provider generated for the customer (sealed by the runtime, never stored in plain); ``events`` are
    extra ``(type, data)`` pairs to publish.
    """

    data: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    # Properties the billing system should delete (a terminated server's id).
    cleared_properties: list[str] = Field(default_factory=list)
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = Field(default_factory=list)


class JobContext(Protocol):
    """What the runtime offers an operation.

    - ``checkpoint``/``save_checkpoint``: durable values of this job (a generated username, a reserved
      VM id, a provider task id) that survive retries and a killed worker, so the next run resumes;
    - ``secret_checkpoint``/``save_secret_checkpoint``: the same for a secret (a generated password),
      stored sealed; without a sealing key it is kept only by this process, so a run elsewhere gets None
      and must cope (generate again, reset);
    - ``claim(natural_key)``: de-duplicate by a key only known mid-operation (a verified webhook's event
      id): a key that already succeeded ends the job as a replay of its stored result, one in flight
      elsewhere re-schedules this job;
    - ``exclusive(name, ttl_s)``: a section no other job of this connection runs under the same name at
      the same time, for provider steps no natural key makes safe (a create the provider cannot label).
      A job that finds it taken is re-scheduled until the holder leaves it. The holder leaves it when the
      block completes or the job ends (succeeds, or fails for good); a run that re-schedules (a retryable
      error, ``Pending``) keeps it until it runs again, one that dies inside keeps it for ``ttl_s`` plus the
      visibility timeout, and the job's next run walks back in (a job without an idempotency key only
      leaves it on completion or when that time lapses);
    - ``recall``/``remember``: small durable state of this connection shared across jobs (the open
      payment of an invoice, a cached token);
    - ``connection``, ``installation_id`` (namespaces references sent to providers), ``public_url``.
    """

    idempotency_key: str
    connection: str
    installation_id: str
    public_url: str | None

    def checkpoint(self, name: str) -> str | None: ...

    def save_checkpoint(self, name: str, value: str) -> None: ...

    def secret_checkpoint(self, name: str) -> str | None: ...

    def save_secret_checkpoint(self, name: str, value: str) -> None: ...

    def claim(self, natural_key: str) -> None: ...

    def exclusive(self, name: str, ttl_s: float) -> AbstractContextManager[None]: ...

    def recall(self, name: str) -> str | None: ...

    def remember(self, name: str, value: str, ttl_s: int | None = None) -> None: ...


class LocalContext:
    """In-memory job context for library use without a queue (claims always succeed)."""

    def __init__(
        self,
        idempotency_key: str = "local",
        *,
        connection: str = "local",
        installation_id: str = "default",
        public_url: str | None = None,
    ) -> None:
        self.idempotency_key = idempotency_key
        self.connection = connection
        self.installation_id = installation_id
        self.public_url = public_url
        self.claims: list[str] = []
        self.sections: list[str] = []
        self._checkpoints: dict[str, str] = {}
        self._state: dict[str, str] = {}

    def checkpoint(self, name: str) -> str | None:
        return self._checkpoints.get(name)

    def save_checkpoint(self, name: str, value: str) -> None:
        self._checkpoints[name] = value

    def secret_checkpoint(self, name: str) -> str | None:
        return self._checkpoints.get(f"secret:{name}")

    def save_secret_checkpoint(self, name: str, value: str) -> None:
        self._checkpoints[f"secret:{name}"] = value

    def claim(self, natural_key: str) -> None:
        self.claims.append(natural_key)

    @contextmanager
    def exclusive(self, name: str, ttl_s: float) -> Iterator[None]:
        # One process, one job at a time: nothing to wait for, but keep a record for tests.
        self.sections.append(name)
        yield

    def recall(self, name: str) -> str | None:
        return self._state.get(name)

    def remember(self, name: str, value: str, ttl_s: int | None = None) -> None:
        self._state[name] = value


# --- base classes ---------------------------------------------------------------------------------


class Extension:
    category: ClassVar[Category]
    slug: ClassVar[str]
    display_name: ClassVar[str]
    description: ClassVar[str] = ""
    version: ClassVar[str] = "1.0.0"
    author: ClassVar[str] = "Paymenter"
    Config: ClassVar[type[ExtensionConfig]]
    operations: ClassVar[frozenset[str]]
    # Operations whose payload names the natural key the runtime derives an idempotency key from.
    keyed_operations: ClassVar[frozenset[str]] = frozenset()
    # Request model of each operation (gateways and others; servers take ``service``).
    payloads: ClassVar[dict[str, type[BaseModel]]] = {}

    def __init__(
        self,
        config: ExtensionConfig | Mapping[str, Any],
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config if isinstance(config, self.Config) else self.parse_config(config)  # type: ignore[arg-type]
        self.transport = transport
        self.redactor = Redactor(self.config.secret_values())
        self.setup()

    def setup(self) -> None:
        """Build what the operations need (the HTTP client) once the config is valid; ``self.transport`` is
        the test transport, if any."""

    @classmethod
    def parse_config(cls, raw: Mapping[str, Any], where: str | None = None) -> ExtensionConfig:
        try:
            return cls.Config.model_validate(dict(raw))
        except ValidationError as exc:
            raise InvalidConfig(validation_message(exc, where or f"{cls.category}.{cls.slug} config")) from None

    @classmethod
    def get_metadata(cls) -> dict[str, str]:
        return {
            "name": cls.display_name,
            "description": cls.description,
            "version": cls.version,
            "author": cls.author,
            "type": CATEGORY_TYPE[cls.category],
        }

    @classmethod
    def get_config(cls) -> list[dict[str, Any]]:
        return describe_fields(cls.Config)

    @classmethod
    def payload_model(cls, operation: str) -> type[BaseModel] | None:
        """The request model an operation takes (besides the runtime's own kwargs), or None."""
        return cls.payloads.get(operation)

    def operation(self, name: str) -> Callable[..., OperationResult]:
        if name not in self.operations:
            raise UnsupportedOperation(f"{self.category}.{self.slug} does not support '{name}'")
        method: Callable[..., OperationResult] = getattr(self, name)
        return method


class ServerExtension(Extension, Generic[ConfigT]):
    category: ClassVar[Category] = "servers"
    config: ConfigT
    ProductSettings: ClassVar[type[BaseModel]]
    keyed_operations = frozenset({"create"})
    # Properties of ``create`` that name the provider resource; a successful terminate clears them.
    resource_properties: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def get_product_config(cls) -> list[dict[str, Any]]:
        return describe_fields(cls.ProductSettings)

    def product_settings(self, service: Service, *, allowed_overrides: frozenset[str] = frozenset()) -> Any:
        """The product's settings with checkout properties applied only where the product allows it.

        Paymenter merged every property over the settings, letting a customer choose their own memory or
        node at checkout; here a property overrides a setting only when the product lists that key in
        ``overridable_settings`` (or the integration marks it as a checkout input).
        """
        settings = dict(service.product.settings)
        listed = settings.get("overridable_settings") or []
        if isinstance(listed, str):
            listed = [k.strip() for k in listed.split(",") if k.strip()]
        overridable = set(listed) | allowed_overrides
        for key, value in service.properties.items():
            if key in overridable:
                settings[key] = value
        try:
            return self.ProductSettings.model_validate(settings)
        except ValidationError as exc:
            raise InvalidPayload(validation_message(exc, "service.product.settings")) from None

    def test_config(self) -> OperationResult:
        raise UnsupportedOperation("test_config")

    def create(self, service: Service, job: JobContext) -> OperationResult:
        raise UnsupportedOperation("create")

    def suspend(self, service: Service, job: JobContext) -> OperationResult:
        raise UnsupportedOperation("suspend")

    def unsuspend(self, service: Service, job: JobContext) -> OperationResult:
        raise UnsupportedOperation("unsuspend")

    def terminate(self, service: Service, job: JobContext) -> OperationResult:
        raise UnsupportedOperation("terminate")

    def upgrade(self, service: Service, job: JobContext) -> OperationResult:
        raise UnsupportedOperation("upgrade")

    def login_url(self, service: Service, job: JobContext) -> OperationResult:
        raise UnsupportedOperation("login_url")


class GatewayExtension(Extension, Generic[ConfigT]):
    category: ClassVar[Category] = "gateways"
    config: ConfigT

    @classmethod
    def payload_model(cls, operation: str) -> type[BaseModel] | None:
        if operation in cls.payloads:
            return cls.payloads[operation]
        from extensions.payments import GATEWAY_PAYLOADS

        return GATEWAY_PAYLOADS.get(operation)

    def webhook_url(self, given: object, job: JobContext, operation: str) -> str:
        """Where the provider delivers this connection's webhooks: ``given`` (a payload's ``webhook_url``) when
        set, else the HTTP API's receiver under ``PAYMENTER_PUBLIC_URL``."""
        if given is not None:
            return str(given)
        if job.public_url:
            return f"{job.public_url.rstrip('/')}/webhooks/{self.slug}/{job.connection}"
        raise InvalidPayload(f"{self.slug} {operation}: webhook_url is required when PAYMENTER_PUBLIC_URL is not set")


class OtherExtension(Extension, Generic[ConfigT]):
    category: ClassVar[Category] = "others"
    config: ConfigT


SERVER_OPERATIONS = ("test_config", "create", "suspend", "unsuspend", "terminate", "upgrade", "login_url")

__all__ = [
    "Category",
    "Checkbox",
    "ExtensionConfig",
    "ExtensionError",
    "GatewayExtension",
    "JobContext",
    "LocalContext",
    "OperationResult",
    "OtherExtension",
    "Service",
    "ServerExtension",
    "config_field",
]
