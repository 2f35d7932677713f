"""Virtualizor: one VPS per service on a Virtualizor master, through its Admin API.

Natural key: Virtualizor keeps nothing of ours on a VPS, so a service's VPS is its ``server_id`` property
(the ``vpsid``) and, before create has answered, the checkout ``hostname`` owned by the Virtualizor user
with the customer's e-mail. Create, resumable at every step:

1. adopts the VPS named by ``server_id`` or by the job's ``vpsid`` checkpoint when it exists;
2. before its first ``addvs`` records which VPSes already have that hostname, owner and plan; a later run
   (lost answer, timeout, worker killed) adopts the one VPS that appeared since, stops with ``conflict``
   when several did, waits ``SETTLE`` seconds for a slow ``addvs`` to land, and only then sends it again;
3. waits for the build task with ``Pending``; a failed build is ``provider_rejected``.

Root and panel passwords are derived from a per-job nonce and the API credentials, so a resumed create
returns the same sealed secrets without storing them. The other operations use ``server_id`` and fall
back to hostname + owner (``conflict`` when ambiguous); terminate of a VPS that is gone succeeds.

Checkout ``properties`` honoured: ``hostname`` and ``os``; the plan overrides (``ram``, ``space``,
``cores``, ``ips``...) only for keys the product lists in ``overridable_settings``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from pydantic import SecretStr

from extensions.base import SERVER_OPERATIONS, JobContext, OperationResult, ServerExtension, Service
from extensions.errors import Conflict, InvalidConfig, NotFound, Pending, ProviderRejected, ProviderUnavailable
from extensions.http import ApiRequest, HttpApi
from extensions.servers.virtualizor import mapping as m
from extensions.servers.virtualizor.config import VirtualizorConfig, VirtualizorProduct

SERVER_ID = "server_id"
MAX_PAGES = 20
TIMEOUT = httpx.Timeout(120.0, connect=10.0)  # addvs answers only once the master has placed the VPS
SETTLE = 120.0  # how long an unanswered addvs may still land
POLL = 10.0


class _QueryCredentials(httpx.BaseTransport):
    """Adds the API key and pass to the query string below httpx, whose INFO log line shows the URL it sent.

    As ``HttpApi`` default params they would reach that log line (the worker quiets httpx, a library user
    or a test capturing logs does not).
    """

    def __init__(self, inner: httpx.BaseTransport, credentials: dict[str, str]) -> None:
        self.inner, self.credentials = inner, credentials

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url.copy_merge_params(self.credentials)
        signed = httpx.Request(
            request.method, url, headers=request.headers, stream=request.stream, extensions=request.extensions
        )
        return self.inner.handle_request(signed)

    def close(self) -> None:
        self.inner.close()


class Virtualizor(ServerExtension[VirtualizorConfig]):
    slug = "virtualizor"
    display_name = "Virtualizor"
    description = "VPSes on a Virtualizor master through its Admin API"
    Config = VirtualizorConfig
    ProductSettings = VirtualizorProduct
    operations = frozenset(SERVER_OPERATIONS)
    resource_properties = (SERVER_ID,)

    def setup(self) -> None:
        self.cfg = self.config
        self.api = self._client(self.config.port)
        self.panel = self._client(self.config.client_port)  # end-user panel, for SSO

    def _client(self, port: int) -> HttpApi:
        credentials = {
            "adminapikey": self.cfg.key.get_secret_value(),
            "adminapipass": self.cfg.password.get_secret_value(),
        }
        inner = self.transport or httpx.HTTPTransport(verify=self.cfg.tls() or True)
        return HttpApi(
            self.cfg.url(port),
            provider="virtualizor",
            params={"api": "json"},
            redactor=self.redactor,
            transport=_QueryCredentials(inner, credentials),
            timeout=TIMEOUT,
            error_in_body=m.body_error,
            error_message=m.error_message,
        )

    # --- operations ---------------------------------------------------------------------------------

    def test_config(self, service: Service | None = None, job: JobContext | None = None) -> OperationResult:
        self._call(m.get("users", reslen=1))
        return OperationResult(data={"ok": True})

    def create(self, service: Service, job: JobContext) -> OperationResult:
        checkout, settings = m.parse_checkout(service.properties), self._settings(service)
        known = str(service.properties.get(SERVER_ID) or job.checkpoint("vpsid") or "")
        if known and (vps := self._vps(known)) is not None:
            return self._built(vps, job)
        plan = self._plan(settings)
        nonce = job.checkpoint("nonce") or secrets.token_hex(16)
        job.save_checkpoint("nonce", nonce)
        uid = self._user(service, job, nonce)
        mine = [v for v in self._search(checkout.hostname, uid) if str(v.get("plid")) == plan["plid"]]
        earlier = self._earlier_attempt(job, mine, checkout.hostname)
        if earlier is not None:
            job.save_checkpoint("vpsid", str(earlier["vpsid"]))
            return self._built(earlier, job)
        job.save_checkpoint("sent", str(time.time()))
        form = m.addvs_form(settings, plan, checkout, uid, self._password(nonce, "root"))
        vps = m.new_vps(self._confirmed(m.post("addvs", form)))
        job.save_checkpoint("vpsid", str(vps["vpsid"]))
        return self._built(vps, job)

    def suspend(self, service: Service, job: JobContext) -> OperationResult:
        return self._suspension(service, True)

    def unsuspend(self, service: Service, job: JobContext) -> OperationResult:
        return self._suspension(service, False)

    def terminate(self, service: Service, job: JobContext) -> OperationResult:
        vps = self._locate(service)
        if vps is None:
            return OperationResult(data={"deleted": False, "already_gone": True})
        vpsid = str(vps["vpsid"])
        try:
            self._confirmed(m.post("vs", {"delete": vpsid}))
        except ProviderRejected:
            if self._vps(vpsid) is not None:
                raise
            return OperationResult(data={"vpsid": vpsid, "deleted": False, "already_gone": True})
        return OperationResult(data={"vpsid": vpsid, "deleted": True, "already_gone": False})

    def upgrade(self, service: Service, job: JobContext) -> OperationResult:
        vpsid = str(self._require(service)["vpsid"])
        settings = self._settings(service)
        plan = self._plan(settings)
        self._confirmed(m.post("managevps", m.managevps_form(vpsid, settings, plan), vpsid=vpsid))
        return OperationResult(data={"vpsid": vpsid, "plid": plan["plid"], "plan": settings.planname})

    def login_url(self, service: Service, job: JobContext) -> OperationResult:
        """A one-time SSO link into the end-user panel: a credential, so it is sealed."""
        vpsid = str(self._require(service)["vpsid"])
        url = m.sso_url(self.cfg.url(self.cfg.client_port), self._call(m.get("sso", svs=vpsid), self.panel), vpsid)
        return OperationResult(data={"vpsid": vpsid}, secrets={"login_url": SecretStr(url)})

    # --- steps --------------------------------------------------------------------------------------

    def _call(self, request: ApiRequest, api: HttpApi | None = None) -> dict[str, Any]:
        """The JSON body of a call; a busy/locked VPS is retryable, a non-JSON answer a config problem."""
        body = (api or self.api).send(request).body
        where = f"virtualizor act={m.act(request)}"
        if not isinstance(body, dict):
            raise InvalidConfig(f"{where}: answer is not JSON (wrong port, bad API key or IP not allowed for API)")
        if found := m.messages(body):
            raise ProviderUnavailable(self.redactor.text(f"{where}: {', '.join(found)}"))
        return body

    def _confirmed(self, request: ApiRequest) -> dict[str, Any]:
        body = self._call(request)
        if not body.get("done"):
            raise ProviderRejected(f"virtualizor act={m.act(request)}: the panel did not confirm the change")
        return body

    def _pages(self, key: str, request: Callable[[int], ApiRequest]) -> Iterator[dict[str, Any]]:
        for page in range(1, MAX_PAGES + 1):
            items = m.entries(self._call(request(page)), key)
            yield from items
            if len(items) < m.PAGE:
                return

    def _settings(self, service: Service) -> VirtualizorProduct:
        settings = self.product_settings(service)
        assert isinstance(settings, VirtualizorProduct)
        return settings

    def _password(self, nonce: str, purpose: str) -> str:
        secret = f"{self.cfg.key.get_secret_value()}:{self.cfg.password.get_secret_value()}"
        return m.derive_password(secret, f"{purpose}:{nonce}")

    def _plan(self, settings: VirtualizorProduct) -> dict[str, Any]:
        """The plan named exactly ``planname`` for ``virt`` (the API's filter is a search)."""
        pages = self._pages("plans", lambda page: m.find_plans(settings.planname, settings.virt, page))
        plan = next((p for p in pages if m.is_plan(p, settings.planname, settings.virt)), None)
        if plan is None:
            raise NotFound(f"virtualizor: no {settings.virt} plan is named {settings.planname!r}")
        return {**plan, "plid": str(plan["plid"])}

    def _find_user(self, email: str) -> str | None:
        return m.find_user(self._call(m.get("users", email=email)), email)

    def _user(self, service: Service, job: JobContext, nonce: str) -> str:
        """The uid of the Virtualizor user with the customer's e-mail, created (with a known password) if absent."""
        email, user = service.user.email, service.user
        if (uid := self._find_user(email)) is not None:
            return uid
        job.save_checkpoint("panel_user", "1")  # from here the user may exist with this job's password
        request = m.add_user(email, user.first_name or "", user.last_name or "", self._password(nonce, "panel"))
        try:
            self._confirmed(request)
        except ProviderRejected:
            if (uid := self._find_user(email)) is None:
                raise
            job.save_checkpoint("panel_user", "")  # someone else created it: its password is not ours
            return uid
        if (uid := self._find_user(email)) is None:
            raise ProviderRejected("virtualizor: the new user is not found by e-mail")
        return uid

    def _vps(self, vpsid: str) -> dict[str, Any] | None:
        return next(
            (v for v in self._pages("vs", lambda p: m.find_vps(p, vpsid=vpsid)) if str(v.get("vpsid")) == vpsid), None
        )

    def _search(self, hostname: str, uid: str) -> list[dict[str, Any]]:
        pages = self._pages("vs", lambda page: m.find_vps(page, vpshostname=hostname))
        return [v for v in pages if m.same_host(v, hostname) and str(v.get("uid")) == uid]

    def _locate(self, service: Service) -> dict[str, Any] | None:
        """The service's VPS by ``server_id``, else by hostname and owner; None when there is none."""
        if known := service.properties.get(SERVER_ID):
            return self._vps(str(known))
        hostname = m.parse_checkout(service.properties).hostname
        uid = self._find_user(service.user.email)
        found = self._search(hostname, uid) if uid is not None else []
        if len(found) > 1:
            raise Conflict(f"virtualizor: {len(found)} VPSes of this customer are named {hostname}; set server_id")
        return found[0] if found else None

    def _require(self, service: Service) -> dict[str, Any]:
        vps = self._locate(service)
        if vps is None:
            raise NotFound(f"virtualizor: service {service.id} has no VPS", 404)
        return vps

    def _built(self, vps: dict[str, Any], job: JobContext) -> OperationResult:
        vpsid = str(vps["vpsid"])
        state, progress = m.build_state(
            m.entries(self._call(m.get("tasks", vpsid=vpsid, action="addvs")), "tasks"), vpsid
        )
        if state == "failed":
            raise ProviderRejected(f"virtualizor: the build of VPS {vpsid} failed (see its task log)")
        if state == "running":
            raise Pending(f"virtualizor: VPS {vpsid} is being built ({progress}%)", POLL)
        sealed: dict[str, SecretStr] = {}
        if nonce := job.checkpoint("nonce"):
            sealed["root_password"] = SecretStr(self._password(nonce, "root"))
            if job.checkpoint("panel_user"):
                sealed["panel_password"] = SecretStr(self._password(nonce, "panel"))
        data = {"vpsid": vpsid, "hostname": vps.get("hostname"), "ips": m.ips(vps), "uid": str(vps.get("uid", ""))}
        return OperationResult(data=data, properties={SERVER_ID: vpsid}, secrets=sealed)

    def _earlier_attempt(self, job: JobContext, mine: list[dict[str, Any]], hostname: str) -> dict[str, Any] | None:
        """The VPS an earlier ``addvs`` of this job made: the one match that did not exist before it."""
        before = job.checkpoint("before")
        if before is None:
            job.save_checkpoint("before", ",".join(str(v["vpsid"]) for v in mine))
            return None
        new = [v for v in mine if str(v["vpsid"]) not in before.split(",")]
        if len(new) > 1:
            listed = ", ".join(str(v["vpsid"]) for v in new)
            raise Conflict(f"virtualizor: VPSes {listed} appeared for {hostname}; an admin must pick one")
        sent = job.checkpoint("sent")
        if not new and sent and time.time() - float(sent) < SETTLE:
            raise Pending("virtualizor: waiting to see whether the unanswered addvs lands", POLL)
        return new[0] if new else None

    def _suspension(self, service: Service, suspend: bool) -> OperationResult:
        vps = self._require(service)
        vpsid = str(vps["vpsid"])
        if m.is_suspended(vps) != suspend:
            self._confirmed(m.get("vs", **{"suspend" if suspend else "unsuspend": vpsid}))
            after = self._vps(vpsid)
            if after is None:
                raise NotFound(f"virtualizor: VPS {vpsid} is gone", 404)
            if m.is_suspended(after) != suspend:  # applied by a task on the node: look again
                raise Pending(f"virtualizor: VPS {vpsid} suspension not applied yet", POLL)
        return OperationResult(data={"vpsid": vpsid, "suspended": suspend})
