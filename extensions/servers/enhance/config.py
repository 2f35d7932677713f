"""Connection config and product settings of the Enhance integration, under Paymenter's names."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from extensions.base import BaseUrl, ExtensionConfig, OptionalStr, config_field


class EnhanceConfig(ExtensionConfig):
    host: BaseUrl = config_field(label="Hostname", description="Control panel URL, e.g. https://cp.example.com")
    apikey: SecretStr = config_field(type="password", label="API key", description="Enhance access token")
    orgId: str = config_field(
        label="Organisation ID", description="UUID of the organisation owning plans and customers"
    )

    @field_validator("orgId")
    @classmethod
    def _org(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value.strip()))
        except ValueError:
            raise ValueError("must be a UUID") from None


class EnhanceProduct(BaseModel):
    """Product settings (``getProductConfig``); Paymenter sends the plan id as a string."""

    model_config = ConfigDict(extra="ignore")

    plan: Annotated[int, Field(gt=0)] = config_field(type="select", label="Enhance package ID")
    location: OptionalStr = config_field(None, label="Server group", description="Name or UUID (empty: any)")
    # Read by ServerExtension.product_settings(); listed here so the product form shows it.
    overridable_settings: list[str] | str = config_field([], label="Settings a config option may override")
