"""Exact money: Decimal amounts in major units, minor units by each currency's exponent, never floats.

ISO 4217 exponents are the default; providers that differ pass their own table (Stripe treats some
currencies as zero-decimal that ISO gives two decimals, PayPal refuses decimals for HUF and TWD).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

ZERO_DECIMAL = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD IQD JOD KWD LYD OMR TND".split())


def iso_exponent(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def exponent_for(currency: str, overrides: Mapping[str, int] | None = None) -> int:
    code = currency.upper()
    if overrides and code in overrides:
        return overrides[code]
    return iso_exponent(code)


def parse_amount(value: Any) -> Decimal:
    """A Decimal from a decimal string or an int; floats are refused (they cannot carry money exactly)."""
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, bool) or isinstance(value, float):
        raise ValueError("money must be a decimal string, not a float")
    elif isinstance(value, int | str):
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"not a decimal amount: {value!r}") from None
    else:
        raise ValueError("money must be a decimal string")
    if not amount.is_finite():
        raise ValueError("money must be finite")
    return amount


def to_minor(amount: Decimal, currency: str, overrides: Mapping[str, int] | None = None) -> int:
    """Minor units, rounded half-up once (19.995 EUR → 2000)."""
    exponent = exponent_for(currency, overrides)
    return int((amount * (Decimal(10) ** exponent)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_minor(minor: int, currency: str, overrides: Mapping[str, int] | None = None) -> Decimal:
    exponent = exponent_for(currency, overrides)
    return (Decimal(minor) / (Decimal(10) ** exponent)).quantize(Decimal(1).scaleb(-exponent))


def format_amount(amount: Decimal, currency: str, overrides: Mapping[str, int] | None = None) -> str:
    """The amount as the provider wants it written: exactly the currency's decimals, '.' separator."""
    exponent = exponent_for(currency, overrides)
    return str(amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP))


def _currency(value: Any) -> str:
    if not isinstance(value, str) or len(value.strip()) != 3 or not value.strip().isalpha():
        raise ValueError("currency must be a three-letter ISO 4217 code")
    return value.strip().upper()


Money = Annotated[Decimal, BeforeValidator(parse_amount), PlainSerializer(lambda d: str(d), return_type=str)]
Currency = Annotated[str, BeforeValidator(_currency)]
