"""others.affiliates through the runtime: reward amounts, once-only rules, events on the stream."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest

from extensions.errors import InvalidConfig
from extensions.others.affiliates import Affiliates
from tests.conftest import JobDriver
from worker.runtime import Runtime

REWARD = "others.affiliates.reward"
SIGNUP = "others.affiliates.signup"
ATTRIBUTE = "others.affiliates.attribute_order"
_task_ids = itertools.count()


def affiliate(**overrides: Any) -> dict[str, Any]:
    return {"id": 3, "user_id": 30, "code": "FRIEND42", "enabled": True, "reward": None, "discount": None, **overrides}


def service_item(price: str, quantity: int = 1) -> dict[str, Any]:
    return {"price": price, "quantity": quantity, "reference_type": "App\\Models\\Service", "reference_id": 9}


def invoice(*items: dict[str, Any], invoice_id: int = 100, currency: str = "EUR", **overrides: Any) -> dict[str, Any]:
    lines = list(items) or [service_item("20.00"), service_item("5.00", 2)]
    total = sum((Decimal(i["price"]) * i.get("quantity", 1) for i in lines), Decimal(0))
    return {
        "id": invoice_id,
        "total": str(total),
        "currency": currency,
        "user": {"id": 77, "email": "buyer@example.com"},
        "items": lines,
        **overrides,
    }


def reward_job(inv: dict[str, Any] | None = None, aff: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"connection": "aff", "invoice": inv or invoice(), "affiliate": aff or affiliate(), **extra}


def run(driver: JobDriver, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    return driver.run(name, kwargs, task_id=f"t{next(_task_ids)}")


def fail(driver: JobDriver, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    return driver.fail(name, kwargs, task_id=f"f{next(_task_ids)}")


def events(runtime: Runtime, event_type: str) -> list[dict[str, Any]]:
    return [e["data"] for e in runtime.events.read() if e["type"] == event_type]


@pytest.fixture
def connect(runtime: Runtime) -> Any:
    def bind(**config: Any) -> None:
        runtime.bind("aff", Affiliates({"default_reward": "10", **config}))

    bind()
    return bind


# --- percentage rewards ------------------------------------------------------------------------------


def test_default_rate_rewards_the_service_total_and_publishes_one_event(
    connect: Any, driver: JobDriver, runtime: Runtime
) -> None:
    result = run(driver, REWARD, reward_job())
    assert result["data"]["rewarded"] is True
    assert events(runtime, "affiliate.rewarded") == [
        {
            "affiliate_id": 3,
            "user_id": 30,
            "code": "FRIEND42",
            "invoice_id": 100,
            "amount": "3.00",
            "currency": "EUR",
            "kind": "percentage",
            "percentage": "10",
            "base": "30.00",
            "capped": False,
            "renewal": False,
        }
    ]


def test_the_affiliate_own_rate_wins_over_the_default(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    run(driver, REWARD, reward_job(aff=affiliate(reward="25")))
    [event] = events(runtime, "affiliate.rewarded")
    assert (event["amount"], event["percentage"]) == ("7.50", "25")


def test_a_rate_of_zero_is_zero_not_the_default(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    result = run(driver, REWARD, reward_job(aff=affiliate(reward=0)))
    assert result["data"] == {"rewarded": False, "reason": "zero_reward"}
    assert events(runtime, "affiliate.rewarded") == []


def test_the_amount_is_rounded_once_not_per_item(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    # 3 × 0.05 × 10% = 0.015 → 0.02 once; rounding each line (0.005 → 0.01) would give 0.03.
    run(driver, REWARD, reward_job(inv=invoice(service_item("0.05"), service_item("0.05"), service_item("0.05"))))
    assert [e["amount"] for e in events(runtime, "affiliate.rewarded")] == ["0.02"]


def test_zero_decimal_and_three_decimal_currencies(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    yen = invoice(service_item("1999"), invoice_id=1, currency="JPY")
    dinar = invoice(service_item("12.345"), invoice_id=2, currency="kwd")
    run(driver, REWARD, reward_job(inv=yen, aff=affiliate(reward="7.5")))  # 149.925 → 150
    run(driver, REWARD, reward_job(inv=dinar))  # 1.2345 → 1.235
    amounts = [(e["amount"], e["currency"], e["base"]) for e in events(runtime, "affiliate.rewarded")]
    assert amounts == [("150", "JPY", "1999"), ("1.235", "KWD", "12.345")]


# --- fixed rewards -----------------------------------------------------------------------------------


def test_fixed_reward_per_currency_capped_at_the_base(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    connect(reward_type="fixed", fixed_reward="EUR:5.00, USD:6")
    run(driver, REWARD, reward_job(inv=invoice(invoice_id=1)))
    run(driver, REWARD, reward_job(inv=invoice(invoice_id=2, currency="USD")))
    run(driver, REWARD, reward_job(inv=invoice(service_item("3.00"), invoice_id=3)))
    got = [
        (e["amount"], e["currency"], e["kind"], e["percentage"], e["capped"])
        for e in events(runtime, "affiliate.rewarded")
    ]
    assert got == [
        ("5.00", "EUR", "fixed", None, False),
        ("6.00", "USD", "fixed", None, False),
        ("3.00", "EUR", "fixed", None, True),
    ]


def test_one_fixed_amount_applies_to_every_currency(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    connect(reward_type="fixed", fixed_reward="4.5")
    run(driver, REWARD, reward_job(inv=invoice(service_item("1000"), currency="JPY")))
    assert [e["amount"] for e in events(runtime, "affiliate.rewarded")] == ["5"]


def test_an_affiliate_can_be_on_a_fixed_reward_alone(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    connect(fixed_reward={"EUR": "2.50"})
    run(driver, REWARD, reward_job(aff=affiliate(reward_type="fixed", reward="50")))
    assert [(e["amount"], e["kind"]) for e in events(runtime, "affiliate.rewarded")] == [("2.50", "fixed")]


def test_a_fixed_reward_missing_for_the_currency_fails_as_config(
    connect: Any, driver: JobDriver, runtime: Runtime
) -> None:
    connect(reward_type="fixed", fixed_reward="EUR:5")
    error = fail(driver, REWARD, reward_job(inv=invoice(currency="GBP")))
    assert error["code"] == "invalid_config"
    assert "GBP" in error["message"]
    assert events(runtime, "affiliate.rewarded") == []


@pytest.mark.parametrize(
    "config",
    [
        {"default_reward": "10", "reward_type": "fixed"},
        {"default_reward": "101"},
        {"default_reward": 10.5},
        {"default_reward": "10", "fixed_reward": "EUR:-1"},
        {"default_reward": "10", "fixed_reward": "XYZ:1"},
    ],
)
def test_bad_config_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfig):
        Affiliates(config)


# --- what earns and what does not ---------------------------------------------------------------------


def test_renewals_earn_again_unless_turned_off(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    run(driver, REWARD, reward_job(inv=invoice(invoice_id=1)))
    run(driver, REWARD, reward_job(inv=invoice(invoice_id=2), renewal=True))
    assert [(e["invoice_id"], e["renewal"]) for e in events(runtime, "affiliate.rewarded")] == [(1, False), (2, True)]
    connect(reward_renewals="0")
    result = run(driver, REWARD, reward_job(inv=invoice(invoice_id=3), renewal=True))
    assert result["data"] == {"rewarded": False, "reason": "renewal_not_rewarded"}
    assert len(events(runtime, "affiliate.rewarded")) == 2


def test_a_disabled_affiliate_earns_nothing(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    result = run(driver, REWARD, reward_job(aff=affiliate(enabled=False)))
    assert result["data"] == {"rewarded": False, "reason": "affiliate_disabled"}
    assert events(runtime, "affiliate.rewarded") == []


def test_upgrade_lines_neither_earn_nor_block_service_lines(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    upgrade = {"price": "50.00", "reference_type": "App\\Models\\ServiceUpgrade", "reference_id": 4}
    credit = {"price": "100.00", "reference_type": "App\\Models\\Credit"}
    run(driver, REWARD, reward_job(inv=invoice(upgrade, service_item("20.00"), invoice_id=1)))
    run(driver, REWARD, reward_job(inv=invoice(service_item("20.00"), credit, invoice_id=2)))
    only_upgrade = run(driver, REWARD, reward_job(inv=invoice(upgrade, invoice_id=3)))
    assert only_upgrade["data"] == {"rewarded": False, "reason": "no_service_items"}
    got = [(e["invoice_id"], e["base"], e["amount"]) for e in events(runtime, "affiliate.rewarded")]
    assert got == [(1, "20.00", "2.00"), (2, "20.00", "2.00")]


def test_the_affiliate_own_invoice_earns_nothing(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    own = invoice(user={"id": 30, "email": "affiliate@example.com"})
    assert run(driver, REWARD, reward_job(inv=own))["data"]["reason"] == "self_referral"
    assert events(runtime, "affiliate.rewarded") == []


# --- once per invoice ------------------------------------------------------------------------------


def test_the_same_invoice_paid_twice_rewards_once(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    first = run(driver, REWARD, reward_job())
    again = run(driver, REWARD, reward_job())
    other_key = run(driver, REWARD, reward_job(idempotency_key="invoice-paid-2nd-time"))
    assert first["replayed"] is False
    assert again["replayed"] is True
    assert other_key["replayed"] is True
    assert again["data"]["amount"] == other_key["data"]["amount"] == "3.00"
    assert len(events(runtime, "affiliate.rewarded")) == 1


def test_two_invoices_give_two_rewards_with_exact_amounts(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    run(driver, REWARD, reward_job(inv=invoice(service_item("19.99"), invoice_id=1)))
    run(driver, REWARD, reward_job(inv=invoice(service_item("33.35"), invoice_id=2)))
    amounts = [Decimal(e["amount"]) for e in events(runtime, "affiliate.rewarded")]
    assert amounts == [Decimal("2.00"), Decimal("3.34")]  # 1.999 → 2.00, 3.335 → 3.34 (half-up)
    assert sum(amounts) == Decimal("5.34")


# --- signups -----------------------------------------------------------------------------------------


def signup_job(user_id: int = 55, **aff: Any) -> dict[str, Any]:
    return {"connection": "aff", "affiliate": affiliate(**aff), "user": {"id": user_id, "email": "new@example.com"}}


def test_a_signup_is_counted_once_per_user(connect: Any, driver: JobDriver, runtime: Runtime) -> None:
    first = run(driver, SIGNUP, signup_job())
    again = run(driver, SIGNUP, signup_job())
    run(driver, SIGNUP, signup_job(user_id=56))
    assert first["data"]["recorded"] is True
    assert again["replayed"] is True
    got = [(e["affiliate_id"], e["user_id"]) for e in events(runtime, "affiliate.signup")]
    assert got == [(3, 55), (3, 56)]


def test_self_referral_and_disabled_affiliates_count_no_signup(
    connect: Any, driver: JobDriver, runtime: Runtime
) -> None:
    assert run(driver, SIGNUP, signup_job(user_id=30))["data"] == {"recorded": False, "reason": "self_referral"}
    disabled = run(driver, SIGNUP, signup_job(enabled=False))
    assert disabled["data"] == {"recorded": False, "reason": "affiliate_disabled"}
    assert events(runtime, "affiliate.signup") == []


# --- order attribution -------------------------------------------------------------------------------


def order_job(order_id: int = 500, user_id: int = 77, **aff: Any) -> dict[str, Any]:
    return {"connection": "aff", "order": {"id": order_id, "user_id": user_id}, "affiliate": affiliate(**aff)}


def test_an_order_is_attributed_once_even_when_enqueued_twice(
    connect: Any, driver: JobDriver, runtime: Runtime
) -> None:
    first = run(driver, ATTRIBUTE, order_job())
    again = run(driver, ATTRIBUTE, order_job())
    other_key = run(driver, ATTRIBUTE, order_job() | {"idempotency_key": "order-created-again"})
    assert (first["replayed"], again["replayed"], other_key["replayed"]) == (False, True, True)
    assert first["data"] == again["data"] == other_key["data"]
    assert events(runtime, "affiliate.order_attributed") == [
        {"affiliate_id": 3, "affiliate_user_id": 30, "code": "FRIEND42", "order_id": 500, "user_id": 77}
    ]


def test_a_second_affiliate_for_the_same_order_replays_the_first(
    connect: Any, driver: JobDriver, runtime: Runtime
) -> None:
    run(driver, ATTRIBUTE, order_job())
    second = run(driver, ATTRIBUTE, order_job(id=4, user_id=40, code="OTHER99"))
    assert second["replayed"] is True
    assert (second["data"]["affiliate_id"], second["data"]["code"]) == (3, "FRIEND42")
    run(driver, ATTRIBUTE, order_job(order_id=501, id=4, user_id=40, code="OTHER99"))
    got = [(e["order_id"], e["affiliate_id"]) for e in events(runtime, "affiliate.order_attributed")]
    assert got == [(500, 3), (501, 4)]


def test_self_referral_and_disabled_affiliates_attribute_no_order(
    connect: Any, driver: JobDriver, runtime: Runtime
) -> None:
    own = run(driver, ATTRIBUTE, order_job(user_id=30))
    assert own["data"] == {"attributed": False, "reason": "self_referral"}
    disabled = run(driver, ATTRIBUTE, order_job(enabled=False))
    assert disabled["data"] == {"attributed": False, "reason": "affiliate_disabled"}
    assert events(runtime, "affiliate.order_attributed") == []
    # A refusal leaves the order unclaimed: a qualifying affiliate can still be attributed it.
    later = run(driver, ATTRIBUTE, order_job(id=4, user_id=40, code="OTHER99"))
    assert (later["replayed"], later["data"]["attributed"], later["data"]["affiliate_id"]) == (False, True, 4)
    assert len(events(runtime, "affiliate.order_attributed")) == 1


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        (reward_job(inv=invoice(total=30.0)), "invoice.total"),
        (reward_job(inv=invoice({"price": 20.0, "reference_type": "Service"})), "invoice.items.0.price"),
        (reward_job(inv=invoice(currency="XYZ")), "invoice.currency"),
        (reward_job(inv=invoice(currency="EURO")), "invoice.currency"),
        (reward_job(inv=invoice(total="-1.00")), "invoice.total"),
        (reward_job(inv={**invoice(), "items": []}), "invoice.items"),
        (reward_job(aff=affiliate(reward=12.5)), "affiliate.reward"),
        (reward_job(aff=affiliate(reward="150")), "affiliate.reward"),
        (reward_job(renewl=True), "renewl"),
        (signup_job() | {"user": {"id": 5, "email": "not-an-email"}}, "user.email"),
        (order_job() | {"order": {"user_id": 77}}, "order.id"),
        (order_job() | {"order": {"id": 1.5, "user_id": 77}}, "order.id"),
        (order_job() | {"order": {"id": 500, "user_id": None}}, "order.user_id"),
        (order_job() | {"order": "500"}, "order: Input should be a valid dictionary"),
        (order_job(enabled="maybe"), "affiliate.enabled"),
        (order_job() | {"code": "FRIEND42"}, "code: Extra inputs are not permitted"),
    ],
)
def test_invalid_payloads_fail_without_an_affiliate_event(
    connect: Any, driver: JobDriver, runtime: Runtime, kwargs: dict[str, Any], where: str
) -> None:
    name = SIGNUP if "user" in kwargs else ATTRIBUTE if "order" in kwargs else REWARD
    error = fail(driver, name, kwargs)
    assert error["code"] == "invalid_payload"
    assert where in error["message"]
    assert [e["type"] for e in runtime.events.read()] == ["job.failed"]
