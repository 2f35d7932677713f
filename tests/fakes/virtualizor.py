"""A stateful Virtualizor master: plans, OS templates, users, VPSes with an IP pool, and build tasks.

Modelled on the Admin API where it matters to a client: one path ``/index.php`` dispatched on ``act``;
``adminapikey``/``adminapipass`` required in the query (else 401 with an HTML login page); logical errors
answered as HTTP 200 with an ``error`` list or map; empty lists as ``[]``; the ``planname``,
``vpshostname`` and ``email`` filters are substring searches; ``sso`` only on the end-user port.

Calls and knobs see ``METHOD /index.php/<act>`` so a test can target one act
(``fake.drop_response_next("POST /index.php/addvs$")``, ``fake.count("POST", "/index.php/addvs")``).

Async state: ``addvs`` lists the VPS at once with an ``addvs`` task that reaches 100 % after
``build_reads`` reads of ``act=tasks`` (3 by default), then ends with status 2 (-1 when ``build_fails``).
Other knobs: ``locked`` (vpsids whose write acts answer "locked, try again"), ``ignore_suspend`` (suspend answers
done without applying, as a node task would later).
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any
from urllib.parse import parse_qsl

import httpx

from tests.fakes.base import FakeProvider

LOGIN_PAGE = "<html><head><title>Login</title></head><body>Please login</body></html>"
PLAN_DEFAULTS = {
    "ips": "1",
    "ips6": "0",
    "ips6_subnet": "0",
    "swap": "512",
    "bandwidth": "1000",
    "network_speed": "0",
    "cpu": "1000",
    "cpu_percent": "0",
    "vnc": "1",
    "kvm_cache": "none",
    "io_mode": "native",
    "vnc_keymap": "en-us",
    "nic_type": "virtio",
    "osreinstall_limit": "0",
}
RESOURCES = {"num_ips": "ips", "swapram": "swap", "num_ips6": "ips6", "num_ips6_subnet": "ips6_subnet"}


def _ok(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=body)


def _error(*messages: str, **fields: str) -> httpx.Response:
    return _ok({"error": dict(fields) if fields else list(messages)})


def _listing(items: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]] | list[Any]:
    return items or []  # PHP's json_encode of an empty array


class FakeVirtualizor(FakeProvider):
    def __init__(self, key: str = "fakeapikey0000", password: str = "fakeapipass0000") -> None:
        super().__init__()
        self.key, self.password = key, password
        self.client_port = 4083
        self.build_reads = 3
        self.build_fails = False
        self.locked: set[str] = set()
        self.ignore_suspend = False
        self._ids = itertools.count(1001)
        self.plans: dict[str, dict[str, Any]] = {}
        self.oslist = {
            "kvm": {"ubuntu": {"100": {"name": "Ubuntu 24.04"}}},
            "lxc": {"debian": {"200": {"name": "D12"}}},
        }
        self.users: dict[str, dict[str, Any]] = {}
        self.vps: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.ip_pool = [f"203.0.113.{n}" for n in range(10, 30)]
        self.add_plan("1", "KVM-1G", ram="1024", space="20", cores="1")
        self.add_plan("2", "KVM-2G", ram="2048", space="40", cores="2")

    # --- world building -----------------------------------------------------------------------------
    def add_plan(self, plid: str, name: str, virt: str = "kvm", **values: str) -> dict[str, Any]:
        plan = {"plid": plid, "plan_name": name, "virt": virt, **PLAN_DEFAULTS, **values}
        self.plans[plid] = plan
        return plan

    def add_user(self, email: str) -> dict[str, Any]:
        uid = str(len(self.users) + 7)
        self.users[uid] = {"uid": uid, "email": email, "fname": "", "lname": "", "type": "0"}
        return self.users[uid]

    def vps_named(self, hostname: str) -> list[dict[str, Any]]:
        return [v for v in self.vps.values() if v["hostname"] == hostname]

    # --- dispatch -----------------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        act = request.url.params.get("act", "")
        tagged = request.url.copy_with(path=f"{request.url.path}/{act}")
        return super().handle(httpx.Request(request.method, tagged, headers=request.headers, content=request.content))

    def route(self, request: httpx.Request) -> httpx.Response:
        query = request.url.params
        if query.get("adminapikey") != self.key or query.get("adminapipass") != self.password:
            return httpx.Response(401, text=LOGIN_PAGE, headers={"Content-Type": "text/html"})
        if request.url.path != "/index.php/" + query.get("act", "") or query.get("api") != "json":
            return httpx.Response(404, text="<html>Not Found</html>")
        form = dict(parse_qsl(request.content.decode())) if request.method == "POST" else {}
        params = {**dict(query), **form}
        act = params["act"]
        if act == "sso" and request.url.port != self.client_port:
            return httpx.Response(200, text=LOGIN_PAGE)
        handler = getattr(self, f"_act_{act}", None)
        if handler is None or (act in ("adduser", "addvs", "managevps") and request.method != "POST"):
            return _error("Invalid request")
        response: httpx.Response = handler(params)
        return response

    def _page(self, items: list[dict[str, Any]], params: dict[str, str], key: str) -> dict[str, dict[str, Any]]:
        size, page = int(params.get("reslen") or 50), int(params.get("page") or 1)
        return {str(item[key]): item for item in items[(page - 1) * size :][:size]}

    # --- acts ---------------------------------------------------------------------------------------
    def _act_config(self, params: dict[str, str]) -> httpx.Response:
        return _ok({"globals": {"virts": {"kvm": "KVM", "lxc": "LXC"}}})

    def _act_os(self, params: dict[str, str]) -> httpx.Response:
        return _ok({"oslist": self.oslist})

    def _act_plans(self, params: dict[str, str]) -> httpx.Response:
        name, virt = params.get("planname", "").lower(), params.get("ptype")
        found = [p for p in self.plans.values() if name in p["plan_name"].lower() and virt in (None, p["virt"])]
        return _ok({"plans": _listing(self._page(found, params, "plid"))})

    def _act_users(self, params: dict[str, str]) -> httpx.Response:
        needle = params.get("email", "").lower()
        found = {uid: u for uid, u in self.users.items() if needle in u["email"].lower()}
        return _ok({"users": _listing(found)})

    def _act_adduser(self, params: dict[str, str]) -> httpx.Response:
        email = params.get("newemail", "")
        if params.get("adduser") != "1" or "@" not in email or len(params.get("newpass", "")) < 8:
            return _error("Invalid e-mail or password")
        if any(u["email"].lower() == email.lower() for u in self.users.values()):
            return _error("Email already exists")
        user = self.add_user(email)
        user.update(fname=params.get("fname", ""), lname=params.get("lname", ""), _password=params["newpass"])
        return _ok({"done": 1})

    def _act_addvs(self, params: dict[str, str]) -> httpx.Response:
        plan = self.plans.get(params.get("plid", ""))
        virt = params.get("virt", "")
        if params.get("addvps") != "1" or params.get("node_select") != "1" or plan is None or plan["virt"] != virt:
            return _error("Invalid plan")
        if params.get("uid") not in self.users:
            return _error("The user does not exist")
        if not any(params.get("osid") in group for group in self.oslist.get(virt, {}).values()):
            return _error("Invalid OS")
        if "." not in params.get("hostname", "") or len(params.get("rootpass", "")) < 8:
            return _error(hostname="Invalid hostname or password")
        count = int(params.get("num_ips", plan["ips"]))
        if count > len(self.ip_pool):
            return _error(ips="No IP available")
        ips, self.ip_pool = self.ip_pool[:count], self.ip_pool[count:]
        vpsid = str(next(self._ids))
        self.vps[vpsid] = {
            "vpsid": vpsid,
            "vps_name": f"v{vpsid}",
            "uuid": secrets.token_hex(8),
            "serid": "0",
            "uid": params["uid"],
            "plid": plan["plid"],
            "virt": virt,
            "osid": params["osid"],
            "hostname": params["hostname"],
            "suspended": "0",
            "ips": {str(n): ip for n, ip in enumerate(ips, 1)},
            **{k: params[k] for k in ("ram", "space", "cores", "bandwidth", "swapram") if k in params},
            "_rootpass": params["rootpass"],
        }
        actid = str(len(self.tasks) + 55)
        self.tasks[actid] = {"actid": actid, "vpsid": vpsid, "action": "addvs", "status": "1", "progress": "0"}
        newvs = {k: v for k, v in self.vps[vpsid].items() if not k.startswith("_")}
        return _ok({"done": 1, "newvs": {**newvs, "ips": ips, "pass": params["rootpass"]}})

    def _act_vs(self, params: dict[str, str]) -> httpx.Response:
        for action in ("suspend", "unsuspend", "delete"):
            if action in params:
                return self._change(action, params[action])
        found = [
            {k: v for k, v in vps.items() if not k.startswith("_")}
            for vps in self.vps.values()
            if params.get("vpsid", vps["vpsid"]) in vps["vpsid"]
            and params.get("vpshostname", "").lower() in vps["hostname"].lower()
        ]
        return _ok({"vs": _listing(self._page(found, params, "vpsid"))})

    def _change(self, action: str, vpsid: str) -> httpx.Response:
        vps = self.vps.get(vpsid)
        if vps is None:
            return _error("Invalid VPS")
        if vpsid in self.locked:
            return _error("The VPS is locked by another task, please try again later")
        if action == "delete":
            self.ip_pool += list(vps["ips"].values())
            del self.vps[vpsid]
        elif not (self.ignore_suspend and action == "suspend"):
            vps["suspended"] = "1" if action == "suspend" else "0"
        return _ok({"done": 1})

    def _act_managevps(self, params: dict[str, str]) -> httpx.Response:
        vps = self.vps.get(params.get("vpsid", ""))
        plan = self.plans.get(params.get("plid", ""))
        if vps is None or plan is None or params.get("editvps") != "1":
            return _error("Invalid VPS or plan")
        if vps["vpsid"] in self.locked:
            return _error("The VPS is locked by another task, please try again later")
        vps["plid"] = plan["plid"]
        vps.update({k: params[k] for k in ("ram", "space", "cores", "bandwidth", "swapram") if k in params})
        return _ok({"done": 1})

    def _act_tasks(self, params: dict[str, str]) -> httpx.Response:
        found = {}
        for actid, task in self.tasks.items():
            if (
                params.get("vpsid", task["vpsid"]) != task["vpsid"]
                or params.get("action", task["action"]) != task["action"]
            ):
                continue
            if task["status"] == "1":
                task["_reads"] = task.get("_reads", 0) + 1
                progress = min(100, task["_reads"] * 100 // max(self.build_reads, 1))
                task["progress"] = str(progress)
                if progress == 100:
                    task["status"] = "-1" if self.build_fails else "2"
            found[actid] = {k: v for k, v in task.items() if not k.startswith("_")}
        return _ok({"tasks": _listing(found)})

    def _act_sso(self, params: dict[str, str]) -> httpx.Response:
        if params.get("svs") not in self.vps:
            return _error("Invalid VPS")
        return _ok({"sid": secrets.token_hex(6), "token_key": secrets.token_hex(8)})
