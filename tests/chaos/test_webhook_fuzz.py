"""Fuzzed webhooks for every implemented gateway, driven in-process through the runtime.

Deliveries are random (bodies, headers, query, receipt times, kwargs of the wrong type) or mutations of a
genuine delivery obtained from the gateway's contract harness. Every run must end as a success or as
``JobFailed`` with a contract code, and nothing unverified may have an effect: a random delivery
publishes no ``payment.*`` event at all, and a mutated one publishes at most what the genuine delivery
itself published (the same payment, status, amount and currency).
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extensions.base import Extension
from extensions.errors import ERROR_CODES
from extensions.registry import get_extension, list_extensions
from tests.conftest import make_settings
from worker.errors import JobFailed, Reschedule
from worker.operations import operation_specs
from worker.profiles import Profiles
from worker.runtime import Delivery, Runtime

pytestmark = pytest.mark.chaos

CONNECTION = "gw"
EXAMPLES = 40
CONTRACT_CODES = set(ERROR_CODES)
GATEWAYS = list_extensions()["gateways"]


def harness_for(slug: str) -> Any:
    try:
        module = importlib.import_module(f"tests.contract.gateway_harness_{slug}")
    except ModuleNotFoundError:
        pytest.fail(
            f"gateway {slug} is implemented but has no contract harness tests/contract/gateway_harness_{slug}.py: "
            "its webhooks cannot be fuzzed without a genuine delivery",
            pytrace=False,
        )
    return module.HARNESS


def spec(name: str) -> Any:
    return next(s for s in operation_specs() if s.name == name)


class Outcome:
    def __init__(self, result: dict[str, Any] | None, error: dict[str, Any] | None, events: list[dict[str, Any]]):
        self.result = result
        self.error = error
        self.events = events

    @property
    def payments(self) -> list[tuple[Any, ...]]:
        fields = ("transaction_id", "amount", "currency", "invoice_id")
        return sorted(
            (e["type"], *(e["data"].get(f) for f in fields)) for e in self.events if e["type"].startswith("payment.")
        )


Snapshot = dict[bytes, bytes]


def runtime_from(snapshot: Snapshot) -> Runtime:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    for key, value in snapshot.items():
        client.restore(key, 0, value)
    return Runtime(make_settings(), Profiles(), client)


def snapshot_of(runtime: Runtime) -> Snapshot:
    """The worker's Redis state (what ``pay`` remembered), events left out."""
    return {key: runtime.redis.dump(key) for key in runtime.redis.keys("*") if key != b"paymenter:events"}


def run(extension: Extension, name: str, kwargs: Any, state: Snapshot | Runtime, max_runs: int = 20) -> Outcome:
    """One job on a runtime of its own restored from ``state``, re-run the way the task layer re-runs it."""
    runtime = state if isinstance(state, Runtime) else runtime_from(state)
    runtime.bind(CONNECTION, extension)
    for retries in range(max_runs):
        try:
            result = runtime.execute(spec(name), (), kwargs, Delivery("fuzz", retries))
            return Outcome(result, None, runtime.events.read())
        except Reschedule:
            continue
        except JobFailed as failed:
            return Outcome(None, failed.error, runtime.events.read())
    raise AssertionError(f"{name} still re-scheduling after {max_runs} runs: {kwargs!r:.500}")


texts = st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1"))
header_maps = st.dictionaries(st.text(min_size=1, max_size=40), st.text(max_size=200), max_size=6)
moments = st.one_of(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(  # noqa: DTZ001
        datetime.isoformat
    ),
    st.text(max_size=30),
    st.none(),
)


@st.composite
def random_webhooks(draw: st.DrawFn, genuine: dict[str, Any]) -> Any:
    names = list(genuine.get("headers", {}))
    headers = draw(header_maps)
    if names and draw(st.booleans()):  # the gateway's own header names with values of no provenance
        headers.update({draw(st.sampled_from(names)): draw(st.text(max_size=200))})
    delivery = {"body": draw(texts), "headers": headers, "query": draw(st.dictionaries(texts, texts, max_size=4))}
    if (received := draw(moments)) is not None:
        delivery["received_at"] = received
    return draw(
        st.one_of(
            st.just(delivery),
            st.fixed_dictionaries({}, optional={"body": texts, "headers": header_maps}),
            st.one_of(st.none(), st.integers(), texts, st.lists(texts, max_size=3)),
        )
    )


