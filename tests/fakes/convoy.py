"""A stateful Convoy Application API: nodes, template groups, an address pool, users and servers.

Modelled on the panel where it matters to a client: Bearer token required (401 otherwise); Laravel
error bodies (``{"message", "errors"}``); ``filter[email]`` is exact, ``filter[name]`` on servers is a
substring match, lists are paginated; a create is validated as Convoy does (name <= 40, memory >= 16 MiB,
node capacity, template of the node, addresses free) and answers 200 with ``status: installing``; routes
under a server answer 409 while it is being deleted; the build PATCH replaces the address set (unlisted
addresses are detached).

Async states advance per read of ``GET /servers/{server}``: a new server stays ``installing`` for
``install_reads`` reads and then ends as ``install_outcome`` (``None`` = installed, or
``"install_failed"``); a deleted server stays ``deleting`` for ``delete_reads`` reads and then is gone
(404), or stays ``deletion_failed`` when ``delete_outcome`` says so.

Knobs beyond the base ones: ``steal_addresses_next`` (the next N address-assigning calls find their
addresses taken by another server: 422 "already in use").
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from typing import Any

import httpx

from tests.fakes.base import FakeProvider

API = "/api/application"
MIB = 1048576
SERVER = r"/servers/([0-9a-f-]{8,36})"
PASSWORD = re.compile(r"^(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9])(?=.*[!@#$%^&*]).{8,}$")
IN_USE = "One or more of the selected addresses are already in use"


def _message(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"message": message})


def _invalid(field: str, message: str) -> httpx.Response:
    return httpx.Response(422, json={"message": message, "errors": {field: [message]}})


def _missing(kind: str, key: Any) -> httpx.Response:
    return _message(404, f"No query results for model [Convoy\\Models\\{kind}] {key}")


def _int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


class FakeConvoy(FakeProvider):
    def __init__(self, api_key: str = "convoy-fake-token-0000000000") -> None:
        super().__init__()
        self.api_key = api_key
        self.install_reads = 2
        self.install_outcome: str | None = None
        self.delete_reads = 2
        self.delete_outcome: str | None = None
        self.steal_addresses_next = 0
        self.nodes: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "node-1", "memory": 64 << 30, "disk": 1 << 40}}
        self.template_groups: dict[int, list[dict[str, Any]]] = {
            1: [
                {
                    "id": 1,
                    "uuid": "g-linux",
                    "name": "Linux",
                    "hidden": False,
                    "templates": [
                        {"uuid": "t-ubuntu", "name": "Ubuntu 24.04", "hidden": False},
                        {"uuid": "t-staff", "name": "Staff only", "hidden": True},
                    ],
                },
                {
                    "id": 2,
                    "uuid": "g-beta",
                    "name": "Beta",
                    "hidden": True,
                    "templates": [{"uuid": "t-beta", "name": "Beta", "hidden": False}],
                },
            ]
        }
        self.addresses: list[dict[str, Any]] = []
        self.users: list[dict[str, Any]] = []
        self.servers: dict[str, dict[str, Any]] = {}
        self.sso_tokens: list[str] = []
        for i in range(4):
            self.add_address(1, "ipv4", f"203.0.113.{10 + i}")
        for i in range(2):
            self.add_address(1, "ipv6", f"2001:db8::{10 + i}")

    # --- world building and state helpers -----------------------------------------------------------
    def add_address(self, node_id: int, kind: str, address: str) -> dict[str, Any]:
        gateway = "203.0.113.1" if kind == "ipv4" else "2001:db8::1"
        entry = {
            "id": len(self.addresses) + 10,
            "address_pool_id": 1,
            "node_id": node_id,
            "server_id": None,
            "type": kind,
            "address": address,
            "cidr": 24 if kind == "ipv4" else 64,
            "gateway": gateway,
            "mac_address": None,
        }
        self.addresses.append(entry)
        return entry

    def add_user(self, email: str, name: str = "Seeded User") -> dict[str, Any]:
        user = {"id": len(self.users) + 1, "name": name, "email": email, "root_admin": False}
        self.users.append(user)
        return user

    def servers_for(self, service_id: int | str) -> list[dict[str, Any]]:
        return [s for s in self.servers.values() if s["name"].endswith(f" #{service_id}")]

    def addresses_of(self, server: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.addresses if a["server_id"] == server["internal_id"] and kind in (None, a["type"])]

    def _server(self, key: Any) -> dict[str, Any] | None:
        return next((s for s in self.servers.values() if str(key) in (s["uuid"], s["id"])), None)

    # --- dispatch -----------------------------------------------------------------------------------
    def route(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _message(401, "Unauthenticated.")
        path = request.url.path.removeprefix(API)
        body: Any = json.loads(request.content) if request.content else {}
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if method == request.method and match:
                groups = [int(g) if g.isdigit() else g for g in match.groups()]
                response: httpx.Response = handler(request, body, *groups)
                return response
        return _message(404, "The route could not be found.")

    def _routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/nodes", lambda r, b: self._page(r, [dict(n) for n in self.nodes.values()])),
            ("GET", r"/nodes/(\d+)/template-groups", self._groups),
            ("GET", r"/nodes/(\d+)/addresses", self._addresses),
            ("GET", "/users", self._users),
            ("POST", "/users", self._create_user),
            ("POST", r"/users/(\d+)/generate-sso-token", self._sso),
            ("GET", "/servers", self._list_servers),
            ("POST", "/servers", self._create_server),
            ("GET", SERVER, self._read),
            ("PATCH", SERVER + "/settings/build", self._build),
            ("POST", SERVER + "/settings/(suspend|unsuspend)", self._suspension),
            ("DELETE", SERVER, self._delete),
        ]

    def _page(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        per_page = min(int(request.url.params.get("per_page") or 50), 100)
        page = int(request.url.params.get("page") or 1)
        total_pages = max(1, -(-len(items) // per_page))
        pagination = {"total": len(items), "per_page": per_page, "current_page": page, "total_pages": total_pages}
        data = items[(page - 1) * per_page : page * per_page]
        return httpx.Response(200, json={"data": data, "meta": {"pagination": pagination}})

    def _groups(self, request: httpx.Request, body: Any, node_id: int) -> httpx.Response:
        if node_id not in self.nodes:
            return _missing("Node", node_id)
        groups = [{**g, "templates": {"data": g["templates"]}} for g in self.template_groups.get(node_id, [])]
        return httpx.Response(200, json={"data": groups})

    def _addresses(self, request: httpx.Request, body: Any, node_id: int) -> httpx.Response:
        params = request.url.params
        found = [a for a in reversed(self.addresses) if a["node_id"] == node_id]  # newest first
        if "filter[server_id]" in params:
            wanted = params["filter[server_id]"]
            found = [a for a in found if (a["server_id"] is None if wanted == "" else str(a["server_id"]) == wanted)]
        if params.get("filter[type]"):
            found = [a for a in found if a["type"] == params["filter[type]"]]
        return self._page(request, found)

    # --- users --------------------------------------------------------------------------------------
    def _users(self, request: httpx.Request, body: Any) -> httpx.Response:
        email = request.url.params.get("filter[email]")
        found = [u for u in self.users if email is None or u["email"].lower() == email.lower()]
        return self._page(request, [{**u, "servers_count": 0} for u in found])

    def _create_user(self, request: httpx.Request, body: Any) -> httpx.Response:
        email, name, password = body.get("email"), body.get("name"), body.get("password")
        if not isinstance(email, str) or "@" not in email:
            return _invalid("email", "The email field must be a valid email address.")
        if any(u["email"].lower() == email.lower() for u in self.users):
            return _invalid("email", "The email has already been taken.")
        if not isinstance(name, str) or not name:
            return _invalid("name", "The name field is required.")
        if not isinstance(password, str) or not PASSWORD.match(password):
            return _invalid("password", "The password is not strong enough.")
        user = self.add_user(email, name)
        user["root_admin"] = bool(body.get("root_admin"))
        return httpx.Response(200, json={"data": {**user, "email_verified_at": None, "servers_count": 0}})

    def _sso(self, request: httpx.Request, body: Any, user_id: int) -> httpx.Response:
        if not any(u["id"] == user_id for u in self.users):
            return _missing("User", user_id)
        token = f"jwt.{secrets.token_hex(8)}"
        self.sso_tokens.append(token)
        return httpx.Response(200, json={"data": {"user_id": user_id, "token": token}})

    # --- servers ------------------------------------------------------------------------------------
    def _view(self, server: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in server.items() if not k.startswith("_") and k != "limits"}
        addresses = {kind: [dict(a) for a in self.addresses_of(server, kind)] for kind in ("ipv4", "ipv6")}
        view["limits"] = {**server["limits"], "addresses": addresses, "mac_address": None}
        view["usages"] = {"bandwidth": 0}
        return view

    def _list_servers(self, request: httpx.Request, body: Any) -> httpx.Response:
        params = request.url.params
        found = list(self.servers.values())
        if params.get("filter[user_id]"):
            found = [s for s in found if str(s["user_id"]) == params["filter[user_id]"]]
        if params.get("filter[name]"):
            found = [s for s in found if params["filter[name]"].lower() in s["name"].lower()]
        return self._page(request, [self._view(s) for s in found])

    def _read(self, request: httpx.Request, body: Any, key: str) -> httpx.Response:
        server = self._server(key)
        if server is None:
            return _missing("Server", key)
        server["_reads"] += 1
        if server["status"] == "installing" and server["_reads"] >= self.install_reads:
            server["status"] = self.install_outcome
        elif server["status"] == "deleting" and server["_reads"] >= self.delete_reads:
            if self.delete_outcome is None:
                self._remove(server)
                return _missing("Server", key)
            server["status"] = self.delete_outcome
        return httpx.Response(200, json={"data": self._view(server)})

    def _remove(self, server: dict[str, Any]) -> None:
        for address in self.addresses_of(server):
            address["server_id"] = None
        del self.servers[server["uuid"]]

    def _take_addresses(self, ids: Any, node_id: int, owner: int | None) -> httpx.Response | None:
        """Check that ``ids`` exist on the node and are free (or ``owner``'s), else the 422 Convoy gives."""
        if not isinstance(ids, list) or not all(_int(i) for i in ids):
            return _invalid("address_ids", "The address ids field must be an array.")
        found = [a for a in self.addresses if a["id"] in ids]
        if len(found) != len(set(ids)) or any(a["node_id"] != node_id for a in found):
            return _invalid("address_ids", "The selected address ids is invalid.")
        if ids and self.steal_addresses_next > 0:
            self.steal_addresses_next -= 1
            for address in found:
                address["server_id"] = 9999  # another server got there first
        if any(a["server_id"] not in (None, owner) for a in found):
            return _invalid("limits.address_ids", IN_USE)
        return None

    def _validate_create(self, body: dict[str, Any]) -> httpx.Response | None:
        if not any(u["id"] == body.get("user_id") for u in self.users):
            return _invalid("user_id", "The selected user id is invalid.")
        node = self.nodes.get(body.get("node_id"))  # type: ignore[arg-type]
        if node is None:
            return _invalid("node_id", "The selected node id is invalid.")
        if not isinstance(body.get("name"), str) or not 1 <= len(body["name"]) <= 40:
            return _invalid("name", "The name field must not be greater than 40 characters.")
        if not isinstance(body.get("hostname"), str) or not 1 <= len(body["hostname"]) <= 191:
            return _invalid("hostname", "The hostname field is required.")
        if "vmid" not in body or body["vmid"] is not None:
            return _invalid("vmid", "The vmid field must be present.")
        limits = body.get("limits") if isinstance(body.get("limits"), dict) else {}
        for key, low in (("cpu", 1), ("memory", 16 * MIB), ("disk", 1), ("snapshots", 0), ("backups", 0)):
            if not _int(limits.get(key), low):
                return _invalid(f"limits.{key}", f"The limits.{key} field is invalid.")
        if limits.get("bandwidth") is not None and not _int(limits["bandwidth"]):
            return _invalid("limits.bandwidth", "The limits.bandwidth field must be a number.")
        for key in ("memory", "disk"):
            if self._allocated(node["id"], key) + limits[key] > node[key]:
                return _invalid(f"limits.{key}", f"The {key} value exceeds the node's limit.")
        # Convoy's own password rule applies here too; the spec's fake contract asks only for a length.
        if not isinstance(body.get("account_password"), str) or len(body["account_password"]) < 8:
            return _invalid("account_password", "The account password field must be at least 8 characters.")
        templates = [t["uuid"] for g in self.template_groups.get(node["id"], []) for t in g["templates"]]
        if body.get("template_uuid") not in templates:
            return _invalid("template_uuid", "This template is inaccessible to the specified node")
        for key in ("should_create_server", "start_on_completion"):
            if not isinstance(body.get(key), bool):
                return _invalid(key, f"The {key} field must be true or false.")
        return self._take_addresses(limits.get("address_ids") or [], node["id"], None)

    def _allocated(self, node_id: int, key: str) -> int:
        return sum(s["limits"][key] for s in self.servers.values() if s["node_id"] == node_id)

    def _create_server(self, request: httpx.Request, body: Any) -> httpx.Response:
        problem = self._validate_create(body)
        if problem is not None:
            return problem
        server_uuid = str(uuid.uuid4())
        limits = body["limits"]
        server = {
            "id": server_uuid[:8],
            "uuid": server_uuid,
            "internal_id": len(self.calls) + 1000,
            "node_id": body["node_id"],
            "user_id": body["user_id"],
            "vmid": 100 + len(self.calls),
            "hostname": body["hostname"],
            "name": body["name"],
            "description": None,
            "status": "installing",
            "limits": {k: limits[k] for k in ("cpu", "memory", "disk", "snapshots", "backups", "bandwidth")},
            "_reads": 0,
            "_template": body["template_uuid"],
            "_password": body["account_password"],
            "_start": body["start_on_completion"],
        }
        self.servers[server_uuid] = server
        for address in self.addresses:
            if address["id"] in (limits.get("address_ids") or []):
                address["server_id"] = server["internal_id"]
        return httpx.Response(200, json={"data": self._view(server)})

    def _busy(self, server: dict[str, Any] | None, key: str) -> httpx.Response | None:
        if server is None:
            return _missing("Server", key)
        if server["status"] in ("deleting", "deletion_failed"):
            return _message(409, "This server is currently being deleted.")
        return None

    def _build(self, request: httpx.Request, body: Any, key: str) -> httpx.Response:
        server = self._server(key)
        problem = self._busy(server, key)
        if problem is not None or server is None:
            return problem or _missing("Server", key)
        for field, low in (("cpu", 1), ("memory", 16 * MIB), ("disk", 1), ("snapshot_limit", 0), ("backup_limit", 0)):
            if not _int(body.get(field), low):
                return _invalid(field, f"The {field} field is invalid.")
        if body.get("bandwidth_limit") is not None and not _int(body["bandwidth_limit"]):
            return _invalid("bandwidth_limit", "The bandwidth limit field must be a number.")
        if "address_ids" not in body:  # Convoy would detach every address
            return _invalid("address_ids", "The address ids field must be present.")
        taken = self._take_addresses(body["address_ids"], server["node_id"], server["internal_id"])
        if taken is not None:
            return taken
        server["limits"].update(
            cpu=body["cpu"],
            memory=body["memory"],
            disk=body["disk"],
            snapshots=body["snapshot_limit"],
            backups=body["backup_limit"],
            bandwidth=body.get("bandwidth_limit"),
        )
        for address in self.addresses:
            if address["id"] in body["address_ids"]:
                address["server_id"] = server["internal_id"]
            elif address["server_id"] == server["internal_id"]:
                address["server_id"] = None
        return httpx.Response(200, json={"data": self._view(server)})

    def _suspension(self, request: httpx.Request, body: Any, key: str, action: str) -> httpx.Response:
        server = self._server(key)
        problem = self._busy(server, key)
        if problem is not None or server is None:
            return problem or _missing("Server", key)
        if action == "suspend":
            server["status"] = "suspended"
        elif server["status"] == "suspended":
            server["status"] = None
        return httpx.Response(204)

    def _delete(self, request: httpx.Request, body: Any, key: str) -> httpx.Response:
        server = self._server(key)
        problem = self._busy(server, key)
        if problem is not None or server is None:
            return problem or _missing("Server", key)
        server.update(status="deleting", _reads=0)
        return httpx.Response(204)
