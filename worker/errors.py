"""The exception a failed job ends with; its only argument is the error object of DESIGN §3."""

from __future__ import annotations

from typing import Any


class JobFailed(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error)
        self.error = error

    def __str__(self) -> str:
        return f"{self.error.get('code')}: {self.error.get('message')}"


class Reschedule(Exception):
    """Run this job again after ``countdown`` seconds (a retry, a poll, or a busy lease)."""

    def __init__(self, countdown: float, reason: str, kind: str = "retry") -> None:
        super().__init__(countdown, reason, kind)
        self.countdown = countdown
        self.reason = reason
        self.kind = kind  # "retry" (a failed attempt), "poll" (provider still working), "busy" (lease held)


class Replay(Exception):
    """The job's key already succeeded: end with the stored envelope, marked ``replayed``."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result)
        self.result = result
