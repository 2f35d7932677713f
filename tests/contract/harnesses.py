"""Every server integration's harness: each ``tests/contract/harness_<slug>.py`` exports ``HARNESS``.

The contract suite runs over all of them; adding an integration's harness file is enough to enrol it.
"""

from __future__ import annotations

import importlib
import pkgutil

import tests.contract
from tests.contract.harness import ServerHarness


def _discover() -> list[ServerHarness]:
    found = []
    for module in sorted(pkgutil.iter_modules(tests.contract.__path__), key=lambda m: m.name):
        if module.name.startswith("harness_"):
            found.append(importlib.import_module(f"tests.contract.{module.name}").HARNESS)
    return found


SERVER_HARNESSES: list[ServerHarness] = _discover()
