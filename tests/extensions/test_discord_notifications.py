"""DiscordNotifications against the strict fake: messages per event, limits, secrets, mentions, rate limits
shared by workers, dead webhooks, the event filter and the fan-out end to end."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import fakeredis
import pytest

from extensions.errors import InvalidConfig
from extensions.others.discord_notifications import DiscordNotifications
from extensions.others.discord_notifications import mapping as m
from extensions.payments import payment_event
from tests.conftest import JobDriver, make_settings, spec_for
from tests.fakes.discord import FakeDiscord
from worker.errors import Reschedule
from worker.events import build_event
from worker.fanout import FanOut
from worker.profiles import Profile, Profiles
from worker.runtime import Delivery, Runtime

NOTIFY = "others.discord_notifications.notify"
HOOK_ID = "123456789012345678"
TOKEN = "Zm9vYmFy-webhook_token.0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"
APP = "https://billing.example.com"
ALL = json.dumps(list(m.PAYMENTER_EVENTS.values()))  # as Paymenter stores the multi-select
USER = {"id": 7, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
EUR = {"code": "EUR", "prefix": "€", "suffix": "", "format": "1.000,00"}
USD = {"code": "USD", "prefix": "$", "suffix": "", "format": "1,000.00"}
ADA = f"[User Ada Lovelace]({APP}/admin/users/7/edit)"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeDiscord:
    fake = FakeDiscord(clock)
    fake.add_webhook(HOOK_ID, TOKEN)
    return fake


def url(hook_id: str = HOOK_ID, token: str = TOKEN) -> str:
    return f"https://discord.com/api/webhooks/{hook_id}/{token}"


def make(fake: FakeDiscord, clock: Clock, **config: Any) -> DiscordNotifications:
    values = {"webhook_url": url(), "events": ALL, "app_url": APP + "/", **config}
    ext = DiscordNotifications(values, transport=fake.transport())
    ext.clock = clock
    return ext


@pytest.fixture
def bound(runtime: Runtime, fake: FakeDiscord, clock: Clock) -> Runtime:
    runtime.bind("discord", make(fake, clock))
    return runtime


def job(event: str, data: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"connection": "discord", "event": event, "data": data}
    return kwargs | ({"idempotency_key": key} if key else {})


def sent(fake: FakeDiscord, hook_id: str = HOOK_ID) -> list[dict[str, Any]]:
    return [body["embeds"][0] for body in fake.messages(hook_id)]


def fields(embed: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed["fields"]}


# --- Paymenter's twelve events ---------------------------------------------------------------------------

PAYMENTER = [
    (
        "order.created",
        {"order": {"id": 3, "user": USER, "currency": EUR, "services": [
            {"id": 11, "price": "1200.50", "quantity": 2, "product": {"name": "VPS L"}},
            {"id": 12, "price": "0.99", "quantity": 1, "product": {"name": "IPv4"}},
        ]}},
        {"ID": f"[Order #3]({APP}/admin/orders/3/edit)", "User": ADA, "Total": "€2.401,99",
         "VPS L": f"[Service #11]({APP}/admin/services/11/edit) (€2.401,00)"},
    ),
    (
        "order.updated",
        {"order": {"id": 3}, "changes": {"status": ["pending", "active"], "updated_at": ["a", "b"]}},
        {"ID": f"[Order #3]({APP}/admin/orders/3/edit)", "Status": "pending -> active"},
    ),
    (
        "user.created",
        {"user": {**USER, "properties": {"company": "Analytical Engines"}}},
        {"ID": "7", "Name": "Ada Lovelace", "Email": "ada@example.com", "company": "Analytical Engines"},
    ),
    (
        "user.updated",
        {"user": USER, "changes": {"first_name": ["Ada", "Augusta"], "email": ["a@x.io", "b@x.io"]}},
        {"Name": "Ada Lovelace", "First name": "Ada -> Augusta", "Email": "********"},
    ),
    (
        "invoice.created",
        {"invoice": {"id": 5, "user": USER, "currency": USD, "items": [
            {"description": "Hosting", "price": "1000.10", "quantity": 3}]}},
        {"ID": f"[Invoice #5]({APP}/admin/invoices/5/edit)", "Total": "$3,000.30", "Hosting": "3 x $1,000.10"},
    ),
    (
        "invoice.updated",
        {"invoice": {"id": 5}, "changes": {"due_at": ["2025-05-01 00:00:00", "2025-06-01 00:00:00"],
                                           "total": ["10.00", 12], "paid": [True, None]}},
        {"Due at": "2025-05-01 00:00:00 -> 2025-06-01 00:00:00", "Total": "10.00 -> 12", "Paid": "1 -> null"},
    ),
    ("invoice.paid", {"invoice": {"id": 5}}, {"ID": f"[Invoice #5]({APP}/admin/invoices/5/edit)"}),
    (
        "ticket.created",
        {"ticket": {"id": 9, "subject": "Server down", "user": USER}},
        {"Id": f"[Ticket #9]({APP}/admin/tickets/9/edit)", "User id": ADA, "Subject": "Server down"},
    ),
    (
        "ticket.updated",
        {"ticket": {"id": 9}, "changes": {"priority": ["low", "high"], "assigned_to": [None, 4]}},
        {"Priority": "low -> high", "Assigned to": "-> 4"},
    ),
    (
        "ticket.replied",
        {"ticketMessage": {"id": 1, "ticket_id": 9, "message": "Works *now* [x](https://evil.example)"}},
        {"Ticket id": f"[Ticket #9]({APP}/admin/tickets/9/edit)",
         "Message": r"Works \*now\* \[x\](https://evil.example)"},
    ),
    (
        "service.created",
        {"service": {"id": 11, "user": USER, "price": "4.99", "quantity": 2, "currency": USD,
                     "product": {"name": "Web S"}}},
        {"ID": f"[Service #11]({APP}/admin/services/11/edit)", "User": ADA, "Product": "Web S", "Price": "$9.98"},
    ),
    (
        "service.updated",
        {"service": {"id": 11}, "changes": {"status": ["pending", "active"]}},
        {"ID": f"[Service #11]({APP}/admin/services/11/edit)", "Status": "pending -> active"},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("event", "data", "expected"), PAYMENTER, ids=[p[0] for p in PAYMENTER])
def test_each_paymenter_event_renders_its_fields_and_links(
    bound: Runtime, driver: JobDriver, fake: FakeDiscord, event: str, data: dict[str, Any], expected: dict[str, str]
) -> None:
    result = driver.run(NOTIFY, job(event, data))
    (embed,) = sent(fake)
    assert fields(embed).items() >= expected.items()
    assert embed["title"] == m.PAYMENTER_EVENTS[event]
    assert all(f["inline"] for f in embed["fields"])
    assert result["data"] == {"message_id": fake.webhooks[HOOK_ID].messages[0]["id"], "event": event}
    assert fake.messages(HOOK_ID)[0]["allowed_mentions"] == {"parse": []}
    assert fake.webhooks[HOOK_ID].messages[0]["query"] == {"wait": "true"}


def test_labels_are_accepted_and_each_kind_has_its_colour(bound: Runtime, driver: JobDriver, fake: FakeDiscord) -> None:
    fake.limit = 100
    for i, (event, data, _) in enumerate(PAYMENTER):
        driver.run(NOTIFY, job(m.PAYMENTER_EVENTS[event], data), task_id=f"t{i}")
    embeds = sent(fake)
    assert [e["title"] for e in embeds] == [m.PAYMENTER_EVENTS[p[0]] for p in PAYMENTER]
    colours = {e["title"]: e["color"] for e in embeds}
    assert colours["Invoice Paid"] != colours["Invoice Updated"] != colours["Ticket Created"]
    assert len(set(colours.values())) >= 3


def test_without_an_app_url_links_are_plain_labels(runtime: Runtime, fake: FakeDiscord, clock: Clock) -> None:
    runtime.bind("discord", make(fake, clock, app_url=""))
    JobDriver(runtime).run(NOTIFY, job("invoice.paid", {"invoice": {"id": 5}}))
    assert fields(sent(fake)[0]) == {"ID": "Invoice #5"}


# --- this worker's own events ------------------------------------------------------------------------------

WORKER = [
    (
        "service.created",
        {"connection": "ptero", "extension": "servers.pterodactyl", "service_id": 11, "server_id": 42,
         "properties": {"cpanel_username": "ada1", "password": "hunter2-hidden"}, "sealed": {"password": "gAAAA"}},
        {"Service": f"[Service #11]({APP}/admin/services/11/edit)", "Extension": "servers.pterodactyl",
         "Connection": "ptero", "Server id": "42", "Cpanel username": "ada1"},
    ),
    (
        "payment.succeeded",
        payment_event("payment.succeeded", gateway="stripe", invoice_id=5, amount=Decimal("19.99"),
                      currency="eur", transaction_id="pi_1", fee=Decimal("0.59"))[1],
        {"Invoice": f"[Invoice #5]({APP}/admin/invoices/5/edit)", "Amount": "19.99 EUR", "Fee": "0.59 EUR",
         "Gateway": "stripe", "Transaction id": r"pi\_1"},
    ),
    (
        "affiliate.rewarded",
        {"affiliate_id": 3, "invoice_id": 8, "amount": "2.50", "currency": "EUR", "code": "ADA"},
        {"Invoice": f"[Invoice #8]({APP}/admin/invoices/8/edit)", "Amount": "2.50 EUR", "Affiliate id": "3"},
    ),
    (
        "subscription.cancelled",
        {"gateway": "paypal", "subscription_id": "I-ABC", "service_id": 11},
        {"Service": f"[Service #11]({APP}/admin/services/11/edit)", "Subscription id": "I-ABC"},
    ),
    (
        "job.failed",
        {"task": "servers.proxmox.create", "task_id": "t-9", "attempts": 4, "dead_letter_id": "dl-1",
         "error": {"code": "provider_unavailable", "message": "gave up after 4 attempts", "retryable": True}},
        {"Task": "servers.proxmox.create", "Attempts": "4", "Dead letter id": "dl-1"},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("event", "data", "expected"), WORKER, ids=[w[0] for w in WORKER])
def test_worker_events_render_messages_of_their_own(
    bound: Runtime, driver: JobDriver, fake: FakeDiscord, event: str, data: dict[str, Any], expected: dict[str, str]
) -> None:
    driver.run(NOTIFY, job(event, data))
    (embed,) = sent(fake)
    assert fields(embed).items() >= expected.items()
    assert "hunter2-hidden" not in json.dumps(fake.messages(HOOK_ID))
    assert "gAAAA" not in json.dumps(fake.messages(HOOK_ID))


def test_job_failed_shows_the_error_and_announcements_link_out(
    bound: Runtime, driver: JobDriver, fake: FakeDiscord
) -> None:
    driver.run(NOTIFY, job("job.failed", WORKER[-1][1]), task_id="a")
    published = {"id": 1, "slug": "hello", "title": "Maintenance", "description": "Sunday night",
                 "text": "We upgrade the nodes.", "url": f"{APP}/announcements/hello",
                 "published_at": "2025-05-01T12:00:00Z"}  # fmt: skip
    driver.run(NOTIFY, job("announcement.published", published), task_id="b")
    failed, announced = sent(fake)
    assert failed["title"] == "Job Failed"
    assert failed["description"] == "provider\\_unavailable: gave up after 4 attempts"
    assert failed["color"] == m.RED
    assert announced["title"] == "Maintenance"
    assert announced["url"] == f"{APP}/announcements/hello"
    assert announced["description"] == "Sunday night\n\nWe upgrade the nodes."
    assert announced["timestamp"] == "2025-05-01T12:00:00Z"


# --- limits and secrets -----------------------------------------------------------------------------------


def test_a_huge_update_is_clamped_to_discord_limits_and_accepted(
    bound: Runtime, driver: JobDriver, fake: FakeDiscord
) -> None:
    changes = {f"field_{i}": ["", "é" * 5000] for i in range(40)}
    driver.run(NOTIFY, job("order.updated", {"order": {"id": 1}, "changes": changes}))
    (embed,) = sent(fake)  # the strict fake would have answered 400 otherwise
    assert len(embed["fields"]) == 25
    assert embed["fields"][-1]["value"] == "…and 17 more"
    assert all(0 < len(f["value"]) <= 1024 for f in embed["fields"])
    size = len(embed["title"]) + len(embed.get("description", "")) + len(embed["footer"]["text"])
    assert size + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"]) <= 6000


def test_long_values_are_cut_by_characters_and_empty_ones_become_a_dash() -> None:
    embed = m.Embed("T", "", [("Message", "ü" * 2000), ("Blank", "  ")])
    body = m.fit(embed, "2025-01-01T00:00:00+00:00")
    assert body["fields"][0]["value"] == "ü" * 1021 + "..."
    assert body["fields"][1]["value"] == "-"
    long = m.fit(m.Embed("x" * 300, "d" * 5000, []), "now")
    assert len(long["title"]) == 256
    assert len(long["description"]) == 4096


SECRETS = {"password": "pw-Secret-111", "tfa_secret": "JBSWY3DPEHPK3PXP", "api_key": "ak-Secret-333",
           "token": "tok-Secret-444", "remember_token": "rt-Secret-555"}  # fmt: skip


@pytest.mark.parametrize("event", ["user.updated", "user.created", "order.updated", "service.created"])
def test_sensitive_values_are_never_rendered(bound: Runtime, driver: JobDriver, fake: FakeDiscord, event: str) -> None:
    kind = event.partition(".")[0]
    model = {**USER, **SECRETS, "properties": dict(SECRETS)}
    changes = {key: ["old-" + value, value] for key, value in SECRETS.items()} | {"first_name": ["A", "B"]}
    data = {kind: model, "changes": changes} if kind != "service" else {**SECRETS, "service_id": 1}
    result = driver.run(NOTIFY, job(event, data))
    seen = json.dumps(fake.bodies) + json.dumps(result) + json.dumps(bound.events.read())
    assert len(fake.messages(HOOK_ID)) == 1
    for value in SECRETS.values():
        assert value not in seen


def test_the_webhook_token_stays_out_of_errors_results_and_logs(
    bound: Runtime, driver: JobDriver, fake: FakeDiscord, captured_logs: pytest.LogCaptureFixture
) -> None:
    driver.run(NOTIFY, job("invoice.paid", {"invoice": {"id": 5}}), task_id="ok")
    fake.script(500, times=10)
    error = driver.fail(NOTIFY, job("invoice.paid", {"invoice": {"id": 6}}))
    assert error["code"] == "provider_unavailable"
    assert "/api/webhooks/" in error["message"]
    assert any("HTTP Request" in r.getMessage() for r in captured_logs.records)  # httpx did log the URL
    everything = captured_logs.text + json.dumps(error) + json.dumps(bound.events.read())
    assert TOKEN not in everything
    assert TOKEN not in json.dumps(bound.dead_letters.list())


# --- mentions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ping_type", "content", "allowed"),
    [
        ("user", "<@222333444555666777>", {"parse": [], "users": ["222333444555666777"]}),
        ("role", "<@&222333444555666777>", {"parse": [], "roles": ["222333444555666777"]}),
        ("none", None, {"parse": []}),
        ("", None, {"parse": []}),  # unset + an id: Paymenter pinged a role; no ping here
    ],
)
def test_mentions_ping_only_what_is_configured(
    runtime: Runtime, fake: FakeDiscord, clock: Clock, ping_type: str, content: str | None, allowed: dict[str, Any]
) -> None:
    runtime.bind("discord", make(fake, clock, ping_type=ping_type, ping_id="222333444555666777"))
    JobDriver(runtime).run(NOTIFY, job("invoice.paid", {"invoice": {"id": 5}}))
    (body,) = fake.messages(HOOK_ID)
    assert body.get("content") == content
    assert body["allowed_mentions"] == allowed


# --- rate limits, shared by workers ----------------------------------------------------------------------------


def execute(runtime: Runtime, kwargs: dict[str, Any], task_id: str, run: int = 0) -> dict[str, Any]:
    return runtime.execute(spec_for(NOTIFY), (), kwargs, Delivery(task_id, run))


def test_429_re_schedules_after_retry_after_and_waits_without_calling_again(
    bound: Runtime, fake: FakeDiscord, clock: Clock
) -> None:
    fake.rate_limit(retry_after=1.5)
    kwargs = job("invoice.paid", {"invoice": {"id": 5}})
    with pytest.raises(Reschedule) as first:
        execute(bound, kwargs, "t")
    assert first.value.kind == "poll"
    assert 1.5 <= first.value.countdown <= 2.0
    with pytest.raises(Reschedule) as early:  # re-run before the reset: no call at all
        execute(bound, kwargs, "t", 1)
    assert early.value.countdown <= 2.0
    assert fake.count("POST") == 1
    clock.advance(1.5)
    assert execute(bound, kwargs, "t", 2)["status"] == "succeeded"
    assert fake.count("POST") == 2
    assert len(fake.messages(HOOK_ID)) == 1


def test_a_global_429_pauses_the_webhook_for_other_jobs_too(bound: Runtime, fake: FakeDiscord, clock: Clock) -> None:
    fake.rate_limit(retry_after=3.0, is_global=True)
    with pytest.raises(Reschedule):
        execute(bound, job("invoice.paid", {"invoice": {"id": 5}}), "a")
    with pytest.raises(Reschedule) as other:
        execute(bound, job("ticket.created", {"ticket": {"id": 9}}), "b")
    assert 2.9 <= other.value.countdown <= 3.5
    assert fake.count("POST") == 1


def test_an_empty_bucket_seen_by_one_worker_makes_the_other_wait(
    redis_client: fakeredis.FakeRedis, fake: FakeDiscord, clock: Clock
) -> None:
    fake.limit = 1
    first, second = (Runtime(make_settings(), Profiles(), redis_client) for _ in range(2))
    first.bind("discord", make(fake, clock))
    second.bind("discord", make(fake, clock))  # another worker: its own instance, the same Redis
    execute(first, job("invoice.paid", {"invoice": {"id": 5}}), "a")  # answered Remaining 0, reset after 2 s
    with pytest.raises(Reschedule) as waited:
        execute(second, job("invoice.paid", {"invoice": {"id": 6}}), "b")
    assert 2.0 <= waited.value.countdown <= 2.5
    assert fake.count("POST") == 1  # the second worker did not spend a request on a sure 429
    clock.advance(2.0)
    assert execute(second, job("invoice.paid", {"invoice": {"id": 6}}), "b", 1)["status"] == "succeeded"
    assert [fields(e)["ID"].split("]")[0] for e in sent(fake)] == ["[Invoice #5", "[Invoice #6"]


# --- errors -----------------------------------------------------------------------------------------------


def test_a_deleted_webhook_is_marked_dead_and_never_called_again(
    bound: Runtime, driver: JobDriver, fake: FakeDiscord
) -> None:
    fake.delete(HOOK_ID)
    error = driver.fail(NOTIFY, job("invoice.paid", {"invoice": {"id": 5}}), task_id="a")
    assert error["code"] == "not_found"
    assert "Unknown Webhook" in error["message"]
    again = driver.fail(NOTIFY, job("invoice.paid", {"invoice": {"id": 6}}), task_id="b")
    assert again["code"] == "not_found"
    assert "disabled" in again["message"]
    assert fake.count("POST") == 1
    assert driver.retries == []


def test_a_revoked_token_is_marked_dead_too(runtime: Runtime, fake: FakeDiscord, clock: Clock) -> None:
    runtime.bind("discord", make(fake, clock, webhook_url=url(token="revoked-token-0123456789")))
    driver = JobDriver(runtime)
    assert driver.fail(NOTIFY, job("invoice.paid", {"invoice": {"id": 5}}), "a")["code"] == "auth_failed"
    assert driver.fail(NOTIFY, job("invoice.paid", {"invoice": {"id": 5}}), "b")["code"] == "auth_failed"
    assert fake.count("POST") == 1


def test_400_is_permanent_with_discords_reason(bound: Runtime, driver: JobDriver, fake: FakeDiscord) -> None:
    errors = {
        "embeds": {"0": {"url": {"_errors": [{"code": "URL_TYPE_INVALID_URL", "message": "Not a well formed URL."}]}}}
    }
    fake.script(400, {"message": "Invalid Form Body", "code": 50035, "errors": errors})
    error = driver.fail(NOTIFY, job("invoice.paid", {"invoice": {"id": 5}}))
    assert error["code"] == "provider_rejected"
    assert "Invalid Form Body; embeds.0.url: Not a well formed URL." in error["message"]
    assert fake.count("POST") == 1
    assert driver.retries == []


def test_5xx_is_retried_then_delivered_once(bound: Runtime, driver: JobDriver, fake: FakeDiscord) -> None:
    fake.script(500)
    result = driver.run(NOTIFY, job("invoice.paid", {"invoice": {"id": 5}}))
    assert result["status"] == "succeeded"
    assert len(driver.retries) == 1
    assert len(fake.messages(HOOK_ID)) == 1


@pytest.mark.parametrize(
    ("event", "data"),
    [("order.shipped", {}), ("invoice.created", {"invoice": {"id": 1, "items": [{"price": 9.99, "quantity": 1}]}})],
)
def test_unknown_events_and_float_money_are_invalid_payloads(
    bound: Runtime, driver: JobDriver, fake: FakeDiscord, event: str, data: dict[str, Any]
) -> None:
    assert driver.fail(NOTIFY, job(event, data))["code"] == "invalid_payload"
    assert fake.count("POST") == 0


# --- what is sent at all ----------------------------------------------------------------------------------


def test_only_selected_paymenter_events_are_sent(runtime: Runtime, fake: FakeDiscord, clock: Clock) -> None:
    runtime.bind("discord", make(fake, clock, events=["Invoice Paid"]))
    driver = JobDriver(runtime)
    skipped = driver.run(NOTIFY, job("ticket.created", {"ticket": {"id": 9}}), task_id="a")
    driver.run(NOTIFY, job("invoice.paid", {"invoice": {"id": 5}}), task_id="b")
    driver.run(NOTIFY, job("service.created", {"service_id": 11, "extension": "servers.cpanel"}), task_id="c")
    assert skipped["data"] == {"skipped": "event ticket.created is not selected", "event": "ticket.created"}
    assert [e["title"] for e in sent(fake)] == ["Invoice Paid", "Service Created"]  # routes choose worker events


@pytest.mark.parametrize(
    "changes",
    [
        {"updated_at": ["2025-01-01 00:00:00", "2025-01-02 00:00:00"]},
        {"status": ["unpaid", "paid"], "paid_at": [None, "x"]},
    ],
)
def test_updates_with_nothing_to_tell_send_nothing(
    bound: Runtime, driver: JobDriver, fake: FakeDiscord, changes: dict[str, Any]
) -> None:
    result = driver.run(NOTIFY, job("invoice.updated", {"invoice": {"id": 5}, "changes": changes}))
    assert result["data"]["skipped"] == "no visible changes"
    assert fake.count("POST") == 0


def test_config_is_validated_without_echoing_the_url() -> None:
    for bad in (
        "http://discord.com/api/webhooks/1234567/abcdefghijkl",
        f"https://evil.example/api/webhooks/{HOOK_ID}/{TOKEN}",
    ):
        with pytest.raises(InvalidConfig) as info:
            DiscordNotifications({"webhook_url": bad})
        assert "webhook_url" in info.value.message
        assert "abcdefghijkl" not in info.value.message
        assert TOKEN not in info.value.message
    with pytest.raises(InvalidConfig, match="events"):
        DiscordNotifications({"webhook_url": url(), "events": '["Invoice Exploded"]'})
    with pytest.raises(InvalidConfig, match="ping_id"):
        DiscordNotifications({"webhook_url": url(), "ping_id": "@everyone"})


def test_api_base_points_at_a_loopback_server(runtime: Runtime, fake: FakeDiscord, clock: Clock) -> None:
    with fake.serve() as base:
        ext = DiscordNotifications({"webhook_url": url(), "events": ALL, "api_base": base})
        runtime.bind("discord", ext)
        result = JobDriver(runtime).run(NOTIFY, job("invoice.paid", {"invoice": {"id": 5}}))
    assert result["data"]["message_id"] == fake.webhooks[HOOK_ID].messages[0]["id"]


# --- the fan-out, end to end -------------------------------------------------------------------------------


class RunningApp:
    """The fan-out's Celery app, running each job through the runtime at once."""

    def __init__(self, driver: JobDriver) -> None:
        self.driver = driver
        self.results: list[dict[str, Any]] = []

    def send_task(self, name: str, kwargs: dict[str, Any], task_id: str, queue: str) -> None:
        self.results.append(self.driver.run(name, kwargs, task_id=task_id))


