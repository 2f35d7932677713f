"""A stateful Plesk REST API v2: customers, subscriptions (domains) with plans, status and system users.

Modelled on the panel's rules where they matter to a client: only the administrator may call it (Basic
auth or ``X-API-Key``, else 401), customer logins are unique (409 with code 1007), domain names and
system (FTP) logins are unique server-wide (400), unknown fields, plans and owners are refused (400),
errors are ``{"code", "message"}`` with real HTTP statuses, while the CLI gateway answers HTTP 200 with
the utility's exit ``code``. Plesk creates subscriptions synchronously: there is no state to poll.

Knobs beyond the base ones: ``ignore_name_filter`` (``GET /domains?name=`` lists every domain, as a
Plesk without the filter does).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx

from tests.fakes.base import FakeProvider

API = "/api/v2"
CLIENT_FIELDS = {"name", "company", "login", "email", "password", "type", "external_id", "description", "locale"}
DOMAIN_FIELDS = {"name", "description", "external_id", "owner_client", "hosting_type", "hosting_settings", "plan"}
CUSTOMER_LOGIN = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,59}$")
SYSTEM_LOGIN = re.compile(r"^[a-z][a-z0-9._-]{0,15}$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _error(status: int, message: str, code: int = 0) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": message})


def _not_found(what: str) -> httpx.Response:
    return _error(404, f"{what} not found")


class FakePlesk(FakeProvider):
    def __init__(self, login: str = "admin", password: str = "Adm1n-Secret-Pw", api_key: str | None = None) -> None:
        super().__init__()
        self.login = login
        self.password = password
        self.api_key = api_key
        self.ignore_name_filter = False
        self.plans = {"Default Domain", "Unlimited"}
        self.clients: dict[int, dict[str, Any]] = {}
        self.domains: dict[int, dict[str, Any]] = {}
        self.system_logins: set[str] = {"root", "admin", "psaadm"}
        self._next_id = 0

    # --- world building and state helpers -----------------------------------------------------------
    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_client(
        self, login: str, email: str, external_id: str = "", password: str = "seeded-Pw-1"
    ) -> dict[str, Any]:
        client_id = self.next_id()
        self.clients[client_id] = {
            "id": client_id,
            "guid": f"c-{client_id}",
            "login": login,
            "name": login,
            "email": email,
            "type": "customer",
            "external_id": external_id,
            "status": 0,
            "password": password,
        }
        return self.clients[client_id]

    def add_domain(self, name: str, owner_id: int, ftp_login: str, plan: str = "Default Domain") -> dict[str, Any]:
        domain_id = self.next_id()
        self.domains[domain_id] = {
            "id": domain_id,
            "guid": f"d-{domain_id}",
            "name": name,
            "owner_id": owner_id,
            "ftp_login": ftp_login,
            "ftp_password": "seeded-Ftp-1",
            "plan": plan,
            "status": "active",
            "external_id": "",
        }
        self.system_logins.add(ftp_login)
        return self.domains[domain_id]

    def domains_of(self, external_id: str | int) -> list[dict[str, Any]]:
        return [d for d in self.domains.values() if d["external_id"] == str(external_id)]

    def domain_named(self, name: str) -> dict[str, Any] | None:
        return next((d for d in self.domains.values() if d["name"] == name), None)

    # --- dispatch -----------------------------------------------------------------------------------
    def _authorized(self, request: httpx.Request) -> bool:
        if self.api_key is not None and request.headers.get("X-API-Key") == self.api_key:
            return True
        expected = base64.b64encode(f"{self.login}:{self.password}".encode()).decode()
        return bool(request.headers.get("Authorization") == f"Basic {expected}")

    def route(self, request: httpx.Request) -> httpx.Response:
        if not self._authorized(request):
            return _error(401, "Authentication failed", 1)
        path = request.url.path.removeprefix(API)
        try:
            body: Any = json.loads(request.content) if request.content else {}
        except ValueError:
            return _error(400, "Malformed JSON")
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if method == request.method and match:
                args = [int(g) for g in match.groups()]
                response: httpx.Response = handler(request, body, *args)
                return response
        return _error(404, "Not found")

    def _routes(self) -> list[tuple[str, str, Any]]:
        return [
            (
                "GET",
                "/server",
                lambda r, b: httpx.Response(200, json={"hostname": "plesk.test", "panel_version": "18.0.60"}),
            ),
            (
                "GET",
                "/clients",
                lambda r, b: httpx.Response(200, json=[self._client_view(c) for c in self.clients.values()]),
            ),
            ("POST", "/clients", self._create_client),
            ("GET", r"/clients/(\d+)", self._get_client),
            ("PUT", r"/clients/(\d+)", self._update_client),
            ("GET", "/domains", self._list_domains),
            ("POST", "/domains", self._create_domain),
            ("GET", r"/domains/(\d+)", self._get_domain),
            ("PUT", r"/domains/(\d+)", self._update_domain),
            ("DELETE", r"/domains/(\d+)", self._delete_domain),
            ("GET", r"/domains/(\d+)/client", self._domain_client),
            ("GET", r"/domains/(\d+)/status", self._get_status),
            ("PUT", r"/domains/(\d+)/status", self._put_status),
            ("POST", "/cli/subscription/call", self._cli_subscription),
        ]

    # --- clients ------------------------------------------------------------------------------------
    @staticmethod
    def _client_view(client: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in client.items() if k != "password"}

    def _create_client(self, request: httpx.Request, body: Any) -> httpx.Response:
        unknown = set(body) - CLIENT_FIELDS
        if unknown:
            return _error(400, f"Unknown fields: {', '.join(sorted(unknown))}")
        login = str(body.get("login") or "")
        if not CUSTOMER_LOGIN.fullmatch(login):
            return _error(400, "The login is invalid")
        if any(c["login"] == login for c in self.clients.values()):
            return _error(409, f"Client with login {login} already exists", 1007)
        if not body.get("name") or not body.get("email") or len(str(body.get("password") or "")) < 8:
            return _error(400, "name, email and a password of 8 or more characters are required")
        client = self.add_client(login, body["email"], str(body.get("external_id") or ""), body["password"])
        client.update(name=body["name"], type=body.get("type") or "customer")
        return httpx.Response(201, json={"id": client["id"], "guid": client["guid"]})

    def _get_client(self, request: httpx.Request, body: Any, client_id: int) -> httpx.Response:
        client = self.clients.get(client_id)
        return httpx.Response(200, json=self._client_view(client)) if client else _not_found("Client")

    def _update_client(self, request: httpx.Request, body: Any, client_id: int) -> httpx.Response:
        client = self.clients.get(client_id)
        if client is None:
            return _not_found("Client")
        if "password" in body:
            if len(str(body["password"])) < 8:
                return _error(400, "The password is too weak")
            client["password"] = body["password"]
        return httpx.Response(200, json={"id": client_id, "guid": client["guid"]})

    # --- domains ------------------------------------------------------------------------------------
    @staticmethod
    def _domain_view(domain: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": domain["id"],
            "name": domain["name"],
            "ascii_name": domain["name"],
            "guid": domain["guid"],
            "hosting_type": "virtual",
            "created": "2024-01-01",
        }

    def _list_domains(self, request: httpx.Request, body: Any) -> httpx.Response:
        name = request.url.params.get("name")
        found = [
            self._domain_view(d)
            for d in self.domains.values()
            if name is None or self.ignore_name_filter or d["name"] == name
        ]
        return httpx.Response(200, json=found)

    def _create_domain(self, request: httpx.Request, body: Any) -> httpx.Response:
        unknown = set(body) - DOMAIN_FIELDS
        if unknown:
            return _error(400, f"Unknown fields: {', '.join(sorted(unknown))}")
        name = str(body.get("name") or "")
        if not DOMAIN.fullmatch(name):
            return _error(400, "The domain name is invalid")
        if self.domain_named(name) is not None:
            return _error(400, f"Domain {name} already exists", 1007)
        owner: dict[str, Any] = body.get("owner_client") or {}
        client = self.clients.get(int(owner.get("id") or 0))
        if client is None or owner.get("login", client["login"]) != client["login"]:
            return _error(400, "Unable to find the owner client")
        plan = (body.get("plan") or {}).get("name")
        if plan not in self.plans:
            return _error(400, f"Unable to find service plan {plan}")
        hosting = body.get("hosting_settings") or {}
        ftp_login = str(hosting.get("ftp_login") or "")
        if body.get("hosting_type") != "virtual" or not SYSTEM_LOGIN.fullmatch(ftp_login):
            return _error(400, "Virtual hosting needs a valid ftp_login")
        if ftp_login in self.system_logins:
            return _error(400, f"The system user {ftp_login} already exists")
        if len(str(hosting.get("ftp_password") or "")) < 8:
            return _error(400, "The FTP password is too weak")
        domain = self.add_domain(name, client["id"], ftp_login, plan)
        domain.update(ftp_password=hosting["ftp_password"], external_id=str(body.get("external_id") or ""))
        return httpx.Response(201, json={"id": domain["id"], "guid": domain["guid"]})

    def _get_domain(self, request: httpx.Request, body: Any, domain_id: int) -> httpx.Response:
        domain = self.domains.get(domain_id)
        return httpx.Response(200, json=self._domain_view(domain)) if domain else _not_found("Domain")

    def _update_domain(self, request: httpx.Request, body: Any, domain_id: int) -> httpx.Response:
        domain = self.domains.get(domain_id)
        if domain is None:
            return _not_found("Domain")
        hosting = body.get("hosting_settings") or {}
        if hosting:
            if hosting.get("ftp_login") != domain["ftp_login"] or len(str(hosting.get("ftp_password") or "")) < 8:
                return _error(400, "hosting_settings needs the current ftp_login and a strong ftp_password")
            domain["ftp_password"] = hosting["ftp_password"]
        return httpx.Response(200, json={"id": domain_id, "guid": domain["guid"]})

    def _delete_domain(self, request: httpx.Request, body: Any, domain_id: int) -> httpx.Response:
        domain = self.domains.pop(domain_id, None)
        if domain is None:
            return _not_found("Domain")
        self.system_logins.discard(domain["ftp_login"])
        return httpx.Response(200, json={"status": "success"})

    def _domain_client(self, request: httpx.Request, body: Any, domain_id: int) -> httpx.Response:
        domain = self.domains.get(domain_id)
        if domain is None:
            return _not_found("Domain")
        return httpx.Response(200, json=self._client_view(self.clients[domain["owner_id"]]))

    def _get_status(self, request: httpx.Request, body: Any, domain_id: int) -> httpx.Response:
        domain = self.domains.get(domain_id)
        return httpx.Response(200, json={"status": domain["status"]}) if domain else _not_found("Domain")

    def _put_status(self, request: httpx.Request, body: Any, domain_id: int) -> httpx.Response:
        domain = self.domains.get(domain_id)
        if domain is None:
            return _not_found("Domain")
        if body.get("status") not in ("active", "suspended"):
            return _error(400, "status must be active or suspended")
        domain["status"] = body["status"]
        return httpx.Response(200, json={"status": "success"})

    # --- CLI gateway --------------------------------------------------------------------------------
    def _cli_subscription(self, request: httpx.Request, body: Any) -> httpx.Response:
        params = body.get("params") or []

        def done(code: int, stdout: str = "", stderr: str = "") -> httpx.Response:
            return httpx.Response(200, json={"code": code, "stdout": stdout, "stderr": stderr})

        if len(params) != 4 or params[0] != "--switch-subscription" or params[2] != "-service-plan":
            return done(1, stderr="Unknown command or option")
        domain = self.domain_named(params[1])
        if domain is None:
            return done(1, stderr=f"Subscription {params[1]} does not exist")
        if params[3] not in self.plans:
            return done(1, stderr="Unable to find service plan")
        domain["plan"] = params[3]
        return done(0, stdout="SUCCESS: Subscription switched")
