"""A stateful Pterodactyl Application API: locations, nodes with allocations, eggs, users and servers.

Modelled on the panel's own rules where they matter to a client: ``filter[email]`` is a substring match,
lists are paginated (50 per page), ``external_id`` and user e-mail/username are unique (422 with
``meta.source_field``), explicit allocations must be free, a new server is ``installing`` until it has
been read ``install_reads`` times, the build and startup PATCHes require the fields the panel requires.

Knobs beyond the base ones: ``wings_down`` (create, suspend, unsuspend and delete answer 502 and change
nothing), ``install_outcome`` (``None`` or ``"install_failed"``), ``rate_limit_every`` (every Nth call
answers 429 with ``Retry-After``).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import Any

import httpx

from tests.fakes.base import FakeProvider

API = "/api/application"
USERNAME = re.compile(r"^[a-z0-9]([\w.-]+)[a-z0-9]$")
LIMITS = ("memory", "swap", "disk", "io", "cpu")


def _error(status: int, detail: str, code: str, field: str | None = None, rule: str = "") -> httpx.Response:
    error: dict[str, Any] = {"code": code, "status": str(status), "detail": detail}
    if field:
        error["meta"] = {"source_field": field, "rule": rule}
    return httpx.Response(status, json={"errors": [error]})


def _invalid(field: str, detail: str, rule: str = "required") -> httpx.Response:
    return _error(422, detail, "ValidationException", field, rule)


def _not_found() -> httpx.Response:
    return _error(404, "The requested resource could not be found on the server.", "NotFoundHttpException")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class FakePterodactyl(FakeProvider):
    def __init__(self, api_key: str = "ptla_fakekey0000000000") -> None:
        super().__init__()
        self.api_key = api_key
        self.wings_down = False
        self.install_reads = 2
        self.install_outcome: str | None = None
        self.rate_limit_every = 0
        self.per_page = 50
        self._ids: dict[str, int] = {}
        self.locations: dict[int, dict[str, Any]] = {1: {"id": 1, "short": "eu", "long": "Europe"}}
        self.nodes: dict[int, dict[str, Any]] = {}
        self.nests: dict[int, dict[str, Any]] = {}
        self.users: list[dict[str, Any]] = []
        self.servers: dict[int, dict[str, Any]] = {}
        self.add_node(1, "node-a", ports=range(25565, 25571))
        self.add_node(2, "node-b", ports=[27015, 7779, 7778, 7777])
        self.add_egg(
            1,
            5,
            image="ghcr.io/pterodactyl/yolks:java_17",
            startup="java -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}",
            variables={"SERVER_JARFILE": "server.jar", "SERVER_PORT": "25565"},
        )
        self.add_egg(
            1,
            6,
            image="ghcr.io/pterodactyl/yolks:java_21",
            startup="java -jar {{SERVER_JARFILE}} --version {{MC_VERSION}}",
            variables={"SERVER_JARFILE": "paper.jar", "MC_VERSION": "latest"},
        )

    # --- world building -----------------------------------------------------------------------------
    def next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def add_node(
        self, node_id: int, name: str, ports: Any, location_id: int = 1, memory: int = 65536, disk: int = 1 << 20
    ) -> dict[str, Any]:
        node = {"id": node_id, "name": name, "location_id": location_id, "memory": memory, "disk": disk}
        node["allocations"] = []
        self.nodes[node_id] = node
        for port in ports:
            self.add_allocation(node_id, port)
        return node

    def add_allocation(self, node_id: int, port: int, ip: str | None = None) -> dict[str, Any]:
        allocation = {
            "id": self.next_id("allocation"),
            "ip": ip or f"10.0.0.{node_id}",
            "alias": None,
            "port": port,
            "notes": None,
            "server": None,
        }
        self.nodes[node_id]["allocations"].append(allocation)
        return allocation

    def add_egg(self, nest_id: int, egg_id: int, image: str, startup: str, variables: dict[str, str]) -> None:
        nest = self.nests.setdefault(nest_id, {"id": nest_id, "name": f"nest-{nest_id}", "eggs": {}})
        nest["eggs"][egg_id] = {
            "id": egg_id,
            "nest": nest_id,
            "name": f"egg-{egg_id}",
            "docker_image": image,
            "startup": startup,
            "variables": [{"env_variable": k, "default_value": v} for k, v in variables.items()],
        }

    def add_user(self, email: str, username: str | None = None) -> dict[str, Any]:
        user_id = self.next_id("user")
        user = {
            "id": user_id,
            "external_id": None,
            "uuid": str(uuid.uuid4()),
            "username": username or f"seeded{user_id}",
            "email": email,
            "first_name": "Seeded",
            "last_name": "User",
            "language": "en",
            "root_admin": False,
            "2fa": False,
        }
        self.users.append(user)
        return user

    # --- state helpers ------------------------------------------------------------------------------
    def servers_for(self, external_id: str | int) -> list[dict[str, Any]]:
        return [s for s in self.servers.values() if s["external_id"] == str(external_id)]

    def allocations_of(self, server_id: int) -> list[dict[str, Any]]:
        return [a for n in self.nodes.values() for a in n["allocations"] if a["server"] == server_id]

    def egg(self, egg_id: Any) -> dict[str, Any] | None:
        return next((n["eggs"][egg_id] for n in self.nests.values() if egg_id in n["eggs"]), None)

    def _allocation(self, allocation_id: Any) -> tuple[int, dict[str, Any]] | None:
        for node in self.nodes.values():
            for allocation in node["allocations"]:
                if allocation["id"] == allocation_id:
                    return node["id"], allocation
        return None

    # --- dispatch -----------------------------------------------------------------------------------
    def route(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Unauthenticated.", "AuthenticationException")
        if self.rate_limit_every and len(self.calls) % self.rate_limit_every == 0:
            return httpx.Response(
                429, json={"errors": [{"detail": "Too Many Attempts."}]}, headers={"Retry-After": "1"}
            )
        path = request.url.path.removeprefix(API)
        body: Any = json.loads(request.content) if request.content else {}
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if method == request.method and match:
                groups = [int(g) if g and g.isdigit() else g for g in match.groups()]
                response: httpx.Response = handler(request, body, *groups)
                return response
        return _not_found()

    def _routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/locations", lambda r, b: self._page(r, "location", list(self.locations.values()))),
            ("GET", "/nodes", lambda r, b: self._page(r, "node", [self._node(n, False) for n in self.nodes.values()])),
            ("GET", "/nodes/deployable", self._deployable),
            ("GET", "/nests", lambda r, b: self._page(r, "nest", [self._nest(n) for n in self.nests.values()])),
            ("GET", r"/nests/(\d+)/eggs", self._eggs),
            ("GET", r"/nests/(\d+)/eggs/(\d+)", self._egg),
            ("GET", "/users", self._users),
            ("POST", "/users", self._create_user),
            ("GET", "/servers", lambda r, b: self._page(r, "server", [self._view(s) for s in self.servers.values()])),
            ("GET", r"/servers/external/(.+)", self._server_by_external),
            ("GET", r"/servers/(\d+)", self._server_by_id),
            ("POST", "/servers", self._create_server),
            ("POST", r"/servers/(\d+)/(suspend|unsuspend)", self._suspension),
            ("PATCH", r"/servers/(\d+)/build", self._build),
            ("PATCH", r"/servers/(\d+)/startup", self._startup),
            ("DELETE", r"/servers/(\d+)(/force)?", self._delete),
        ]

    def _page(self, request: httpx.Request, kind: str, items: list[dict[str, Any]]) -> httpx.Response:
        per_page = int(request.url.params.get("per_page") or self.per_page)
        page = max(1, int(request.url.params.get("page") or 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        pagination = {
            "total": len(items),
            "count": len(chunk),
            "per_page": per_page,
            "current_page": page,
            "total_pages": max(1, math.ceil(len(items) / per_page)),
            "links": {},
        }
        data = [{"object": kind, "attributes": item} for item in chunk]
        return httpx.Response(200, json={"object": "list", "data": data, "meta": {"pagination": pagination}})

    # --- nodes and eggs -----------------------------------------------------------------------------
    def _node(self, node: dict[str, Any], with_allocations: bool) -> dict[str, Any]:
        view = {k: v for k, v in node.items() if k != "allocations"}
        if with_allocations:
            allocations = [{**a, "assigned": a["server"] is not None} for a in node["allocations"]]
            for allocation in allocations:
                allocation.pop("server")
            view["relationships"] = {
                "allocations": {
                    "object": "list",
                    "data": [{"object": "allocation", "attributes": a} for a in allocations],
                }
            }
        return view

    def _used(self, node_id: int, key: str) -> int:
        return sum(s["limits"][key] for s in self.servers.values() if s["node"] == node_id)

    def _deployable(self, request: httpx.Request, body: Any) -> httpx.Response:
        params = request.url.params
        for key in ("memory", "disk"):
            if not (params.get(key) or "").isdigit():
                return _invalid(key, f"The {key} field is required.")
        memory, disk = int(params["memory"]), int(params["disk"])
        locations = [int(v) for v in params.get_list("location_ids[]")]
        include = "allocations" in (params.get("include") or "").split(",")
        nodes = [
            self._node(n, include)
            for n in self.nodes.values()
            if (not locations or n["location_id"] in locations)
            and self._used(n["id"], "memory") + memory <= n["memory"]
            and self._used(n["id"], "disk") + disk <= n["disk"]
        ]
        return self._page(request, "node", nodes)

    def _nest(self, nest: dict[str, Any]) -> dict[str, Any]:
        return {"id": nest["id"], "name": nest["name"]}

    def _egg_view(self, egg: dict[str, Any], request: httpx.Request) -> dict[str, Any]:
        view = {k: v for k, v in egg.items() if k != "variables"}
        if "variables" in (request.url.params.get("include") or "").split(","):
            data = [{"object": "egg_variable", "attributes": dict(v)} for v in egg["variables"]]
            view["relationships"] = {"variables": {"object": "list", "data": data}}
        return view

    def _eggs(self, request: httpx.Request, body: Any, nest_id: int) -> httpx.Response:
        if nest_id not in self.nests:
            return _not_found()
        eggs = [self._egg_view(e, request) for e in self.nests[nest_id]["eggs"].values()]
        return self._page(request, "egg", eggs)

    def _egg(self, request: httpx.Request, body: Any, nest_id: int, egg_id: int) -> httpx.Response:
        egg = self.nests.get(nest_id, {}).get("eggs", {}).get(egg_id)
        if egg is None:
            return _not_found()
        return httpx.Response(200, json={"object": "egg", "attributes": self._egg_view(egg, request)})

    # --- users --------------------------------------------------------------------------------------
    def _users(self, request: httpx.Request, body: Any) -> httpx.Response:
        needle = (request.url.params.get("filter[email]") or "").lower()
        return self._page(request, "user", [u for u in self.users if needle in u["email"].lower()])

    def _create_user(self, request: httpx.Request, body: Any) -> httpx.Response:
        email, username = body.get("email"), body.get("username")
        if not isinstance(email, str) or "@" not in email:
            return _invalid("email", "The email must be a valid email address.", "email")
        if any(u["email"].lower() == email.lower() for u in self.users):
            return _invalid("email", "The email has already been taken.", "unique")
        if not isinstance(username, str) or not USERNAME.match(username.lower()):
            return _invalid("username", "The username format is invalid.", "regex")
        if any(u["username"] == username.lower() for u in self.users):
            return _invalid("username", "The username has already been taken.", "unique")
        for key in ("first_name", "last_name"):
            value = body.get(key)
            if not isinstance(value, str) or not 1 <= len(value) <= 191:
                return _invalid(key, f"The {key.replace('_', ' ')} field is required.")
        user = self.add_user(email, username.lower())
        user.update(first_name=body["first_name"], last_name=body["last_name"])
        return httpx.Response(201, json={"object": "user", "attributes": user})

    # --- servers ------------------------------------------------------------------------------------
    def _view(self, server: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in server.items() if not k.startswith("_")}
        view["container"] = dict(server["container"])
        view["container"]["environment"] = {
            **server["container"]["environment"],
            "STARTUP": server["container"]["startup_command"],
            "P_SERVER_UUID": server["uuid"],
        }
        return view

    def _read(self, server: dict[str, Any]) -> httpx.Response:
        server["_reads"] += 1
        if server["status"] == "installing" and server["_reads"] >= self.install_reads:
            server["status"] = self.install_outcome
            server["container"]["installed"] = self.install_outcome is None
        return httpx.Response(200, json={"object": "server", "attributes": self._view(server)})

    def _server_by_external(self, request: httpx.Request, body: Any, external_id: Any) -> httpx.Response:
        found = self.servers_for(external_id)
        return self._read(found[0]) if found else _not_found()

    def _server_by_id(self, request: httpx.Request, body: Any, server_id: int) -> httpx.Response:
        server = self.servers.get(server_id)
        return self._read(server) if server else _not_found()

    def _validate_server(self, body: dict[str, Any]) -> httpx.Response | None:
        for key in ("name", "docker_image", "startup"):
            if not isinstance(body.get(key), str) or not body[key]:
                return _invalid(key, f"The {key} field is required.")
        if not any(u["id"] == body.get("user") for u in self.users):
            return _invalid("user", "The selected user is invalid.", "exists")
        egg = self.egg(body.get("egg"))
        if egg is None:
            return _invalid("egg", "The selected egg is invalid.", "exists")
        external_id = body.get("external_id")
        if external_id is not None and (not isinstance(external_id, str) or not 1 <= len(external_id) <= 191):
            return _invalid("external_id", "The external id must be a string.", "string")
        if external_id is not None and self.servers_for(external_id):
            return _invalid("external_id", "The external id has already been taken.", "unique")
        if not isinstance(body.get("environment"), dict):
            return _invalid("environment", "The environment field is required.")
        for key in LIMITS:
            if not _is_int((body.get("limits") or {}).get(key)):
                return _invalid(f"limits.{key}", f"The limits.{key} must be an integer.", "integer")
        if not 10 <= body["limits"]["io"] <= 1000:
            return _invalid("limits.io", "The limits.io must be between 10 and 1000.", "between")
        for key in ("databases", "allocations", "backups"):
            if not _is_int((body.get("feature_limits") or {}).get(key)):
                return _invalid(f"feature_limits.{key}", f"The feature_limits.{key} is invalid.", "integer")
        if "allocation" not in body and "deploy" not in body:
            return _invalid("allocation.default", "The allocation.default field is required.", "required_without")
        return None

    def _deploy(self, deploy: dict[str, Any], limits: dict[str, int]) -> tuple[int, list[int]] | None:
        locations = deploy.get("locations") or []
        ranges = []
        for item in deploy.get("port_range") or []:
            low, _, high = str(item).partition("-")
            ranges.append((int(low), int(high or low)))
        used_ips = {a["ip"] for n in self.nodes.values() for a in n["allocations"] if a["server"]}
        for node in self.nodes.values():
            if locations and node["location_id"] not in locations:
                continue
            if self._used(node["id"], "memory") + limits["memory"] > node["memory"]:
                continue
            for allocation in node["allocations"]:
                if allocation["server"] is not None:
                    continue
                if ranges and not any(lo <= allocation["port"] <= hi for lo, hi in ranges):
                    continue
                if deploy.get("dedicated_ip") and allocation["ip"] in used_ips:
                    continue
                return node["id"], [allocation["id"]]
        return None

    def _explicit(self, allocation: dict[str, Any]) -> tuple[int, list[int]] | httpx.Response:
        ids = [allocation.get("default"), *(allocation.get("additional") or [])]
        found = [self._allocation(i) for i in ids]
        if any(f is None for f in found):
            return _invalid("allocation.default", "The selected allocation is invalid.", "exists")
        nodes = {f[0] for f in found if f}
        if len(nodes) != 1 or any(f[1]["server"] is not None for f in found if f):
            return _invalid("allocation.default", "The allocation is already assigned.", "unique")
        return nodes.pop(), [int(i) for i in ids if i is not None]

    def _create_server(self, request: httpx.Request, body: Any) -> httpx.Response:
        problem = self._validate_server(body)
        if problem is not None:
            return problem
        if "allocation" in body:
            placed = self._explicit(body["allocation"])
            if isinstance(placed, httpx.Response):
                return placed
        else:
            found = self._deploy(body["deploy"], body["limits"])
            if found is None:
                return _error(
                    400, "No nodes satisfying the requirements specified were found.", "NoViableNodeException"
                )
            placed = found
        if self.wings_down:
            return _error(502, "Could not communicate with the daemon.", "DaemonConnectionException")
        node_id, allocation_ids = placed
        egg = self.egg(body["egg"])
        assert egg is not None
        defaults = {v["env_variable"]: v["default_value"] for v in egg["variables"]}
        environment = {k: body["environment"].get(k, d) for k, d in defaults.items()}
        server_uuid = str(uuid.uuid4())
        server_id = self.next_id("server")
        self.servers[server_id] = {
            "id": server_id,
            "external_id": body.get("external_id"),
            "uuid": server_uuid,
            "identifier": server_uuid[:8],
            "name": body["name"],
            "description": body.get("description") or "",
            "status": "installing",
            "suspended": False,
            "limits": {**{k: body["limits"][k] for k in LIMITS}, "threads": body["limits"].get("threads")}
            | {"oom_disabled": bool(body.get("oom_disabled", True))},
            "feature_limits": dict(body["feature_limits"]),
            "user": body["user"],
            "node": node_id,
            "allocation": allocation_ids[0],
            "nest": egg["nest"],
            "egg": egg["id"],
            "container": {
                "startup_command": body["startup"],
                "image": body["docker_image"],
                "installed": False,
                "environment": environment,
            },
            "_reads": 0,
            "_skip_scripts": bool(body.get("skip_scripts")),
            "_start_on_completion": bool(body.get("start_on_completion")),
        }
        for allocation_id in allocation_ids:
            located = self._allocation(allocation_id)
            assert located is not None
            located[1]["server"] = server_id
        return httpx.Response(201, json={"object": "server", "attributes": self._view(self.servers[server_id])})

    def _suspension(self, request: httpx.Request, body: Any, server_id: int, action: str) -> httpx.Response:
        server = self.servers.get(server_id)
        if server is None:
            return _not_found()
        if self.wings_down:
            return _error(502, "Could not communicate with the daemon.", "DaemonConnectionException")
        suspended = action == "suspend"
        if suspended or server["status"] == "suspended":
            server["status"] = "suspended" if suspended else None
        server["suspended"] = suspended
        return httpx.Response(204)

    def _build(self, request: httpx.Request, body: Any, server_id: int) -> httpx.Response:
        server = self.servers.get(server_id)
        if server is None:
            return _not_found()
        located = self._allocation(body.get("allocation"))
        if located is None or located[1]["server"] != server_id:
            return _invalid("allocation", "The allocation field is required.")
        feature_limits = body.get("feature_limits")
        if not isinstance(feature_limits, dict) or not all(
            _is_int(feature_limits.get(k)) for k in ("databases", "allocations", "backups")
        ):
            return _invalid("feature_limits", "The feature limits field is required.")
        limits = body.get("limits") if isinstance(body.get("limits"), dict) else body
        for key in LIMITS:
            if not _is_int(limits.get(key)):
                return _invalid(key, f"The {key} field is required.")
        server["limits"].update({k: limits[k] for k in LIMITS}, threads=limits.get("threads"))
        if "oom_disabled" in body:
            server["limits"]["oom_disabled"] = bool(body["oom_disabled"])
        server["feature_limits"] = {k: feature_limits[k] for k in ("databases", "allocations", "backups")}
        return httpx.Response(200, json={"object": "server", "attributes": self._view(server)})

    def _startup(self, request: httpx.Request, body: Any, server_id: int) -> httpx.Response:
        server = self.servers.get(server_id)
        if server is None:
            return _not_found()
        if not isinstance(body.get("environment"), dict):
            return _invalid("environment", "The environment field must be present.", "present")
        if not isinstance(body.get("skip_scripts"), bool):
            return _invalid("skip_scripts", "The skip scripts field must be true or false.", "boolean")
        egg = self.egg(body.get("egg", server["egg"]))
        if egg is None:
            return _invalid("egg", "The selected egg is invalid.", "exists")
        current = server["container"]["environment"]
        server["container"]["environment"] = {
            v["env_variable"]: body["environment"].get(
                v["env_variable"], current.get(v["env_variable"], v["default_value"])
            )
            for v in egg["variables"]
        }
        server.update(egg=egg["id"], nest=egg["nest"], _skip_scripts=body["skip_scripts"])
        if body.get("image"):
            server["container"]["image"] = body["image"]
        if body.get("startup"):
            server["container"]["startup_command"] = body["startup"]
        return httpx.Response(200, json={"object": "server", "attributes": self._view(server)})

    def _delete(self, request: httpx.Request, body: Any, server_id: int, force: str | None) -> httpx.Response:
        server = self.servers.get(server_id)
        if server is None:
            return _not_found()
        if self.wings_down and not force:
            return _error(502, "Could not communicate with the daemon.", "DaemonConnectionException")
        for allocation in self.allocations_of(server_id):
            allocation["server"] = None
        del self.servers[server_id]
        return httpx.Response(204)
