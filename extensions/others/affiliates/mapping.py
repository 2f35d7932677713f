"""Pure parts of the affiliates integration: payload models and the reward computation (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from extensions.errors import InvalidConfig
from extensions.money import Money, exponent_for, format_amount, parse_amount
from extensions.payments import InvoiceUser

if TYPE_CHECKING:
    from extensions.others.affiliates.config import AffiliatesConfig

# Active ISO 4217 currencies (funds, metals and test codes left out: nobody invoices in them).
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP
    GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD
    KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK
    NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS
    SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST
    XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
    """.split()
)

RewardKind = Literal["percentage", "fixed"]
ItemKind = Literal["service", "upgrade", "other"]


def iso_currency(value: Any) -> str:
    if not isinstance(value, str) or value.strip().upper() not in ISO_4217:
        raise ValueError("must be an active ISO 4217 currency code")
    return value.strip().upper()


IsoCurrency = Annotated[str, BeforeValidator(iso_currency)]
Percent = Annotated[Decimal, BeforeValidator(parse_amount), Field(ge=0, le=100)]
Amount = Annotated[Money, Field(ge=0)]
Id = int | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AffiliateSnapshot(_Strict):
    """The ``ext_affiliates`` row as the billing system sees it when it enqueues."""

    id: Id
    user_id: Id
    code: str = Field(min_length=1, max_length=255)
    enabled: bool = True
    reward: Percent | None = None
    discount: Percent | None = None
    reward_type: RewardKind | None = None


class RewardItem(_Strict):
    description: str | None = None
    price: Amount
    quantity: int = Field(1, ge=1)
    reference_type: str | None = None
    reference_id: Id | None = None
    service_id: Id | None = None

    @property
    def kind(self) -> ItemKind:
        # Paymenter names the model class (App\Models\Service, App\Models\ServiceUpgrade); bare names work too.
        if self.reference_type is None:
            return "service" if self.service_id is not None else "other"
        name = self.reference_type.replace("/", "\\").rsplit("\\", 1)[-1].lower()
        if name == "service":
            return "service"
        return "upgrade" if name in ("serviceupgrade", "upgrade") else "other"


class PaidInvoice(_Strict):
    id: Id
    number: str | None = None
    total: Amount
    currency: IsoCurrency
    user: InvoiceUser | None = None
    items: list[RewardItem] = Field(min_length=1)


class RewardRequest(_Strict):
    invoice: PaidInvoice
    affiliate: AffiliateSnapshot
    renewal: bool = False


class SignupUser(_Strict):
    id: Id
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)


class SignupRequest(_Strict):
    affiliate: AffiliateSnapshot
    user: SignupUser


class AttributedOrder(_Strict):
    """The ``orders`` row just created: its id and the buyer (``user_id``), all the rule looks at."""

    id: Id
    user_id: Id


class AttributionRequest(_Strict):
    """An order and the affiliate the billing system resolved from the ``referred_by`` cookie's code."""

    order: AttributedOrder
    affiliate: AffiliateSnapshot


# --- computation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skip:
    reason: str

    def data(self) -> dict[str, Any]:
        return {"rewarded": False, "reason": self.reason}


@dataclass(frozen=True)
class Reward:
    kind: RewardKind
    percentage: Decimal | None
    base: Decimal
    amount: Decimal
    currency: str
    capped: bool = False

    def data(self, request: RewardRequest) -> dict[str, Any]:
        return {
            "affiliate_id": request.affiliate.id,
            "user_id": request.affiliate.user_id,
            "code": request.affiliate.code,
            "invoice_id": request.invoice.id,
            "amount": format_amount(self.amount, self.currency),
            "currency": self.currency,
            "kind": self.kind,
            "percentage": format(self.percentage.normalize(), "f") if self.percentage is not None else None,
            "base": format_amount(self.base, self.currency),
            "capped": self.capped,
            "renewal": request.renewal,
        }


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Half-up to the currency's exponent; the only rounding a reward goes through."""
    return amount.quantize(Decimal(1).scaleb(-exponent_for(currency)), rounding=ROUND_HALF_UP)


def reward_base(invoice: PaidInvoice) -> Decimal | None:
    """Σ price × quantity over the service items; None when there are none.

    Upgrade and credit top-up lines never earn a commission, wherever they sit on the invoice.
    """
    lines = [item.price * item.quantity for item in invoice.items if item.kind == "service"]
    return sum(lines, Decimal(0)) if lines else None


def fixed_amount(config: AffiliatesConfig, currency: str) -> Decimal:
    table = config.fixed_reward or {}
    amount = table.get(currency, table.get("*"))
    if amount is None:
        raise InvalidConfig(f"others.affiliates config: fixed_reward has no amount for {currency}")
    return amount


def compute_reward(request: RewardRequest, config: AffiliatesConfig) -> Reward | Skip:
    affiliate, invoice = request.affiliate, request.invoice
    if not affiliate.enabled:
        return Skip("affiliate_disabled")
    if invoice.user is not None and str(invoice.user.id) == str(affiliate.user_id):
        return Skip("self_referral")
    if request.renewal and not config.reward_renewals:
        return Skip("renewal_not_rewarded")
    base = reward_base(invoice)
    if base is None:
        return Skip("no_service_items")
    currency = invoice.currency
    reward: Reward
    if (affiliate.reward_type or config.reward_type) == "fixed":
        fixed = quantize(fixed_amount(config, currency), currency)
        capped = quantize(base, currency)
        reward = Reward("fixed", None, base, min(fixed, capped), currency, capped=fixed > capped)
    else:
        # None means "use the default"; 0 is a real rate of zero (Paymenter could not express it).
        pct = affiliate.reward if affiliate.reward is not None else config.default_reward
        reward = Reward("percentage", pct, base, quantize(base * pct / 100, currency), currency)
    if reward.amount == 0:
        return Skip("zero_reward")
    return reward
