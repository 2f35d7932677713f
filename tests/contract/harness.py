"""What each server integration supplies to run the shared contract suite over it.

A harness knows how to build its fake, a connection config pointing at it, a service payload, and how
to read the outcome from the fake's state (how many resources a service has, whether it is suspended).
Register a harness in ``SERVER_HARNESSES`` (tests/contract/harnesses.py) and the whole suite runs
over it.
"""

from __future__ import annotations

from typing import Any, Protocol

from tests.fakes.base import FakeProvider


class ServerHarness(Protocol):
    slug: str
    # A secret value the config carries; the suite searches for it everywhere a secret must not be.
    secret: str
    # Regex (on "METHOD /path") of the call that creates the resource, for the lost-answer test.
    create_call: str
    # Regex of a call every operation makes, for transient/permanent failure injection.
    any_call: str

    def make_fake(self) -> FakeProvider: ...

    def config(self, base_url: str) -> dict[str, Any]: ...

    def service(self, service_id: int) -> dict[str, Any]: ...

    def resources(self, fake: FakeProvider, service_id: int) -> int:
        """How many provider resources (servers, accounts, VMs) exist for this service."""
        ...

    def is_suspended(self, fake: FakeProvider, service_id: int) -> bool: ...

    def upgrade_service(self, service: dict[str, Any]) -> dict[str, Any]:
        """The same service with a product change that ``upgrade`` must apply."""
        ...

    def is_upgraded(self, fake: FakeProvider, service_id: int) -> bool: ...
