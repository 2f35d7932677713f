"""Announcements: publish an announcement once, when it becomes visible (``publish``, ``withdraw``).

``publish`` is sent when an announcement is saved (or by a periodic sweep). An announcement whose
``published_at`` is still in the future re-schedules the job until then (``Pending``: through the
runtime's delayed set, no worker blocked, no long ETA); visibility is checked again when it runs: active,
scheduled, and not withdrawn since this snapshot was taken.

Idempotency: ``job.claim("announcement:<id>")`` at the moment of publishing, so each announcement is
announced once whatever the number of publish jobs; a deliberate re-announce sends ``revision`` > 0
(``announcement:<id>:r<revision>``). Editing an announced post and publishing it again is a replay.

Event: ``announcement.published`` with ``id``, ``slug``, ``title``, ``description``, ``text`` (the HTML
content as safe plain text), ``url`` and ``published_at``. Its id derives from the job key, so the
fan-out (``[routes]`` mapping it to Discord connections, each with key ``fanout:<event id>:<connection>``)
delivers it once per channel. ``withdraw`` records a withdrawal time per announcement (connection state)
that hides every snapshot not newer than it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ConfigDict, Field

from extensions.base import JobContext, OperationResult, OtherExtension, Payload
from extensions.errors import Pending
from extensions.others.announcements import mapping as m
from extensions.others.announcements.config import AnnouncementsConfig

WITHDRAWN_TTL_S = 400 * 24 * 3600  # longer than any sensible schedule


class PublishRequest(Payload):
    model_config = ConfigDict(extra="forbid", frozen=True)

    announcement: m.Announcement
    revision: int = Field(0, ge=0, description="Raise to announce the same announcement again")


class AnnouncementRef(Payload):
    """The announcement being withdrawn: its id (and ``updated_at``); the rest of a snapshot is ignored."""

    id: int | str
    updated_at: datetime | None = None


class WithdrawRequest(Payload):
    model_config = ConfigDict(extra="forbid", frozen=True)

    announcement: AnnouncementRef


class Announcements(OtherExtension[AnnouncementsConfig]):
    slug = "announcements"
    display_name = "Announcements"
    description = "Announces announcements when they become visible (the fan-out posts them to Discord)"
    Config = AnnouncementsConfig
    operations = frozenset({"publish", "withdraw"})
    payloads = {"publish": PublishRequest, "withdraw": WithdrawRequest}

    def setup(self) -> None:
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def publish(self, request: PublishRequest, job: JobContext) -> OperationResult:
        announcement, now = request.announcement, self.clock()
        state = m.visibility(announcement, now)
        withdrawn_at = job.recall(f"withdrawn:{announcement.id}")
        if state in ("draft", "unscheduled"):
            return OperationResult(data={"skipped": state, "id": announcement.id})
        if withdrawn_at is not None and m.withdrawn(announcement, withdrawn_at):
            return OperationResult(data={"skipped": "withdrawn", "id": announcement.id})
        if state == "scheduled":
            assert announcement.published_at is not None
            due = m.aware(announcement.published_at)
            raise Pending(f"announcement {announcement.id} is scheduled for {m.iso(due)}", (due - now).total_seconds())
        job.claim(m.claim_key(announcement.id, request.revision))
        event = m.published_event(announcement, self.config.app_url)
        data = {"announced": True, "id": announcement.id, "url": event["url"], "published_at": event["published_at"]}
        return OperationResult(data=data, events=[("announcement.published", event)])

    def withdraw(self, request: WithdrawRequest, job: JobContext) -> OperationResult:
        ref = request.announcement
        at = m.aware(ref.updated_at) if ref.updated_at else self.clock()
        job.remember(f"withdrawn:{ref.id}", at.isoformat(), WITHDRAWN_TTL_S)
        return OperationResult(data={"withdrawn": True, "id": ref.id, "withdrawn_at": m.iso(at)})
