"""Every server integration's harness; the contract suite runs over each of them."""

from __future__ import annotations

from tests.contract.harness import ServerHarness
from tests.contract.harness_pterodactyl import PterodactylHarness

SERVER_HARNESSES: list[ServerHarness] = [PterodactylHarness()]