@st.composite
def mutated_webhooks(draw: st.DrawFn, genuine: dict[str, Any]) -> dict[str, Any]:
    delivery = {**genuine, "headers": dict(genuine.get("headers", {})), "query": dict(genuine.get("query", {}))}
    for _ in range(draw(st.integers(1, 3))):
        body = delivery["body"]
        kind = draw(
            st.sampled_from(
                ["flip", "insert", "delete", "truncate", "append", "header", "drop_header", "query", "moment"]
            )
        )
        if kind == "flip" and body:
            i = draw(st.integers(0, len(body) - 1))
            delivery["body"] = body[:i] + draw(st.characters().filter(lambda c, old=body[i]: c != old)) + body[i + 1 :]
        elif kind == "insert":
            i = draw(st.integers(0, len(body)))
            delivery["body"] = body[:i] + draw(st.text(min_size=1, max_size=20)) + body[i:]
        elif kind == "delete" and body:
            i = draw(st.integers(0, len(body) - 1))
            delivery["body"] = body[:i] + body[i + draw(st.integers(1, 20)) :]
        elif kind == "truncate":
            delivery["body"] = body[: draw(st.integers(0, max(len(body) - 1, 0)))]
        elif kind == "append":
            delivery["body"] = body + draw(st.text(min_size=1, max_size=40))
        elif kind == "header" and delivery["headers"]:
            name = draw(st.sampled_from(sorted(delivery["headers"])))
            delivery["headers"][name] = draw(st.text(max_size=200))
        elif kind == "drop_header" and delivery["headers"]:
            delivery["headers"].pop(draw(st.sampled_from(sorted(delivery["headers"]))))
        elif kind == "query":
            delivery["query"][draw(st.text(min_size=1, max_size=20))] = draw(st.text(max_size=40))
        elif kind == "moment":
            shift = draw(st.integers(-(10**7), 10**7))
            delivery["received_at"] = (datetime.now(UTC) + timedelta(seconds=shift)).isoformat()
    return delivery


@pytest.mark.timeout(240)
@pytest.mark.parametrize("slug", GATEWAYS)
def test_fuzzed_webhooks_never_crash_and_unverified_ones_have_no_effect(slug: str) -> None:
    harness = harness_for(slug)
    fake = harness.make_fake()
    with fake.serve() as base_url:
        extension = get_extension("gateways", slug, harness.config(base_url))
        origin = runtime_from({})
        pay = {"connection": CONNECTION, **harness.pay_kwargs(4242, "31.70", "EUR")}
        paid = run(extension, f"gateways.{slug}.pay", pay, origin)
        assert paid.result is not None, paid.error
        after_pay = snapshot_of(origin)  # every example starts from here: a fresh ledger, the payment offered
        genuine = harness.settle(fake, paid.result["data"], "succeeded")
        control = run(extension, f"gateways.{slug}.webhook", {"connection": CONNECTION, "webhook": genuine}, after_pay)
        assert control.result is not None, control.error
        allowed = control.payments
        assert allowed, "the genuine delivery published no payment event: the fuzz would prove nothing"

        def check(outcome: Outcome, may_pay: bool) -> None:
            if outcome.error is not None:
                assert outcome.error.get("code") in CONTRACT_CODES, outcome.error
                assert set(outcome.error) == {"code", "message", "retryable", "provider_status"}
            else:
                assert outcome.result is not None
                assert outcome.result["status"] == "succeeded"
            if may_pay:
                assert all(p in allowed for p in outcome.payments), (outcome.payments, allowed)
            else:
                assert outcome.payments == [], outcome.payments

        fuzz = settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )

        def deliver(kwargs: Any) -> Outcome:
            return run(extension, f"gateways.{slug}.webhook", kwargs, after_pay)

        @fuzz
        @given(random_webhooks(genuine))
        def random_delivery(webhook: Any) -> None:
            check(deliver({"connection": CONNECTION, "webhook": webhook}), False)

        @fuzz
        @given(mutated_webhooks(genuine))
        def mutated_delivery(webhook: dict[str, Any]) -> None:
            check(deliver({"connection": CONNECTION, "webhook": webhook}), True)

        @fuzz
        @given(st.dictionaries(st.text(max_size=20), texts | st.integers() | st.none(), max_size=4))
        def stray_kwargs(extra: dict[str, Any]) -> None:
            check(deliver({"connection": CONNECTION, "webhook": genuine, **extra}), True)

        random_delivery()
        mutated_delivery()
        stray_kwargs()
