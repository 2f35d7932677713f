"""A stateful Enhance API (``{host}/api``): customer organisations, logins, members, subscriptions, websites.

Modelled on the panel's rules a client depends on: bearer token or 401 ``invalid_session_token``; every
error is ``{"code", "message"}``; listings are ``{"items", "total"}`` paged by ``offset``/``limit`` with
the limit capped at ``max_limit``; login e-mails are unique per realm (the provider organisation) and a
member per login per organisation (409 ``already_exists``); an organisation's owner is set only by
``PUT /orgs/{id}/owner``; ``DELETE`` of a subscription soft-deletes it and its websites (it stays in the
customer's listing as ``deleted``, by id it is 404); a domain is held by one live website.

Knobs beyond the base ones: ``lag_reads`` (after a PATCH, that many reads of the subscription still show
it as it was: the change settles per read), ``mo_level`` (False: the token lacks master-org rights, so
``/servers/groups`` and ``/logins`` answer 403), ``prohibited`` (domains ``domains/check`` refuses) and
``add_login`` / ``add_customer`` (an e-mail already in the realm, an ownerless org left by the PHP code).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx

from tests.fakes.base import FakeProvider

MASTER = "8d5ab1f2-3c4e-4f60-9a7b-0c1d2e3f4a5b"
API = "/api"
ROLES = {"Owner", "SuperAdmin", "Business", "SiteAccess", "Support", "Sysadmin"}
SEG = r"([^/]+)"


def _error(status: int, code: str, message: str | None = None) -> httpx.Response:
    body = {"code": code} if message is None else {"code": code, "message": message}
    return httpx.Response(status, json=body)


def _not_found() -> httpx.Response:
    return _error(404, "not_found", "Not found")


def _forbidden() -> httpx.Response:
    return _error(403, "insufficient_privileges", "Insufficient privileges")


def _invalid(message: str) -> httpx.Response:
    return _error(400, "invalid_input", message)


def _created(object_id: str | int) -> httpx.Response:
    return httpx.Response(201, json={"id": object_id})


class FakeEnhance(FakeProvider):
    def __init__(self, api_key: str = "enhance-fake-token-0000", master: str = MASTER) -> None:
        super().__init__()
        self.api_key = api_key
        self.master = master
        self.max_limit = 10
        self.lag_reads = 0
        self.mo_level = True  # False: a token without master-org rights (no /servers/groups, no /logins)
        self.prohibited = {"example.org"}
        self.orgs: dict[str, dict[str, Any]] = {
            master: {"id": master, "name": "Provider", "status": "active", "parentId": None, "ownerId": None}
        }
        self.plans = {
            1: {"id": 1, "name": "Basic", "planType": "shared"},
            2: {"id": 2, "name": "Pro", "planType": "shared"},
        }
        self.logins: dict[str, dict[str, Any]] = {}
        self.members: dict[str, list[dict[str, Any]]] = {}
        self.subscriptions: dict[int, dict[str, Any]] = {}
        self.websites: dict[str, dict[str, Any]] = {}
        self.server_groups = [{"id": str(uuid.uuid4()), "name": "eu", "serverCount": 1}]
        self.sso_links: dict[str, str] = {}  # token -> member it logs in
        self._next_subscription = 41

    # --- world building and state views -------------------------------------------------------------
    def add_login(self, email: str, name: str = "Seeded", password: str = "seeded-password") -> dict[str, Any]:
        login = {"id": str(uuid.uuid4()), "email": email, "name": name, "realm": self.master, "password": password}
        self.logins[login["id"]] = login
        return login

    def add_customer(self, name: str) -> dict[str, Any]:
        org = {"id": str(uuid.uuid4()), "name": name, "status": "active", "parentId": self.master, "ownerId": None}
        self.orgs[org["id"]] = org
        self.members[org["id"]] = []
        return org

    def customers(self) -> list[dict[str, Any]]:
        return [self._org_view(o) for o in self.orgs.values() if o["parentId"] == self.master]

    def live_subscriptions(self, friendly_name: str) -> list[dict[str, Any]]:
        return [
            s for s in self.subscriptions.values() if s["friendlyName"] == friendly_name and s["status"] == "active"
        ]

    def live_websites(self, subscription_id: int | None = None) -> list[dict[str, Any]]:
        return [
            w
            for w in self.websites.values()
            if w["status"] == "active" and subscription_id in (None, w["subscriptionId"])
        ]

    def owner_login(self, org_id: str) -> dict[str, Any] | None:
        member = self._member(org_id, self.orgs[org_id]["ownerId"])
        return self.logins[member["loginId"]] if member else None

    # --- dispatch -----------------------------------------------------------------------------------
    def route(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_session_token", "Invalid session")
        path = request.url.path.removeprefix(API)
        body: Any = json.loads(request.content) if request.content else {}
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if method == request.method and match:
                response: httpx.Response = handler(request, body, *match.groups())
                return response
        return _not_found()

    def _routes(self) -> list[tuple[str, str, Any]]:
        sub = rf"/orgs/{SEG}/subscriptions/(\d+)"
        return [
            ("GET", rf"/orgs/{SEG}", self._get_org),
            ("GET", rf"/orgs/{SEG}/plans", self._plans),
            ("GET", rf"/orgs/{SEG}/customers", self._customers),
            ("POST", rf"/orgs/{SEG}/customers", self._create_customer),
            ("GET", rf"/orgs/{SEG}/customers/{SEG}/subscriptions", self._subscriptions),
            ("POST", rf"/orgs/{SEG}/customers/{SEG}/subscriptions", self._create_subscription),
            ("GET", sub, self._get_subscription),
            ("PATCH", sub, self._update_subscription),
            ("DELETE", sub, self._delete_subscription),
            ("GET", "/logins", self._logins),
            ("POST", "/logins", self._create_login),
            ("GET", rf"/orgs/{SEG}/members", self._members),
            ("POST", rf"/orgs/{SEG}/members", self._add_member),
            ("PUT", rf"/orgs/{SEG}/owner", self._set_owner),
            ("GET", rf"/orgs/{SEG}/members/{SEG}/sso", self._sso),
            ("GET", "/servers/groups", self._groups),
            ("POST", rf"/orgs/{SEG}/domains/check", self._check_domain),
            ("GET", rf"/orgs/{SEG}/websites", self._websites),
            ("POST", rf"/orgs/{SEG}/websites", self._create_website),
        ]

    # --- helpers ------------------------------------------------------------------------------------
    def _page(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        offset = int(request.url.params.get("offset") or 0)
        limit = min(int(request.url.params.get("limit") or self.max_limit), self.max_limit)
        return httpx.Response(200, json={"items": items[offset : offset + limit], "total": len(items)})

    def _visible(self, org_id: str) -> dict[str, Any] | None:
        """The organisation if the token's (the provider's) organisation may act on it."""
        org = self.orgs.get(org_id)
        return org if org and self.master in (org["id"], org["parentId"]) else None

    def _customer(self, parent: str, org_id: str) -> dict[str, Any] | None:
        org = self.orgs.get(org_id)
        return org if parent == self.master and org and org["parentId"] == parent else None

    def _member(self, org_id: str, member_id: Any) -> dict[str, Any] | None:
        return next((m for m in self.members.get(org_id, []) if m["id"] == member_id), None)

    def _org_view(self, org: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in org.items() if v is not None}
        member = self._member(org["id"], org["ownerId"])
        if member:
            login = self.logins[member["loginId"]]
            view.update(ownerLoginId=login["id"], ownerEmail=login["email"], ownerName=login["name"])
        return view

    def _subscription_view(self, sub: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in sub.items() if not k.startswith("_") and k != "suspended"}
        view["planName"] = self.plans[sub["planId"]]["name"]
        if sub["suspended"]:
            view["suspendedBy"] = self.master
        return view

    def _live_subscription(self, org_id: str, subscription_id: str) -> dict[str, Any] | None:
        sub = self.subscriptions.get(int(subscription_id))
        ok = sub and sub["subscriberId"] == org_id and sub["status"] == "active" and self._visible(org_id)
        return sub if ok else None

    # --- organisations ------------------------------------------------------------------------------
    def _get_org(self, request: httpx.Request, body: Any, org_id: str) -> httpx.Response:
        org = self._visible(org_id)
        return httpx.Response(200, json=self._org_view(org)) if org else _not_found()

    def _plans(self, request: httpx.Request, body: Any, org_id: str) -> httpx.Response:
        return self._page(request, list(self.plans.values())) if org_id == self.master else _not_found()

    def _customers(self, request: httpx.Request, body: Any, org_id: str) -> httpx.Response:
        return self._page(request, self.customers()) if org_id == self.master else _not_found()

    def _create_customer(self, request: httpx.Request, body: Any, org_id: str) -> httpx.Response:
        if org_id != self.master:
            return _not_found()
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            return _invalid("name is required")
        return _created(self.add_customer(body["name"])["id"])

    # --- logins and members -------------------------------------------------------------------------
    def _logins(self, request: httpx.Request, body: Any) -> httpx.Response:
        if not self.mo_level or request.url.params.get("realmId") != self.master:
            return _forbidden()
        found = [{k: v for k, v in x.items() if k in ("id", "email", "name")} for x in self.logins.values()]
        return self._page(request, found)

    def _create_login(self, request: httpx.Request, body: Any) -> httpx.Response:
        if not self._visible(request.url.params.get("orgId", "")):
            return _not_found()
        email, name, password = body.get("email"), body.get("name"), body.get("password")
        if not isinstance(email, str) or "@" not in email or not name or not isinstance(password, str):
            return _invalid("email, name and password are required")
        if len(password) < 8:
            return _invalid("password is too weak")
        if any(x["email"].casefold() == email.casefold() for x in self.logins.values()):
            return _error(409, "already_exists", "A login with this email already exists")
        return _created(self.add_login(email, name, password)["id"])

    def _members(self, request: httpx.Request, body: Any, org_id: str) -> httpx.Response:
        if not self._visible(org_id):
            return _not_found()
        found = []
        for member in self.members.get(org_id, []):
            login = self.logins[member["loginId"]]
            found.append({**member, "email": login["email"], "name": login["name"], "isActive": True})
        return self._page(request, found)

    def _add_member(self, request: httpx.Request, body: Any, org_id: str) -> httpx.Response:
        if not self._visible(org_id):
            return _not_found()
        roles = body.get("roles")
        if body.get("loginId") not in self.logins or not isinstance(roles, list) or not set(roles) <= ROLES:
            return _invalid("a known loginId and valid roles are required")
        members = self.members.setdefault(org_id, [])
        if any(m["loginId"] == body["loginId"] for m in members):
            return _error(409, "already_exists", "Already a member")
        member = {"id": str(uuid.uuid4()), "loginId": body["loginId"], "roles": roles}
        members.append(member)
        return _created(member["id"])

    def _set_owner(self, request: httpx.Request, body: Any, org_id: str) -> httpx.Response:
        org = self._visible(org_id)
        if not org:
            return _not_found()
        if self._member(org_id, body.get("memberId")) is None:
            return _invalid("memberId is not a member of this organisation")
        org["ownerId"] = body["memberId"]
        return httpx.Response(204)

    def _sso(self, request: httpx.Request, body: Any, org_id: str, member_id: str) -> httpx.Response:
        if not self._visible(org_id) or self._member(org_id, member_id) is None:
            return _not_found()
        token = uuid.uuid4().hex
        self.sso_links[token] = member_id
        return httpx.Response(201, json=f"https://cp.test/login/otp?token={token}")

    def _groups(self, request: httpx.Request, body: Any) -> httpx.Response:
        return self._page(request, self.server_groups) if self.mo_level else _forbidden()

    # --- subscriptions ------------------------------------------------------------------------------
    def _subscriptions(self, request: httpx.Request, body: Any, parent: str, org_id: str) -> httpx.Response:
        if not self._customer(parent, org_id):
            return _not_found()
        found = [self._subscription_view(s) for s in self.subscriptions.values() if s["subscriberId"] == org_id]
        return self._page(request, found)

    def _create_subscription(self, request: httpx.Request, body: Any, parent: str, org_id: str) -> httpx.Response:
        if not self._customer(parent, org_id):
            return _not_found()
        plan = body.get("planId")
        if not isinstance(plan, int) or plan not in self.plans:
            return _invalid("planId is not a plan of this organisation")
        self._next_subscription += 1
        self.subscriptions[self._next_subscription] = {
            "id": self._next_subscription,
            "planId": plan,
            "subscriberId": org_id,
            "vendorId": parent,
            "status": "active",
            "friendlyName": body.get("friendlyName") or "",
            "suspended": False,
            "_shown": None,
            "_lag": 0,
        }
        return _created(self._next_subscription)

    def _get_subscription(self, request: httpx.Request, body: Any, org_id: str, sub_id: str) -> httpx.Response:
        sub = self._live_subscription(org_id, sub_id)
        if sub is None:
            return _not_found()
        if sub["_lag"] > 0:  # the last PATCH has not settled yet
            sub["_lag"] -= 1
            return httpx.Response(200, json=sub["_shown"])
        return httpx.Response(200, json=self._subscription_view(sub))

    def _update_subscription(self, request: httpx.Request, body: Any, org_id: str, sub_id: str) -> httpx.Response:
        sub = self._live_subscription(org_id, sub_id)
        if sub is None:
            return _not_found()
        if "planId" in body and body["planId"] not in self.plans:
            return _invalid("planId is not a plan of this organisation")
        if "isSuspended" in body and not isinstance(body["isSuspended"], bool):
            return _invalid("isSuspended must be a boolean")
        sub["_shown"], sub["_lag"] = self._subscription_view(sub), self.lag_reads
        if "planId" in body:
            sub["planId"] = body["planId"]
        if "isSuspended" in body:
            sub["suspended"] = body["isSuspended"]
        return httpx.Response(204)

    def _delete_subscription(self, request: httpx.Request, body: Any, org_id: str, sub_id: str) -> httpx.Response:
        sub = self._live_subscription(org_id, sub_id)
        if sub is None:
            return _not_found()
        sub["status"] = "deleted"
        for website in self.live_websites(sub["id"]):
            website["status"] = "deleted"
        return httpx.Response(204)

    # --- domains and websites -----------------------------------------------------------------------
    def _check_domain(self, request: httpx.Request, body: Any, org_id: str) -> httpx.Response:
        if not self._visible(org_id):
            return _not_found()
        domain = str(body.get("domain") or "").lower()
        live = next((w for w in self.live_websites() if w["domain"] == domain), None)
        if live is not None:
            if live["orgId"] == org_id:
                return httpx.Response(200, json={"status": "inUseCurrentOrg", "websiteId": live["id"]})
            return httpx.Response(200, json={"status": "inUseAnotherOrg"})
        if domain in self.prohibited:
            return httpx.Response(200, json={"status": "prohibited"})
        if any(w["domain"] == domain for w in self.websites.values()):
            return httpx.Response(200, json={"status": "inUseDeletedSite"})
        return httpx.Response(200, json={"status": "notInUse"})

    def _websites(self, request: httpx.Request, body: Any, org_id: str) -> httpx.Response:
        if not self._visible(org_id):
            return _not_found()
        wanted_sub = request.url.params.get("subscriptionId")
        search = request.url.params.get("search", "")
        found = [
            {k: v for k, v in w.items() if k != "orgId"}
            for w in self.live_websites()
            if w["orgId"] == org_id and wanted_sub in (None, str(w["subscriptionId"])) and search in w["domain"]
        ]
        return self._page(request, found)

    def _create_website(self, request: httpx.Request, body: Any, org_id: str) -> httpx.Response:
        if not self._visible(org_id):
            return _not_found()
        domain = body.get("domain")
        sub = (
            self.subscriptions.get(body.get("subscriptionId")) if isinstance(body.get("subscriptionId"), int) else None
        )
        if not isinstance(domain, str) or not sub or sub["subscriberId"] != org_id or sub["status"] != "active":
            return _invalid("a domain and an active subscriptionId of this organisation are required")
        group = body.get("serverGroupId")
        if group is not None and all(g["id"] != group for g in self.server_groups):
            return _invalid("unknown serverGroupId")
        if domain in self.prohibited or any(w["domain"] == domain for w in self.live_websites()):
            return _error(400, "domain_unavailable", "The domain is already in use")
        website = {
            "id": str(uuid.uuid4()),
            "domain": domain,
            "subscriptionId": sub["id"],
            "orgId": org_id,
            "serverGroupId": group,
            "status": "active",
        }
        self.websites[website["id"]] = website
        return _created(website["id"])
