"""Connection config of the affiliates integration: Paymenter's fields plus reward kind and renewals."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from extensions.base import Checkbox, ExtensionConfig, config_field
from extensions.money import parse_amount
from extensions.others.affiliates.mapping import Percent, RewardKind, iso_currency

FIXED_HELP = 'One amount for every currency ("5.00") or one per currency ("EUR:5.00, USD:6.00, JPY:700")'


def _amount(value: Any) -> Decimal:
    amount = parse_amount(value.strip() if isinstance(value, str) else value)
    if amount < 0:
        raise ValueError("fixed_reward amounts must not be negative")
    return amount


def _fixed_table(value: Any) -> dict[str, Decimal] | None:
    """``"5.00"`` → ``{"*": 5.00}``; ``"EUR:5, USD:6"`` or a TOML table → one amount per currency."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and ":" not in value:
        return {"*": _amount(value)}
    if isinstance(value, str):
        pairs = [part.split(":", 1) for part in value.split(",") if part.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError(FIXED_HELP)
        value = {code: amount for code, amount in pairs}
    if isinstance(value, Mapping):
        return {iso_currency(code): _amount(amount) for code, amount in value.items()}
    return {"*": _amount(value)}


FixedRewards = Annotated[dict[str, Decimal] | None, BeforeValidator(_fixed_table)]


class AffiliatesConfig(ExtensionConfig):
    default_reward: Percent = config_field(
        type="number", label="Default reward (%)", description="Used when the affiliate has no own rate"
    )
    cookie_max_age: Annotated[int, Field(ge=0)] = config_field(
        0, type="number", label="Cookie max age (days)", description="Read by the web layer; 0 = forever"
    )
    type: Literal["random", "custom"] = config_field(
        "random",
        type="select",
        label="Referral code type",
        options={"random": "Random", "custom": "Custom"},
    )
    reward_type: RewardKind = config_field(
        "percentage",
        type="select",
        label="Reward type",
        options={"percentage": "Percentage of the invoice", "fixed": "Fixed amount per invoice"},
    )
    fixed_reward: FixedRewards = config_field(None, label="Fixed reward", description=FIXED_HELP)
    reward_renewals: Checkbox = config_field(
        True, type="boolean", label="Reward renewals", description="Pay again on every paid renewal invoice"
    )

    @model_validator(mode="after")
    def _fixed_needs_amounts(self) -> AffiliatesConfig:
        if self.reward_type == "fixed" and not self.fixed_reward:
            raise ValueError("reward_type 'fixed' needs fixed_reward")
        return self
