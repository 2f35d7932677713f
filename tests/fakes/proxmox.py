"""A stateful Proxmox VE API: guests (QEMU and LXC) on nodes, and the tasks that change them.

Modelled on PVE's rules where they matter to a client:

- every mutating call returns a task UPID; its effect (lock released, power state, size, removal) lands
  only when the task ends, ``task_steps`` requests after it started (the fake's clock advances one
  step per request served), and a task's status reads ``running`` until then;
- a guest being created or cloned exists at once with only ``lock: create``/``clone``; its full config
  (tags, description) is written when the build task ends, and a failed build removes it;
- calls racing a lock fail "VM is locked (...)"; create on a taken id fails "already exists";
- power semantics: QEMU stop on a stopped VM is a no-op task, QEMU start on a running VM is a task that
  fails "already running"; LXC answers 500 "not running"/"already running" synchronously; destroying a
  running guest fails; a missing guest is 500 "Configuration file ... does not exist";
- resize refuses to shrink; the ``Authorization: PVEAPIToken=<id>=<secret>`` header is required (401).

Knobs beyond the base ones: ``task_steps``, ``fail_task(kind, exitstatus)`` (the next task of that kind,
e.g. ``qmcreate``, ends with that exit status).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx

from tests.fakes.base import FakeProvider

API = "/api2/json"
TOKEN_ID = "root@pam!paymenter"
SECRET = "5f0c3a6e-91d2-4b7e-a8c4-2d9e6f1b0a73"
NODE = "pve1"
DISK = re.compile(r"^(ide|sata|scsi|virtio)\d+$")
PRODUCT = {
    "node": NODE,
    "storage": "local-lvm",
    "type": "qemu",
    "cores": "2",
    "memory": "2048",
    "disk": "20",
    "bridge": "vmbr0",
    "model": "virtio",
    "firewall": "1",
    "os": "none",
    "storageType": "scsi",
    "storageFormat": "raw",
    "ostype": "l26",
    "sockets": "1",
    "cloudinit": "0",
    "clone": "0",
    "unprivileged": "0",
}
LXC_PRODUCT = {
    **PRODUCT,
    "type": "lxc",
    "template": "local:vztmpl/debian-12-standard_12.2-1_amd64.tar.zst",
    "ostypelxc": "debian",
    "swap": "512",
    "unprivileged": "1",
}


def _error(status: int, message: str, errors: dict[str, str] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"data": None, "message": message + "\n"}
    if errors:
        body["errors"] = errors
    return httpx.Response(status, json=body)


def _ok(data: Any) -> httpx.Response:
    return httpx.Response(200, json={"data": data})


def size_gib(value: str) -> float:
    found = re.search(r"size=(\d+)([MGT])", value)
    assert found, value
    return int(found.group(1)) * {"M": 1 / 1024, "G": 1, "T": 1024}[found.group(2)]


class FakeProxmox(FakeProvider):
    def __init__(self, token_id: str = TOKEN_ID, secret: str = SECRET) -> None:
        super().__init__()
        self.auth = f"PVEAPIToken={token_id}={secret}"
        self.token_id = token_id
        self.task_steps = 3
        self.clock = 0
        self.guests: dict[int, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self._task_failures: dict[str, str] = {}

    # --- world building and state ---------------------------------------------------------------
    def add_guest(
        self, vmid: int, kind: str, config: dict[str, Any], status: str = "stopped", template: bool = False
    ) -> dict[str, Any]:
        guest = {"vmid": vmid, "type": kind, "node": NODE, "status": status, "lock": None, "config": dict(config)}
        guest.update(template=template, password=None, pool=None)
        self.guests[vmid] = guest
        return guest

    def fail_task(self, kind: str, exitstatus: str) -> None:
        self._task_failures[kind] = exitstatus

    def guests_for(self, service_id: int | str) -> list[dict[str, Any]]:
        marker = f"paymenter-svc-{service_id}"
        return [
            g
            for g in self.guests.values()
            if marker in re.split(r"[;,\s]+", str(g["config"].get("tags", "")))
            or marker in str(g["config"].get("description", "")).split()
        ]

    def guest_of(self, service_id: int | str) -> dict[str, Any]:
        (guest,) = self.guests_for(service_id)
        return guest

    def running_tasks(self) -> int:
        return sum(1 for t in self.tasks.values() if t["exitstatus"] is None)

    # --- tasks ------------------------------------------------------------------------------------
    def _task(self, kind: str, vmid: int, effect: Callable[[], None], fail: Callable[[], None] | None = None) -> str:
        upid = f"UPID:{NODE}:{len(self.tasks) + 4096:08X}:0000ABCD:{self.clock:08X}:{kind}:{vmid}:{self.token_id}:"
        outcome = self._task_failures.pop(kind, "OK")
        self.tasks[upid] = {"ends": self.clock + self.task_steps, "exitstatus": None, "outcome": outcome}
        self.tasks[upid].update(effect=effect, fail=fail)
        return upid

    def _advance(self) -> None:
        for task in self.tasks.values():
            if task["exitstatus"] is None and task["ends"] <= self.clock:
                task["exitstatus"] = task["outcome"]
                if task["outcome"] == "OK":
                    task["effect"]()
                elif task["fail"] is not None:
                    task["fail"]()

    # --- dispatch ---------------------------------------------------------------------------------
    def route(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != self.auth:
            return _error(401, "authentication failure")
        self.clock += 1
        self._advance()
        path = request.url.path.removeprefix(API)
        form = dict(parse_qsl(request.content.decode())) if request.content else {}
        form.update(request.url.params)
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if method == request.method and match:
                response: httpx.Response = handler(form, *match.groups())
                return response
        return _error(501, f"Method '{request.method} {path}' not implemented")

    def _routes(self) -> list[tuple[str, str, Any]]:
        guest = r"/nodes/([^/]+)/(qemu|lxc)/(\d+)"
        return [
            ("GET", "/nodes", lambda f: _ok([{"node": NODE, "status": "online"}])),
            ("GET", "/cluster/resources", self._resources),
            ("GET", "/cluster/nextid", self._next_id),
            ("POST", r"/nodes/([^/]+)/(qemu|lxc)", self._create),
            ("POST", guest + "/clone", self._clone),
            ("GET", guest + "/config", lambda f, *g: self._with(g, lambda x: _ok(x["config"]))),
            ("PUT", guest + "/config", self._set_config),
            ("PUT", guest + "/resize", self._resize),
            ("POST", guest + r"/status/(start|stop)", self._power),
            ("GET", guest + "/status/current", self._current),
            ("DELETE", guest, self._destroy),
            ("GET", r"/nodes/([^/]+)/tasks/([^/]+)/status", self._task_status),
        ]

    def _with(self, ids: tuple[str, ...], then: Callable[[dict[str, Any]], httpx.Response]) -> httpx.Response:
        node, kind, vmid = ids[0], ids[1], int(ids[2])
        guest = self.guests.get(vmid)
        if guest is None or guest["node"] != node or guest["type"] != kind:
            folder = "qemu-server" if kind == "qemu" else "lxc"
            return _error(500, f"Configuration file 'nodes/{node}/{folder}/{vmid}.conf' does not exist")
        return then(guest)

    @staticmethod
    def _locked(guest: dict[str, Any]) -> httpx.Response | None:
        return _error(500, f"VM is locked ({guest['lock']})") if guest["lock"] else None

    def _resources(self, form: dict[str, str]) -> httpx.Response:
        items = []
        for g in self.guests.values():
            item = {"id": f"{g['type']}/{g['vmid']}", "type": g["type"], "vmid": g["vmid"], "node": g["node"]}
            item.update(status=g["status"], template=int(g["template"]), name=g["config"].get("name"))
            if g["config"].get("tags"):
                item["tags"] = g["config"]["tags"]
            items.append(item)
        return _ok(items if form.get("type") in (None, "vm") else [])

    def _next_id(self, form: dict[str, str]) -> httpx.Response:
        return _ok(str(next(i for i in range(100, 1_000_000) if i not in self.guests)))

    def _build(self, vmid: int, kind: str, lock: str, config: dict[str, Any], form: dict[str, str]) -> httpx.Response:
        if vmid in self.guests:
            return _error(500, f"unable to create {'CT' if kind == 'lxc' else 'VM'} {vmid}: config file already exists")
        guest = self.add_guest(vmid, kind, {"lock": lock})
        guest.update(lock=lock, pool=form.get("pool"), password=form.get("password") or form.get("cipassword"))

        def done() -> None:
            guest.update(lock=None, config=config)

        return _ok(self._task(f"{'vz' if kind == 'lxc' else 'qm'}{lock}", vmid, done, lambda: self.guests.pop(vmid)))

    def _create(self, form: dict[str, str], node: str, kind: str) -> httpx.Response:
        missing = [k for k in ("vmid", "ostemplate") if k not in form and (k == "vmid" or kind == "lxc")]
        if missing:
            return _error(400, "Parameter verification failed.", {k: "property is missing" for k in missing})
        vmid = int(form["vmid"])
        config = {k: v for k, v in form.items() if k not in ("vmid", "pool", "password", "storage", "ostemplate")}
        disks = 0
        for key, value in form.items():
            storage, _, rest = value.partition(":")
            size, _, options = rest.partition(",")
            if DISK.match(key) and size == "cloudinit":
                config[key] = f"{storage}:vm-{vmid}-cloudinit,media=cdrom"
            elif (DISK.match(key) and "media=cdrom" not in value) or key == "rootfs":
                volume = f"{storage}:{'subvol' if kind == 'lxc' else 'vm'}-{vmid}-disk-{disks}"
                config[key] = ",".join(p for p in (volume, options, f"size={size}G") if p)
                disks += 1
        if kind == "lxc":
            config.setdefault("rootfs", f"local:subvol-{vmid}-disk-0,size=4G")
        else:
            config.setdefault("boot", "order=" + ";".join(k for k in config if DISK.match(k)) + ";net0")
        if "cipassword" in config:
            config["cipassword"] = "**********"
        return self._build(vmid, kind, "create", config, form)

    def _clone(self, form: dict[str, str], node: str, kind: str, source: str) -> httpx.Response:
        def clone(src: dict[str, Any]) -> httpx.Response:
            newid = int(form["newid"])
            config = {k: str(v).replace(f"-{src['vmid']}-", f"-{newid}-") for k, v in src["config"].items()}
            config.update({k: form[k] for k in ("name", "hostname", "description") if k in form})
            return self._build(newid, kind, "clone", config, {"pool": form.get("pool", "")})

        return self._with((node, kind, source), clone)

    def _set_config(self, form: dict[str, str], *ids: str) -> httpx.Response:
        def update(guest: dict[str, Any]) -> httpx.Response:
            if (locked := self._locked(guest)) is not None:
                return locked
            if "cipassword" in form:
                guest["password"] = form.pop("cipassword")
                form["cipassword"] = "**********"
            guest["config"].update(form)
            return _ok(None)

        return self._with(ids, update)

    def _resize(self, form: dict[str, str], *ids: str) -> httpx.Response:
        def resize(guest: dict[str, Any]) -> httpx.Response:
            disk = guest["config"].get(form.get("disk", ""))
            if (locked := self._locked(guest)) is not None or disk is None:
                return locked or _error(400, "Parameter verification failed.", {"disk": "no such disk"})
            size = form["size"]
            wanted = size_gib(disk) + int(size[1:-1]) if size.startswith("+") else int(size[:-1])
            if wanted < size_gib(disk):
                return _error(500, "shrinking disks is not supported")

            def grow() -> None:
                guest["config"][form["disk"]] = re.sub(r"size=\d+[MGT]", f"size={wanted}G", disk)

            prefix = "vz" if guest["type"] == "lxc" else "qm"
            return _ok(self._task(f"{prefix}resize", guest["vmid"], grow))

        return self._with(ids, resize)

    def _power(self, form: dict[str, str], node: str, kind: str, vmid: str, action: str) -> httpx.Response:
        def power(guest: dict[str, Any]) -> httpx.Response:
            if (locked := self._locked(guest)) is not None:
                return locked
            running = guest["status"] == "running"
            if kind == "lxc" and running == (action == "start"):
                return _error(500, f"CT {vmid} {'already' if running else 'not'} running")
            if kind == "qemu" and running and action == "start":
                self._task_failures.setdefault("qmstart", f"VM {vmid} already running")

            def apply() -> None:
                guest["status"] = "running" if action == "start" else "stopped"

            return _ok(self._task(f"{'vz' if kind == 'lxc' else 'qm'}{action}", guest["vmid"], apply))

        return self._with((node, kind, vmid), power)

    def _current(self, form: dict[str, str], *ids: str) -> httpx.Response:
        def current(guest: dict[str, Any]) -> httpx.Response:
            name = guest["config"].get("name") or guest["config"].get("hostname")
            return _ok({"status": guest["status"], "lock": guest["lock"], "vmid": guest["vmid"], "name": name})

        return self._with(ids, current)

    def _destroy(self, form: dict[str, str], node: str, kind: str, vmid: str) -> httpx.Response:
        def destroy(guest: dict[str, Any]) -> httpx.Response:
            if (locked := self._locked(guest)) is not None:
                return locked
            if guest["status"] == "running" and kind == "qemu":
                return _error(500, f"VM {vmid} is running - destroy failed")
            if guest["status"] == "running" and form.get("force") != "1":
                return _error(500, f"unable to destroy CT {vmid} - container is running")
            prefix = "vz" if kind == "lxc" else "qm"
            return _ok(self._task(f"{prefix}destroy", guest["vmid"], lambda: self.guests.pop(guest["vmid"])))

        return self._with((node, kind, vmid), destroy)

    def _task_status(self, form: dict[str, str], node: str, upid: str) -> httpx.Response:
        task = self.tasks.get(upid)
        if task is None or upid.split(":")[1] != node:
            return _error(500, f"unable to parse worker upid '{upid}'")
        if task["exitstatus"] is None:
            return _ok({"status": "running", "upid": upid, "node": node})
        return _ok({"status": "stopped", "exitstatus": task["exitstatus"], "upid": upid, "node": node})
