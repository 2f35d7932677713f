"""A stateful VirtFusion API v1: packages, hypervisor groups, OS templates, users and servers.

Modelled on the control panel's rules where they matter to a client: users are unique by
``extRelationId`` and e-mail (422 ``{"errors": [...]}``), a missing object answers 404 ``{"msg": ...}``,
servers carry no external reference (only a name), ``POST /servers?dryRun=true`` validates without
storing, and IPv4 addresses run out (422).

Async behaviour: a new server is locked for ``lock_after_create`` calls of suspend, unsuspend, package
change and delete (423 ``{"msg": "server locked"}``) and for as long as its OS install runs; a build moves
``commissionStatus`` 0 -> 1 and reaches 3 after ``build_reads`` reads of the server (0: done at once), or
sets ``buildFailed`` when ``build_outcome`` is ``"failed"``.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from typing import Any

import httpx

from tests.fakes.base import FakeProvider

API = "/api/v1"
BUILDING, BUILT = 1, 3
OPTIONAL_INTS = (
    "storage",
    "memory",
    "traffic",
    "networkSpeedInbound",
    "networkSpeedOutbound",
    "cpuCores",
    "networkProfile",
    "storageProfile",
)


def _msg(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"msg": message})


def _invalid(*errors: str) -> httpx.Response:
    return httpx.Response(422, json={"errors": list(errors)})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class FakeVirtFusion(FakeProvider):
    def __init__(self, api_key: str = "vf-fake-token-0000000000", *, build_reads: int = 2) -> None:
        super().__init__()
        self.api_key = api_key
        self.build_reads = build_reads
        self.build_outcome: str | None = None
        self.lock_after_create = 2
        self.free_ipv4 = 50
        self.packages = {1: "VPS-S", 2: "VPS-M"}
        self.groups = {1: "Europe"}
        self.templates = {7: "Debian 12"}
        self.users: dict[int, dict[str, Any]] = {}
        self.servers: dict[int, dict[str, Any]] = {}
        self.last_delete_delay: int | None = None
        self._ids = {"user": 10, "server": 100}

    # --- world building -----------------------------------------------------------------------------
    def next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def add_user(self, ext: Any, email: str, name: str = "Seeded User") -> dict[str, Any]:
        user = {"id": self.next_id("user"), "extRelationId": ext, "email": email, "name": name}
        self.users[user["id"]] = user
        return user

    def user_by_ext(self, ext: Any) -> dict[str, Any] | None:
        return next((u for u in self.users.values() if str(u["extRelationId"]) == str(ext)), None)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [s for s in self.servers.values() if s["name"] == name]

    # --- dispatch -----------------------------------------------------------------------------------
    def route(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _msg(401, "Unauthenticated.")
        path = request.url.path.removeprefix(API)
        body: Any = json.loads(request.content) if request.content else {}
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if method == request.method and match:
                groups = [int(g) if g.isdigit() else g for g in match.groups()]
                response: httpx.Response = handler(request, body, *groups)
                return response
        return _msg(404, "not found")

    def _routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/connect", lambda r, b: httpx.Response(200, json={})),
            ("GET", "/packages", lambda r, b: self._list(self.packages)),
            ("GET", "/compute/hypervisors/groups", lambda r, b: self._list(self.groups)),
            ("GET", r"/users/([^/]+)/byExtRelation", self._get_user),
            ("POST", "/users", self._create_user),
            ("POST", r"/users/([^/]+)/serverAuthenticationTokens/(\d+)", self._tokens),
            ("POST", "/servers", self._create_server),
            ("GET", r"/servers/(\d+)", self._get_server),
            ("GET", r"/servers/user/(\d+)", self._user_servers),
            ("PUT", r"/servers/(\d+)/modify/name", self._rename),
            ("POST", r"/servers/(\d+)/build", self._build),
            ("POST", r"/servers/(\d+)/(suspend|unsuspend)", self._suspension),
            ("PUT", r"/servers/(\d+)/package/(\d+)", self._package),
            ("DELETE", r"/servers/(\d+)", self._delete),
        ]

    def _list(self, items: dict[int, str]) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"id": k, "name": v} for k, v in items.items()]})

    # --- users --------------------------------------------------------------------------------------
    def _get_user(self, request: httpx.Request, body: Any, ext: Any) -> httpx.Response:
        user = self.user_by_ext(ext)
        return httpx.Response(200, json={"data": user}) if user else _msg(404, "user not found")

    def _create_user(self, request: httpx.Request, body: Any) -> httpx.Response:
        name, email, ext = body.get("name"), body.get("email"), body.get("extRelationId")
        if not isinstance(name, str) or not name or not isinstance(email, str) or "@" not in email:
            return _invalid("The name and a valid email are required.")
        if ext is not None and self.user_by_ext(ext):
            return _invalid("The ext relation id has already been taken.")
        if any(u["email"].lower() == email.lower() for u in self.users.values()):
            return _invalid("The email has already been taken.")
        user = self.add_user(ext, email, name)
        return httpx.Response(201, json={"data": {**user, "password": "pnl-" + secrets.token_hex(8)}})

    def _tokens(self, request: httpx.Request, body: Any, ext: Any, server_id: int) -> httpx.Response:
        user, server = self.user_by_ext(ext), self.servers.get(server_id)
        if user is None or server is None or server["ownerId"] != user["id"]:
            return _msg(404, "user or server not found")
        path = f"/token_login/{secrets.token_hex(8)}"
        return httpx.Response(200, json={"data": {"authentication": {"endpoint_complete": path}}})

    # --- servers ------------------------------------------------------------------------------------
    def _view(self, server: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in server.items() if not k.startswith("_") and k != "ipv4"}
        view["network"] = {"interfaces": [{"ipv4": [{"address": a} for a in server["ipv4"]]}]}
        return view

    def _read(self, server: dict[str, Any]) -> dict[str, Any]:
        if server["commissionStatus"] == BUILDING:
            server["_build_reads"] -= 1
            if server["_build_reads"] <= 0:
                self._finish_build(server)
        return self._view(server)

    def _finish_build(self, server: dict[str, Any]) -> None:
        if self.build_outcome == "failed":
            server.update(commissionStatus=0, buildFailed=True)
        else:
            server["commissionStatus"] = BUILT

    def _locked(self, server: dict[str, Any]) -> bool:
        if server["_locked_calls"] > 0:
            server["_locked_calls"] -= 1
            return True
        return bool(server["commissionStatus"] == BUILDING)

    def _create_server(self, request: httpx.Request, body: Any) -> httpx.Response:
        if body.get("packageId") not in self.packages:
            return _invalid("The selected package id is invalid.")
        if body.get("userId") not in self.users:
            return _invalid("The selected user id is invalid.")
        if body.get("hypervisorId") not in self.groups:
            return _invalid("The selected hypervisor id is invalid.")
        ipv4 = body.get("ipv4", 1)
        if not _is_int(ipv4) or ipv4 < 1:
            return _invalid("The ipv4 must be an integer.")
        for key in OPTIONAL_INTS:
            if key in body and not _is_int(body[key]):
                return _invalid(f"The {key} must be an integer.")
        if ipv4 > self.free_ipv4:
            return _invalid("Not enough free IPv4 addresses in the hypervisor group.")
        if request.url.params.get("dryRun") == "true":
            return httpx.Response(200, json={"data": {"dryRun": True}})
        self.free_ipv4 -= ipv4
        server_id = self.next_id("server")
        self.servers[server_id] = {
            "id": server_id,
            "uuid": str(uuid.uuid4()),
            "name": f"vf{server_id}",
            "hostname": None,
            "ownerId": body["userId"],
            "hypervisorId": body["hypervisorId"],
            "packageId": body["packageId"],
            "resources": {k: body[k] for k in OPTIONAL_INTS if k in body},
            "commissionStatus": 0,
            "buildFailed": False,
            "suspended": False,
            "ipv4": [f"192.0.2.{(server_id * 4 + i) % 250 + 1}" for i in range(ipv4)],
            "_locked_calls": self.lock_after_create,
            "_build_reads": 0,
        }
        return httpx.Response(201, json={"data": self._view(self.servers[server_id])})

    def _get_server(self, request: httpx.Request, body: Any, server_id: int) -> httpx.Response:
        server = self.servers.get(server_id)
        return httpx.Response(200, json={"data": self._read(server)}) if server else _msg(404, "server not found")

    def _user_servers(self, request: httpx.Request, body: Any, user_id: int) -> httpx.Response:
        if user_id not in self.users:
            return _msg(404, "user not found")
        owned = [self._read(s) for s in self.servers.values() if s["ownerId"] == user_id]
        return httpx.Response(200, json={"data": owned})

    def _rename(self, request: httpx.Request, body: Any, server_id: int) -> httpx.Response:
        server = self.servers.get(server_id)
        if server is None:
            return _msg(404, "server not found")
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            return _invalid("The name field is required.")
        server["name"] = body["name"]
        return httpx.Response(201)

    def _build(self, request: httpx.Request, body: Any, server_id: int) -> httpx.Response:
        server = self.servers.get(server_id)
        if server is None:
            return _msg(404, "server not found")
        if body.get("operatingSystemId") not in self.templates:
            return _invalid("The selected operating system id is invalid.")
        if server["commissionStatus"] != 0:
            return _invalid("The server has already been built.")
        password = "root-" + secrets.token_hex(8)
        server.update(_root_password=password, _build_reads=self.build_reads, commissionStatus=BUILDING)
        server.update({k: body[k] for k in ("name", "hostname") if body.get(k)})
        if self.build_reads <= 0:
            self._finish_build(server)
        view = self._view(server) | {"settings": {"decryptedPassword": password}}
        return httpx.Response(200, json={"data": view})

    def _suspension(self, request: httpx.Request, body: Any, server_id: int, action: str) -> httpx.Response:
        server = self.servers.get(server_id)
        if server is None:
            return _msg(404, "server not found")
        if self._locked(server):
            return _msg(423, "server locked")
        server["suspended"] = action == "suspend"
        return httpx.Response(204)

    def _package(self, request: httpx.Request, body: Any, server_id: int, package_id: int) -> httpx.Response:
        server = self.servers.get(server_id)
        if server is None or package_id not in self.packages:
            return _msg(404, "server or package not found")
        if self._locked(server):
            return _msg(423, "server locked")
        server["packageId"] = package_id
        return httpx.Response(204)

    def _delete(self, request: httpx.Request, body: Any, server_id: int) -> httpx.Response:
        server = self.servers.get(server_id)
        if server is None:
            return _msg(404, "server not found")
        if self._locked(server):
            return _msg(423, "server locked")
        self.last_delete_delay = int(request.url.params.get("delay", "0"))
        self.free_ipv4 += len(server["ipv4"])
        del self.servers[server_id]
        return httpx.Response(204)
