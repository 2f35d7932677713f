from __future__ import annotations

from typing import Any

import fakeredis
import pytest

from extensions.base import ExtensionConfig, OtherExtension
from extensions.errors import InvalidConfig
from worker.events import EventStream, build_event
from worker.fanout import FanOut
from worker.profiles import Profile, Profiles, parse_routes


class Pager(OtherExtension):
    slug = "pager"
    display_name = "Pager"
    Config = ExtensionConfig
    operations = frozenset({"notify"})


class Mute(OtherExtension):
    slug = "mute"
    display_name = "Mute"
    Config = ExtensionConfig
    operations = frozenset({"publish"})


class RecordingApp:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_task(self, name: str, kwargs: dict[str, Any], task_id: str, queue: str) -> None:
        self.sent.append({"name": name, "kwargs": kwargs, "task_id": task_id, "queue": queue})


PROFILES = {"ops": Profile("ops", Pager, ExtensionConfig()), "quiet": Profile("quiet", Mute, ExtensionConfig())}


def make(routes: dict[str, list[str]]) -> tuple[FanOut, RecordingApp, EventStream]:
    client = fakeredis.FakeRedis()
    app = RecordingApp()
    fanout = FanOut(app, client, Profiles(PROFILES, routes), consumer="w1")  # type: ignore[arg-type]
    fanout.ensure_group()
    return fanout, app, EventStream(client, 1000)


def test_routed_events_become_notify_jobs_once_per_event_and_channel() -> None:
    fanout, app, stream = make({"service.*": ["ops"], "payment.succeeded": ["ops"]})
    created = build_event("service.created", "servers.x", "k1", {"service_id": 1})
    stream.publish(created)
    stream.publish(build_event("payment.failed", "gateways.x", "k2", {}))
    assert fanout.run_once(block_ms=10) == 2
    (job,) = app.sent
    assert job["name"] == "others.pager.notify"
    assert job["queue"] == "others"
    assert job["kwargs"]["event"] == "service.created"
    assert job["kwargs"]["idempotency_key"] == f"fanout:{created['id']}:ops"
    stream.publish(created)  # the same event again (a job run twice) maps to the same job id
    fanout.run_once(block_ms=10)
    assert app.sent[1]["task_id"] == job["task_id"]


def test_a_failing_channel_is_not_told_about_its_own_failures() -> None:
    fanout, app, stream = make({"job.failed": ["ops"]})
    stream.publish(build_event("job.failed", "others.pager", None, {"task": "others.pager.notify"}))
    stream.publish(build_event("job.failed", "servers.x", None, {"task": "servers.x.create"}))
    fanout.run_once(block_ms=10)
    assert [j["kwargs"]["data"]["task"] for j in app.sent] == ["servers.x.create"]


def test_routes_are_validated_at_start() -> None:
    with pytest.raises(InvalidConfig, match="no connection profile named 'ghost'"):
        parse_routes({"service.created": ["ghost"]}, PROFILES)
    with pytest.raises(InvalidConfig, match="cannot notify"):
        parse_routes({"service.created": "quiet"}, PROFILES)
    assert parse_routes({"*": "ops"}, PROFILES) == {"*": ["ops"]}
