"""Proxmox VE: one QEMU VM or LXC container per service, built on the product's node.

Natural key: every guest is tagged ``paymenter-svc-<service id>`` (a clone carries the same word in its
description from the clone call on, until its tags can be set). Create reserves a VM id with
``/cluster/nextid`` and saves it as a checkpoint before the create or clone call, so a retry after a
lost answer finds that guest (waiting while PVE still holds its ``create``/``clone`` lock) and a run
with its ledger lost finds the tag: neither builds a second guest. Every PVE task (create, clone,
resize, start, stop, delete) is awaited without blocking: its UPID is saved as a checkpoint and the
operation raises ``Pending`` until ``/nodes/{node}/tasks/{upid}/status`` reports it stopped; a task
that did not end ``OK`` fails the operation. Create succeeds only once the guest runs. The other
operations find the guest by its tag (or, for guests made before tagging, by the stored ``vmid`` when
that guest carries no other service's tag) and act on the node it is on now.

Checkout properties honoured: ``hostname`` (guest name, checked as a DNS name, default
``service-<id>``) and ``password`` (LXC root password, QEMU cloud-init ``cipassword``; when absent one
is generated and returned sealed). Product settings are overridden only for keys the product lists in
``overridable_settings``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from extensions.base import (
    SERVER_OPERATIONS,
    JobContext,
    OperationResult,
    ServerExtension,
    Service,
)
from extensions.errors import NotFound, Pending, ProviderRejected, ProviderUnavailable
from extensions.http import ApiRequest, HttpApi
from extensions.servers.proxmox import mapping as m
from extensions.servers.proxmox.config import ProxmoxConfig, ProxmoxProduct

POLL_DELAY = 3.0
ID_TRIES = 3


class Proxmox(ServerExtension[ProxmoxConfig]):
    slug = "proxmox"
    display_name = "Proxmox VE"
    description = "QEMU virtual machines and LXC containers on a Proxmox VE node through its API"
    Config = ProxmoxConfig
    ProductSettings = ProxmoxProduct
    operations = frozenset(SERVER_OPERATIONS) - {"login_url"}
    resource_properties = ("vmid", "ip")

    def setup(self) -> None:
        token = f"{self.config.username}={self.config.password.get_secret_value()}"
        self.api = HttpApi(
            self.config.base_url,
            provider="proxmox",
            headers={"Authorization": f"PVEAPIToken={token}", "Accept": "application/json"},
            redactor=self.redactor,
            transport=self.transport,
            ca_file=self.config.ca_file,  # a pinned CA for PVE's self-signed certificate
            error_message=m.error_message,
        )

    # --- operations ---------------------------------------------------------------------------------

    def test_config(self, service: Service | None = None, job: JobContext | None = None) -> OperationResult:
        nodes = self._send(m.nodes()) or []
        return OperationResult(data={"ok": True, "nodes": [n.get("node") for n in nodes if isinstance(n, dict)]})

    def create(self, service: Service, job: JobContext) -> OperationResult:
        s = self._settings(service)
        mark = m.marker(service.id)
        guests = self._guests()
        self._task(job, "build")  # a create or clone an earlier run started
        guest = m.pick(guests, mark) or self._reserved(job, guests, mark)
        if guest is None:
            guest = self._build(service, s, job, guests)
            self._task(job, "build")
        state = self._send(m.current(guest)) or {}
        if state.get("lock"):
            raise Pending(f"proxmox guest {guest.vmid} is locked ({state['lock']})", POLL_DELAY)
        if s.clone and state.get("status") != "running" and not job.checkpoint("start"):
            if not job.checkpoint("resize"):
                self._send(m.set_config(guest, m.clone_settings(s, mark, self._password(service, s, job))))
            self._grow(job, guest, s.disk)
        self._power(job, guest, "start", state.get("status"))
        properties = {"vmid": str(guest.vmid)}
        ip = job.checkpoint("ip") or m.tagged_ip(guest)
        if ip:
            properties["ip"] = ip.split("/")[0]
        generated = job.secret_checkpoint("password")
        return OperationResult(
            data={"vmid": guest.vmid, "node": guest.node, "type": guest.type, "status": "running"},
            properties=properties,
            secrets={"password": SecretStr(generated)} if generated else {},
        )

    def suspend(self, service: Service, job: JobContext) -> OperationResult:
        guest = self._require(service)
        if not job.checkpoint("stop"):
            self._send(m.set_config(guest, {"onboot": 0}))  # a host reboot must not start it again
        self._power(job, guest, "stop")
        return OperationResult(data={"vmid": guest.vmid, "suspended": True})

    def unsuspend(self, service: Service, job: JobContext) -> OperationResult:
        guest = self._require(service)
        if not job.checkpoint("start"):
            self._send(m.set_config(guest, {"onboot": 1}))
        self._power(job, guest, "start")
        return OperationResult(data={"vmid": guest.vmid, "suspended": False})

    def terminate(self, service: Service, job: JobContext) -> OperationResult:
        guest = self._locate(service)
        if job.checkpoint("delete"):
            self._task(job, "delete")
            return OperationResult(data={"deleted": True, "already_gone": False})
        if guest is None:
            return OperationResult(data={"deleted": False, "already_gone": True})
        self._power(job, guest, "stop")  # PVE refuses to destroy a running guest
        self._task(job, "delete", lambda: self._send(m.destroy(guest), holds=m.GONE), holds=m.GONE)
        return OperationResult(data={"vmid": guest.vmid, "deleted": True, "already_gone": False})

    def upgrade(self, service: Service, job: JobContext) -> OperationResult:
        s = self._settings(service)
        guest = self._require(service)
        if not job.checkpoint("resize"):
            self._send(m.set_config(guest, m.sizing(s, guest.type)))
        self._grow(job, guest, s.disk)
        return OperationResult(data={"vmid": guest.vmid, "cores": s.cores, "memory": s.memory, "disk": s.disk})

    # --- steps --------------------------------------------------------------------------------------

    def _settings(self, service: Service) -> ProxmoxProduct:
        settings = self.product_settings(service)
        assert isinstance(settings, ProxmoxProduct)
        return settings

    def _send(self, request: ApiRequest, holds: str | None = None) -> Any:
        """The answer's ``data``; None when PVE's 500 says the wanted state already ``holds``.

        PVE answers 500 for every failure, so its reason decides: lock and timeout errors are retried,
        the rest (bad storage, missing template...) are permanent.
        """
        response = self.api.send(request, allow={500})
        where = f"{request.method} {request.path}"
        if response.status != 500:
            return response.body.get("data") if isinstance(response.body, dict) else None
        if not m.is_envelope(response.body):
            raise self.api.classify(response, where)
        reason = m.error_message(response) or "no reason given"
        if holds and re.search(holds, reason):
            return None
        error = ProviderUnavailable if m.TRANSIENT.search(reason) else ProviderRejected
        raise error(self.redactor.text(f"proxmox {where}: HTTP 500: {reason}")[:500], 500)

    def _guests(self) -> list[m.Guest]:
        return m.parse_guests(self._send(m.resources()))

    def _locate(self, service: Service) -> m.Guest | None:
        hint = str(service.properties.get("vmid") or "")
        return m.pick(self._guests(), m.marker(service.id), int(hint) if hint.isdigit() else None)

    def _require(self, service: Service) -> m.Guest:
        guest = self._locate(service)
        if guest is None:
            raise NotFound(f"proxmox: service {service.id} has no guest", 404)
        return guest

    def _reserved(self, job: JobContext, guests: list[m.Guest], mark: str) -> m.Guest | None:
        """The guest at the id an earlier run reserved, when it is ours (or still being built)."""
        saved = job.checkpoint("vmid")
        guest = next((g for g in guests if str(g.vmid) == saved), None)
        if guest is None:
            return None
        config = self._send(m.get_config(guest)) or {}
        if config.get("lock") in m.BUILDING:  # PVE writes tags and description when the build ends
            raise Pending(f"proxmox guest {guest.vmid} is being built", POLL_DELAY)
        return guest if m.owns(config, mark) else None

    def _build(self, service: Service, s: ProxmoxProduct, job: JobContext, guests: list[m.Guest]) -> m.Guest:
        """Create or clone under a VM id saved beforehand; a taken id is replaced by a fresh one."""
        name = m.hostname(service.properties.get("hostname"), service.id)
        mark = m.marker(service.id)
        ip = None
        if s.type == "lxc" and not s.clone and s.ips:
            ip = job.checkpoint("ip") or m.free_ip(s.ips, guests)
            job.save_checkpoint("ip", ip)
        password = self._password(service, s, job)
        saved = job.checkpoint("vmid")
        vmid = int(saved) if saved and all(str(g.vmid) != saved for g in guests) else None
        for _ in range(ID_TRIES):
            vmid = vmid or m.vmid(self._send(m.next_id()))
            job.save_checkpoint("vmid", str(vmid))
            request = m.clone(s, vmid, name, mark) if s.clone else m.create(s, vmid, name, mark, password, ip)
            started = m.upid(self._send(request, holds=m.EXISTS))
            if started:
                job.save_checkpoint("build", started)
                return m.Guest(vmid, s.node, s.type)
            vmid = None  # another create took the id between nextid and our call
        raise ProviderUnavailable(f"proxmox: {ID_TRIES} reserved VM ids were taken by concurrent creates")

    def _password(self, service: Service, s: ProxmoxProduct, job: JobContext) -> str | None:
        given = str(service.properties.get("password") or "")
        if given or not m.needs_password(s):
            return given or None
        generated = job.secret_checkpoint("password") or m.random_password()
        job.save_secret_checkpoint("password", generated)  # sealed; the same one on a retry
        return generated

    def _grow(self, job: JobContext, guest: m.Guest, gib: int) -> None:
        """Grow the system disk to ``gib``; PVE refuses to shrink, so a larger disk is left alone."""

        def issue() -> Any:
            disk, size = m.main_disk(guest.type, self._send(m.get_config(guest)))
            return None if size >= gib else self._send(m.resize(guest, disk, gib))

        self._task(job, "resize", issue)

    def _power(self, job: JobContext, guest: m.Guest, action: str, status: Any = None) -> None:
        wanted = "running" if action == "start" else "stopped"

        def issue() -> Any:
            if (status or (self._send(m.current(guest)) or {}).get("status")) == wanted:
                return None
            return self._send(m.power(guest, action), holds=m.ALREADY)

        self._task(job, action, issue, holds=m.ALREADY)

    def _task(self, job: JobContext, name: str, issue: Callable[[], Any] | None = None, holds: str = "") -> None:
        """Carry the task saved under ``name`` (or the one ``issue`` starts) to its end, across runs."""
        upid = job.checkpoint(name) or (m.upid(issue()) if issue else None)
        if not upid:
            return
        job.save_checkpoint(name, upid)
        outcome = m.task_outcome(self._send(m.task_status(upid)))
        if outcome is None:
            raise Pending(f"proxmox {m.task_kind(upid)} still running", POLL_DELAY)
        job.save_checkpoint(name, "")
        if m.task_ok(outcome) or (holds and re.search(holds, outcome)):
            return
        error = ProviderUnavailable if m.TRANSIENT.search(outcome) else ProviderRejected
        raise error(f"proxmox {m.task_kind(upid)} failed: {outcome}")
