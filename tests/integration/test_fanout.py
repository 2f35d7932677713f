"""The routing table end to end: a real worker publishes service events and fans them out to Discord."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.fakes.discord import FakeDiscord
from tests.fakes.pterodactyl import FakePterodactyl
from tests.integration.conftest import service_payload
from worker.client import PaymenterClient

pytestmark = pytest.mark.integration
TOKEN = "discord-token-SECRET-0123456789abcdef"


def test_a_created_server_reaches_each_routed_channel_once(
    redis_url: str, r: redis.Redis, start_worker: Any, fake_panel: FakePterodactyl, tmp_path: Path
) -> None:
    discord = FakeDiscord(limit=50)
    ops_url = discord.add_webhook("111111111111111111", TOKEN)
    finance_url = discord.add_webhook("222222222222222222", TOKEN + "-2")
    with discord.serve() as discord_base:
        connections = tmp_path / "routed.toml"
        connections.write_text(
            f'[connections.panel]\nextension = "servers.pterodactyl"\nhost = "{fake_panel.base_url}"\n'
            'api_key = "${PANEL_API_KEY}"\n\n'
            f'[connections.ops]\nextension = "others.discord_notifications"\nwebhook_url = "{ops_url}"\n'
            f'api_base = "{discord_base}"\n\n'
            f'[connections.finance]\nextension = "others.discord_notifications"\nwebhook_url = "{finance_url}"\n'
            f'api_base = "{discord_base}"\n\n'
            '[routes]\n"service.*" = ["ops", "finance"]\n"job.failed" = "ops"\n'
        )
        worker = start_worker(PAYMENTER_CONNECTIONS=str(connections))
        client = PaymenterClient(redis_url)
        client.wait(client.create_server("pterodactyl", connection="panel", service=service_payload(701)))
        client.wait(client.suspend_server("pterodactyl", connection="panel", service=service_payload(701)))

        deadline = time.monotonic() + 30
        while len(discord.messages("111111111111111111")) < 2 or len(discord.messages("222222222222222222")) < 2:
            assert time.monotonic() < deadline, "the routed events never reached both channels"
            time.sleep(0.1)
        time.sleep(1.0)  # nothing more may follow: each (event, channel) once
        ops = discord.messages("111111111111111111")
        finance = discord.messages("222222222222222222")
        assert len(ops) == 2
        assert len(finance) == 2
        titles = {body["embeds"][0]["title"] for body in ops}
        assert len(titles) == 2  # created and suspended, rendered as messages of their own
        assert TOKEN not in worker.log_path.read_text()
        for key in r.scan_iter("*"):
            if r.type(key) == b"string":
                assert TOKEN.encode() not in (r.get(key) or b"")
        entries = [json.loads(f[b"event"]) for _i, f in r.xrange("paymenter:events")]
        assert [e["type"] for e in entries] == ["service.created", "service.suspended"]
