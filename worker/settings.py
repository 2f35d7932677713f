"""Settings from the environment (``PAYMENTER_*``), validated once at start."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTER_", extra="ignore")

    broker_url: str | None = Field(None, description="Unset: an embedded Redis in data_dir")
    result_backend: str | None = Field(None, description="Default: the broker when it is Redis")
    connections: Path | None = Field(None, description="TOML file of connection profiles")
    data_dir: Path = Path("var")
    concurrency: int = Field(100, ge=1, le=1000)
    visibility_timeout: int = Field(300, ge=4, le=86_400)
    allow_inline_config: bool = False
    result_key: SecretStr | None = None
    installation_id: str = "default"
    public_url: str | None = None
    api_token: SecretStr | None = None
    flower_basic_auth: SecretStr | None = None
    metrics_port: int | None = Field(None, ge=1, le=65_535, description="Worker metrics; unset: not served")
    metrics_host: str = Field("127.0.0.1", description="Interface the worker metrics listen on")
    log_format: Literal["json", "text"] = "json"

    max_retries: int = Field(8, ge=0, le=100)
    retry_backoff_base: float = Field(2.0, gt=0)
    retry_backoff_max: float = Field(600.0, gt=0)
    max_deliveries: int = Field(5, ge=1, le=100, description="Deliveries of one attempt before dead-lettering")
    max_polls: int = Field(720, ge=1, description="Re-schedules while a provider job is pending")
    max_payload_bytes: int = Field(2_000_000, ge=1_000, description="Largest job payload, as JSON")
    result_ttl: int = Field(7 * 86_400, ge=60, description="Seconds results and ledger entries are kept")
    dead_letter_ttl: int = Field(30 * 86_400, ge=60)
    events_maxlen: int = Field(100_000, ge=100)

    @field_validator("result_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            from cryptography.fernet import Fernet

            try:
                Fernet(value.get_secret_value().encode())
            except (ValueError, TypeError):
                raise ValueError("PAYMENTER_RESULT_KEY must be a Fernet key (32 url-safe base64 bytes)") from None
            return value
        return None

    @model_validator(mode="after")
    def _backend(self) -> Settings:
        if self.broker_url and not self.result_backend:
            if not self.broker_url.startswith(("redis://", "rediss://", "redis+socket://")):
                raise ValueError("PAYMENTER_RESULT_BACKEND is required when the broker is not Redis")
        return self

    @property
    def lease_ms(self) -> int:
        """Ledger lease: shorter than the visibility timeout, renewed while the job runs."""
        return int(min(30.0, self.visibility_timeout / 2) * 1000)

    @property
    def max_countdown(self) -> float:
        """Longest countdown sent to the broker; longer waits go through the delayed set."""
        return self.visibility_timeout / 2

    @property
    def backend_url(self) -> str:
        url = self.result_backend or self.broker_url
        if not url:
            raise RuntimeError("no broker configured and the embedded Redis is not started")
        return url


@cache
def get_settings() -> Settings:
    return Settings()
