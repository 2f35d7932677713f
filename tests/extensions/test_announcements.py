"""Announcements: scheduled publishing through Pending, once per announcement, withdrawals, visibility,
HTML turned into safe text, and the chain to Discord through the fan-out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest

from extensions.others.announcements import Announcements
from extensions.others.announcements import mapping as m
from extensions.others.discord_notifications import DiscordNotifications
from tests.conftest import JobDriver, make_settings, spec_for
from tests.fakes.discord import FakeDiscord
from worker.errors import Reschedule
from worker.fanout import FanOut
from worker.profiles import Profile, Profiles
from worker.runtime import Delivery, Runtime

PUBLISH = "others.announcements.publish"
WITHDRAW = "others.announcements.withdraw"
APP = "https://billing.example.com"
NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(clock: Clock, app_url: str | None = APP) -> Announcements:
    ext = Announcements({"app_url": app_url})
    ext.clock = clock
    return ext


@pytest.fixture
def news(runtime: Runtime, clock: Clock) -> Runtime:
    runtime.bind("news", make(clock))
    return runtime


def announcement(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": 4,
        "title": "Maintenance window",
        "description": "Nodes reboot on Sunday",
        "content": "<p>We upgrade <b>all</b> nodes.</p>",
        "slug": "maintenance window",
        "is_active": True,
        "published_at": (NOW - timedelta(minutes=5)).isoformat(),
        "updated_at": (NOW - timedelta(hours=1)).isoformat(),
    }
    return values | overrides


def publish(**overrides: Any) -> dict[str, Any]:
    return {"connection": "news", "announcement": announcement(**overrides)}


def execute(runtime: Runtime, name: str, kwargs: dict[str, Any], task_id: str, run: int = 0) -> dict[str, Any]:
    return runtime.execute(spec_for(name), (), kwargs, Delivery(task_id, run))


def published(runtime: Runtime) -> list[dict[str, Any]]:
    return [e for e in runtime.events.read() if e["type"] == "announcement.published"]


def test_a_due_publish_emits_one_event_with_safe_text_and_a_link(news: Runtime, driver: JobDriver) -> None:
    result = driver.run(PUBLISH, publish())
    (event,) = published(news)
    assert event["data"] == {
        "id": 4,
        "slug": "maintenance window",
        "title": "Maintenance window",
        "description": "Nodes reboot on Sunday",
        "text": "We upgrade all nodes.",
        "url": f"{APP}/announcements/maintenance%20window",
        "published_at": "2025-05-01T11:55:00Z",
    }
    assert result["data"]["announced"] is True
    assert result["idempotency_key"] == "others.announcements.publish:news:announcement:4"


def test_a_future_publish_waits_until_its_time_then_runs_the_same_job(news: Runtime, clock: Clock) -> None:
    kwargs = publish(published_at="2025-05-01T14:30:00+02:00")  # 12:30 UTC: 30 minutes from now
    with pytest.raises(Reschedule) as waiting:
        execute(news, PUBLISH, kwargs, "t")
    assert waiting.value.kind == "poll"
    assert waiting.value.countdown == 1800
    assert published(news) == []
    clock.now += timedelta(minutes=30)
    assert execute(news, PUBLISH, kwargs, "t", 1)["data"]["announced"] is True
    assert [e["data"]["published_at"] for e in published(news)] == ["2025-05-01T12:30:00Z"]


def test_publishing_twice_announces_once(news: Runtime, driver: JobDriver) -> None:
    first = driver.run(PUBLISH, publish(), task_id="a")
    edited = driver.run(PUBLISH, publish(title="Maintenance window (edited)"), task_id="b")
    keyed = driver.run(PUBLISH, {**publish(), "idempotency_key": "save-77"}, task_id="c")
    assert [first["replayed"], edited["replayed"], keyed["replayed"]] == [False, True, True]
    assert len(published(news)) == 1


def test_a_new_revision_announces_again(news: Runtime, driver: JobDriver) -> None:
    driver.run(PUBLISH, publish(), task_id="a")
    again = driver.run(PUBLISH, {**publish(), "revision": 1}, task_id="b")
    assert again["replayed"] is False
    first, second = published(news)
    assert first["id"] != second["id"]  # a distinct event, so the fan-out delivers it again


def test_withdrawn_before_it_is_due_means_no_event(news: Runtime, driver: JobDriver, clock: Clock) -> None:
    kwargs = publish(published_at=(NOW + timedelta(hours=1)).isoformat())
    with pytest.raises(Reschedule):
        execute(news, PUBLISH, kwargs, "t")
    withdrawn = driver.run(WITHDRAW, {"connection": "news", "announcement": {"id": 4, "title": "ignored"}}, "w")
    assert withdrawn["data"]["withdrawn_at"] == "2025-05-01T12:00:00Z"
    clock.now += timedelta(hours=1)
    assert execute(news, PUBLISH, kwargs, "t", 1)["data"] == {"skipped": "withdrawn", "id": 4}
    assert published(news) == []


def test_published_again_after_a_withdrawal_is_announced(news: Runtime, driver: JobDriver, clock: Clock) -> None:
    driver.run(WITHDRAW, {"connection": "news", "announcement": {"id": 4}}, "w")
    clock.now += timedelta(minutes=10)
    stale = driver.run(PUBLISH, publish(), task_id="old")  # a snapshot taken before the withdrawal
    fresh = driver.run(PUBLISH, publish(updated_at=clock.now.isoformat()), task_id="new")
    assert stale["data"]["skipped"] == "withdrawn"
    assert fresh["data"]["announced"] is True
    assert len(published(news)) == 1


@pytest.mark.parametrize(
    ("is_active", "published_at", "outcome"),
    [
        (True, "past", "announced"),
        (True, "future", "scheduled"),
        (True, None, "unscheduled"),
        ("0", "past", "draft"),
        (False, "future", "draft"),
        (False, None, "draft"),
    ],
)
def test_visibility_truth_table(news: Runtime, is_active: Any, published_at: str | None, outcome: str) -> None:
    when = {"past": NOW - timedelta(seconds=1), "future": NOW + timedelta(seconds=90), None: None}[published_at]
    kwargs = publish(is_active=is_active, published_at=when.isoformat() if when else None)
    expected = "visible" if outcome == "announced" else outcome
    assert m.visibility(m.Announcement.model_validate(kwargs["announcement"]), NOW) == expected
    if outcome == "scheduled":
        with pytest.raises(Reschedule) as waiting:
            execute(news, PUBLISH, kwargs, "t")
        assert waiting.value.countdown == 90
    else:
        result = execute(news, PUBLISH, kwargs, "t")
        assert result["data"].get("skipped", "announced") == outcome
    assert len(published(news)) == (1 if outcome == "announced" else 0)


def test_html_becomes_safe_plain_text() -> None:
    html = (
        "<h2>Tonight &amp; tomorrow</h2><script>alert('x')</script><style>p{color:red}</style>"
        "<p>Prices &lt;b&gt;drop&lt;/b&gt; &eacute;&nbsp;&#8364;5 — see <a href='/pricing'>our prices</a> "
        "or <a href='javascript:alert(1)'>this</a> and <a href='https://status.example.com'>"
        "https://status.example.com</a>.<br>Thanks @everyone</p>"
        "<ul><li>One<ul><li>One.a</li><li>One.b</li></ul></li><li>Two</li></ul>"
        "<ol><li>First</li><li>Second</li></ol><!-- hidden --><p>\x07Bye   now</p>"
    )
    assert m.html_to_text(html, APP) == (
        "Tonight & tomorrow\n\n"
        f"Prices <b>drop</b> é €5 — see our prices ({APP}/pricing) or this and https://status.example.com.\n"
        "Thanks @\u200beveryone\n\n"
        "• One\n  • One.a\n  • One.b\n• Two\n\n"
        "1. First\n2. Second\n\n"
        "Bye now"
    )


def test_text_is_length_limited() -> None:
    text = m.html_to_text("<p>" + "word " * 2000 + "</p>")
    assert len(text) <= m.TEXT_LIMIT
    assert text.endswith("...")


def test_without_an_app_url_there_is_no_link(runtime: Runtime, clock: Clock) -> None:
    runtime.bind("news", make(clock, app_url=None))
    JobDriver(runtime).run(PUBLISH, publish(content="<a href='/x'>relative</a>"))
    (event,) = published(runtime)
    assert event["data"]["url"] is None
    assert event["data"]["text"] == "relative"


def test_payloads_are_strict(news: Runtime, driver: JobDriver) -> None:
    error = driver.fail(PUBLISH, {**publish(), "announcment": {}})
    assert error["code"] == "invalid_payload"
    assert driver.fail(PUBLISH, publish(slug=""), "t2")["code"] == "invalid_payload"


# --- to Discord, through the fan-out ------------------------------------------------------------------


class RunningApp:
    def __init__(self, driver: JobDriver) -> None:
        self.driver = driver
        self.runs: list[dict[str, Any]] = []

    def send_task(self, name: str, kwargs: dict[str, Any], task_id: str, queue: str) -> None:
        self.runs.append(self.driver.run(name, kwargs, task_id=task_id))


def test_an_announcement_reaches_each_discord_channel_once(redis_client: fakeredis.FakeRedis, clock: Clock) -> None:
    fake = FakeDiscord()
    hooks = {
        "staff": ("111111111111111111", "staff-token-0123456789"),
        "public": ("222222222222222222", "pub-token-0123456789"),
    }
    profiles: dict[str, Profile] = {"news": Profile("news", Announcements, make(clock).config)}
    instances: dict[str, Any] = {"news": make(clock)}
    for name, (hook_id, token) in hooks.items():
        url = fake.add_webhook(hook_id, token)
        instances[name] = DiscordNotifications({"webhook_url": url}, transport=fake.transport())
        profiles[name] = Profile(name, DiscordNotifications, instances[name].config)
    runtime = Runtime(
        make_settings(), Profiles(profiles, {"announcement.published": ["staff", "public"]}), redis_client
    )
    for name, instance in instances.items():
        runtime.bind(name, instance)
    driver = JobDriver(runtime)
    app = RunningApp(driver)
    fanout = FanOut(app, redis_client, runtime.profiles, consumer="w1")  # type: ignore[arg-type]
    fanout.ensure_group()
    driver.run(PUBLISH, publish(), task_id="a")
    driver.run(PUBLISH, publish(), task_id="b")  # a second save of the same announcement: a replay
    (event,) = published(runtime)
    runtime.events.publish(event)  # the stream holding the same event twice (a job run twice)
    fanout.run_once(block_ms=10)
    for hook_id, _ in hooks.values():
        (body,) = fake.messages(hook_id)
        embed = body["embeds"][0]
        assert embed["title"] == "Maintenance window"
        assert embed["url"] == f"{APP}/announcements/maintenance%20window"
        assert embed["description"] == "Nodes reboot on Sunday\n\nWe upgrade all nodes."
    assert [r["replayed"] for r in app.runs] == [False, False, True, True]