def test_fanout_sends_one_message_per_event_and_channel(
    redis_client: fakeredis.FakeRedis, fake: FakeDiscord, clock: Clock
) -> None:
    sales_id = "876543210987654321"
    fake.add_webhook(sales_id, TOKEN[::-1])
    ops, sales = make(fake, clock), make(fake, clock, webhook_url=url(sales_id, TOKEN[::-1]))
    profiles = {"ops": Profile("ops", DiscordNotifications, ops.config),
                "sales": Profile("sales", DiscordNotifications, sales.config)}  # fmt: skip
    routes = {"service.created": ["ops", "sales"], "payment.*": ["ops"]}
    runtime = Runtime(make_settings(), Profiles(profiles, routes), redis_client)
    runtime.bind("ops", ops)
    runtime.bind("sales", sales)
    app = RunningApp(JobDriver(runtime))
    fanout = FanOut(app, redis_client, runtime.profiles, consumer="w1")  # type: ignore[arg-type]
    fanout.ensure_group()
    event = build_event("service.created", "servers.cpanel", "servers.cpanel.create:c:11", {"service_id": 11})
    runtime.events.publish(event)
    runtime.events.publish(event)  # the same event again (its job ran twice): same id
    runtime.events.publish(build_event("service.suspended", "servers.cpanel", None, {"service_id": 11}))
    fanout.run_once(block_ms=10)
    assert len(app.results) == 4
    assert sum(r["replayed"] for r in app.results) == 2
    assert [e["title"] for e in sent(fake)] == ["Service Created"]
    assert [e["title"] for e in sent(fake, sales_id)] == ["Service Created"]
    assert fields(sent(fake)[0])["Service"] == f"[Service #11]({APP}/admin/services/11/edit)"
