"""``paymenter-worker``: run the worker, the HTTP API, Flower, a dev stack, enqueue jobs, inspect and replay."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from extensions.errors import ExtensionError


def _fail(message: str, code: int = 2) -> int:
    print(f"paymenter-worker: {message}", file=sys.stderr)
    return code


def _settings_or_exit() -> Any:
    from worker.settings import Settings, get_settings

    try:
        Settings()
    except ValidationError as exc:
        from extensions.base import validation_message

        raise SystemExit(_fail(validation_message(exc, "settings (PAYMENTER_*)"))) from None
    return get_settings()


def _start_broker() -> Any:
    """Start an embedded Redis when PAYMENTER_BROKER_URL is unset; return it (or None)."""
    from worker.embedded import ensure_broker

    data_dir = Path(os.environ.get("PAYMENTER_DATA_DIR", "var"))
    embedded = ensure_broker(data_dir)
    if embedded is not None:
        print(
            f"paymenter-worker: no PAYMENTER_BROKER_URL; embedded Redis at {embedded.url} ({embedded.dir})",
            file=sys.stderr,
        )
    return embedded


def _check_runtime() -> Any:
    from worker.runtime import load_runtime

    settings = _settings_or_exit()
    try:
        return load_runtime(settings)
    except ExtensionError as exc:
        raise SystemExit(_fail(exc.message)) from None


def cmd_run(args: argparse.Namespace) -> int:
    embedded = _start_broker()
    runtime = _check_runtime()
    settings = runtime.settings
    from celery import signals

    from worker.celery_app import app
    from worker.fanout import FanOut
    from worker.logs import configure_logging
    from worker.metrics import serve_worker_metrics
    from worker.tasks import DelayedPump

    pump = DelayedPump(app, runtime.redis)
    fanout = FanOut(app, runtime.redis, runtime.profiles, consumer=args.hostname or socket.gethostname())

    def setup_logging(loglevel: Any = None, **_: Any) -> None:  # replaces Celery's own logging set-up
        configure_logging(settings.log_format, loglevel or args.loglevel)

    setup_logging()  # already now, for what happens before Celery sets up (its start-up warnings)
    signals.setup_logging.connect(setup_logging, weak=False)
    if settings.metrics_port:
        serve_worker_metrics(settings.metrics_port, settings.metrics_host)

    def on_ready(**_: Any) -> None:
        pump.start()
        fanout.start()

    signals.worker_ready.connect(on_ready, weak=False)
    argv = [
        *(["--quiet"] if settings.log_format == "json" else []),  # no banner among the JSON lines
        "worker",
        "--pool=threads",
        f"--concurrency={args.concurrency or settings.concurrency}",
        f"--queues={args.queues}",
        "--task-events",
        f"--loglevel={args.loglevel}",
        "--without-gossip",
        "--without-mingle",
    ]
    if args.hostname:
        argv.append(f"--hostname={args.hostname}")
    try:
        app.worker_main(argv)
    finally:
        pump.stop()
        fanout.stop()
        if embedded is not None and not args.keep_broker:
            embedded.stop()
    return 0


def flower_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "flower",
        f"--address={host}",
        f"--port={port}",
        "--conf=/dev/null",
    ]


def cmd_flower(args: argparse.Namespace) -> int:
    auth = os.environ.get("PAYMENTER_FLOWER_BASIC_AUTH", "")
    if ":" not in auth:
        return _fail("refusing to start Flower without PAYMENTER_FLOWER_BASIC_AUTH=user:password")
    _start_broker()
    _check_runtime()
    env = {**os.environ, "FLOWER_BASIC_AUTH": auth}  # through the environment, never argv
    os.execvpe(sys.executable, flower_command(args.host, args.port), env)
    return 0  # pragma: no cover - exec does not return


def cmd_api(args: argparse.Namespace) -> int:
    if not os.environ.get("PAYMENTER_API_TOKEN") and not args.insecure_local:
        return _fail(
            "refusing to start the API without PAYMENTER_API_TOKEN "
            "(--insecure-local serves it without authentication on 127.0.0.1 only)"
        )
    host = "127.0.0.1" if args.insecure_local else args.host
    _start_broker()
    settings = _settings_or_exit()
    import uvicorn

    from worker.api import create_app
    from worker.logs import configure_logging

    configure_logging(settings.log_format, args.loglevel)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    app = create_app(settings, token=token or None)
    # Access lines come from the app (route templates, no query strings): uvicorn's own would log URLs.
    uvicorn.run(app, host=host, port=args.port, log_config=None, access_log=False, server_header=False)
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    embedded = _start_broker()
    _check_runtime()
    env = dict(os.environ)
    env.setdefault("PAYMENTER_FLOWER_BASIC_AUTH", "admin:admin")
    me = [sys.executable, "-m", "worker.cli"]
    api = [*me, "api", "--port", str(args.api_port)]
    if not env.get("PAYMENTER_API_TOKEN"):
        api.append("--insecure-local")
    children = [subprocess.Popen([*me, "run", "--keep-broker"], env=env)]
    children.append(subprocess.Popen(api, env=env))
    children.append(subprocess.Popen([*me, "flower", "--port", str(args.flower_port)], env=env))
    print(
        f"paymenter-worker dev: worker + API on http://127.0.0.1:{args.api_port} "
        f"({'bearer token' if env.get('PAYMENTER_API_TOKEN') else 'no auth, loopback only'}) "
        f"+ Flower on http://127.0.0.1:{args.flower_port} (user {env['PAYMENTER_FLOWER_BASIC_AUTH'].split(':')[0]})",
        file=sys.stderr,
    )
    try:
        children[0].wait()
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait()
        if embedded is not None:
            embedded.stop()
    return 0


def _client() -> Any:
    from worker.client import PaymenterClient

    settings = _settings_or_exit()
    if not settings.broker_url:
        raise SystemExit(_fail("PAYMENTER_BROKER_URL is not set"))
    key = settings.result_key.get_secret_value() if settings.result_key else None
    return PaymenterClient(settings.broker_url, settings.backend_url, result_key=key)


def cmd_enqueue(args: argparse.Namespace) -> int:
    from worker.client import JobError, JobTimeout

    try:
        kwargs = json.loads(args.json)
    except ValueError as exc:
        return _fail(f"--json is not valid JSON: {exc}")
    if not isinstance(kwargs, dict):
        return _fail("--json must be an object of keyword arguments")
    client = _client()
    job = client.enqueue(args.name, kwargs, idempotency_key=args.key)
    if not args.wait:
        print(json.dumps({"id": job.id, "task": job.task}))
        return 0
    try:
        envelope = client.wait(job, timeout=args.timeout)
    except JobError as exc:
        print(
            json.dumps(
                {
                    "id": job.id,
                    "error": {
                        "code": exc.code,
                        "message": exc.message,
                        "retryable": exc.retryable,
                        "provider_status": exc.provider_status,
                    },
                }
            )
        )
        return 1
    except JobTimeout as exc:
        return _fail(str(exc), 3)
    envelope.pop("secrets", None)  # unsealed values stay in memory; print the sealed envelope only
    print(json.dumps({"id": job.id, "result": envelope}))
    return 0


def cmd_extensions(args: argparse.Namespace) -> int:
    from extensions.registry import extension_class, list_extensions

    if args.action == "list":
        print(json.dumps(list_extensions(), indent=2))
        return 0
    if not args.name or "." not in args.name:
        return _fail("extensions show needs <category>.<slug>, e.g. servers.pterodactyl")
    category, _, slug = args.name.partition(".")
    try:
        cls = extension_class(category, slug)
    except ExtensionError as exc:
        return _fail(exc.message)
    product = getattr(cls, "get_product_config", None)
    print(
        json.dumps(
            {
                "metadata": cls.get_metadata(),
                "operations": sorted(cls.operations),
                "config": cls.get_config(),
                "product_config": product() if product else [],
            },
            indent=2,
        )
    )
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from worker.deadletters import ReplayError, replay

    runtime = _check_runtime()
    if args.action == "list":
        for record in runtime.dead_letters.public(args.limit):
            print(json.dumps(record))
        return 0
    if not args.id:
        return _fail("dead-letters replay needs a dead letter id")
    try:
        job = replay(runtime.dead_letters, _client(), args.id)
    except ReplayError as exc:
        return _fail(exc.message)
    print(json.dumps({"replayed": args.id, "id": job.id, "task": job.task}))
    return 0


def cmd_connections(args: argparse.Namespace) -> int:
    runtime = _check_runtime()
    failed = 0
    for profile in runtime.profiles:
        extension = profile.extension(profile.config)
        try:
            extension.operation("test_config")()
            outcome: dict[str, Any] = {"connection": profile.name, "extension": profile.key, "ok": True}
        except ExtensionError as exc:
            failed += 1
            outcome = {"connection": profile.name, "extension": profile.key, "ok": False, "error": exc.to_dict()}
        print(json.dumps(outcome))
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paymenter-worker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the worker (embedded Redis when PAYMENTER_BROKER_URL is unset)")
    run.add_argument("--queues", default="celery,servers,gateways,others")
    run.add_argument("--concurrency", type=int, default=None)
    run.add_argument("--loglevel", default=os.environ.get("PAYMENTER_LOGLEVEL", "INFO"))
    run.add_argument("--hostname", default=None)
    run.add_argument("--keep-broker", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_run)

    flower = sub.add_parser("flower", help="run Flower (requires PAYMENTER_FLOWER_BASIC_AUTH)")
    flower.add_argument("--host", default="127.0.0.1")
    flower.add_argument("--port", type=int, default=5555)
    flower.set_defaults(func=cmd_flower)

    api = sub.add_parser("api", help="serve the HTTP API (requires PAYMENTER_API_TOKEN)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument(
        "--insecure-local",
        action="store_true",
        help="allow running without PAYMENTER_API_TOKEN: no authentication, bound to 127.0.0.1",
    )
    api.add_argument("--loglevel", default=os.environ.get("PAYMENTER_LOGLEVEL", "INFO"))
    api.set_defaults(func=cmd_api)

    dev = sub.add_parser("dev", help="embedded Redis + worker + API + Flower")
    dev.add_argument("--flower-port", type=int, default=5555)
    dev.add_argument("--api-port", type=int, default=8000)
    dev.set_defaults(func=cmd_dev)

    enqueue = sub.add_parser("enqueue", help="enqueue a job by name")
    enqueue.add_argument("name")
    enqueue.add_argument("--json", default="{}", help="keyword arguments as a JSON object")
    enqueue.add_argument("--key", default=None, help="idempotency key")
    enqueue.add_argument("--wait", action="store_true")
    enqueue.add_argument("--timeout", type=float, default=60.0)
    enqueue.set_defaults(func=cmd_enqueue)

    ext = sub.add_parser("extensions", help="list extensions or show one")
    ext.add_argument("action", choices=["list", "show"])
    ext.add_argument("name", nargs="?")
    ext.set_defaults(func=cmd_extensions)

    dead = sub.add_parser("dead-letters", help="list or replay dead letters")
    dead.add_argument("action", choices=["list", "replay"])
    dead.add_argument("id", nargs="?")
    dead.add_argument("--limit", type=int, default=100)
    dead.set_defaults(func=cmd_dead_letters)

    conns = sub.add_parser("connections", help="check every connection profile (runs test_config)")
    conns.add_argument("action", choices=["check"])
    conns.set_defaults(func=cmd_connections)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
