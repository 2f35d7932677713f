"""A stateful WHM API 1 (plus the API 0 shapes of ``listpkgs``/``listaccts``): packages and cPanel accounts.

Modelled on WHM where it matters to a client: errors come back as HTTP 200 with ``metadata.result = 0``
and a reason; usernames follow cPanel's rules (``a-z0-9``, a letter first, not ``test...`` nor
``...assword``, no reserved name, the first 8 characters unique while database prefixing is on);
domains and usernames are unique; parameters arrive in the query string or a form body; every call needs
``Authorization: whm <user>:<token>`` (HTTP 401 otherwise). WHM answers synchronously: an account
exists as soon as ``createacct`` returns, so there is no provider task to poll.

Knobs beyond the base ones: ``strict_repeats`` (suspending a suspended account or unsuspending an active
one answers ``result = 0``), ``busy_next(times)`` (the next state changes answer a "locked" reason and
change nothing), ``before_next(function, action)`` (another client acts just before that call),
``denied`` (functions the token lacks the privilege for: ``result = 0`` "Access denied").
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx

from tests.fakes.base import FakeProvider

USERNAME = re.compile(r"^[a-z][a-z0-9]{0,15}$")
DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$")
RESERVED = {"all", "admin", "cpanel", "ftp", "mail", "mysql", "nobody", "root", "virtfs", "www"}
CHANGES = {"createacct", "suspendacct", "unsuspendacct", "changepackage", "modifyacct", "removeacct"}
ENDPOINTS = CHANGES | {"listpkgs", "listaccts", "accountsummary", "create_user_session"}


def _result(function: str, ok: bool, reason: str, data: Any = None) -> httpx.Response:
    metadata = {"command": function, "result": int(ok), "reason": reason, "version": 1}
    body: dict[str, Any] = {"metadata": metadata}
    if data is not None:
        body["data"] = data
    return httpx.Response(200, json=body)


class FakeWhm(FakeProvider):
    def __init__(self, token: str = "FAKEWHMTOKEN0123456789ABCDEFGHIJ", user: str = "root") -> None:
        super().__init__()
        self.authorization = f"whm {user}:{token}"
        self.packages = ["basic", "pro"]
        self.accounts: dict[str, dict[str, Any]] = {}
        self.strict_repeats = False
        self.denied: set[str] = set()
        self._busy = 0
        self._before: dict[str, list[Callable[[], None]]] = {}

    # --- knobs and state ----------------------------------------------------------------------------
    def busy_next(self, times: int = 1) -> None:
        self._busy += times

    def before_next(self, function: str, action: Callable[[], None]) -> None:
        self._before.setdefault(function, []).append(action)

    def add_account(self, user: str, domain: str, plan: str = "basic", email: str = "owner@example.net") -> None:
        self.accounts[user] = {"user": user, "domain": domain, "plan": plan, "email": email, "suspended": 0}

    def on_domain(self, domain: str) -> list[dict[str, Any]]:
        return [a for a in self.accounts.values() if a["domain"] == domain]

    # --- dispatch -----------------------------------------------------------------------------------
    def route(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != self.authorization:
            return httpx.Response(401, text="Access denied")
        function = request.url.path.removeprefix("/json-api/")
        params = dict(request.url.params)
        if request.content and "form" in request.headers.get("Content-Type", ""):
            params.update(parse_qsl(request.content.decode()))
        for action in self._before.pop(function, []):
            action()
        if function in self.denied:
            return _result(function, False, "Access denied")
        if function in CHANGES and self._busy:
            self._busy -= 1
            return _result(function, False, "The account database is locked by another process; try again later.")
        if function not in ENDPOINTS:
            return _result(function, False, f"Unknown app ({function}) requested for this version of the API.")
        if params.get("api.version") != "1" and function not in ("listpkgs", "listaccts"):
            return httpx.Response(200, json={"status": 0, "statusmsg": "API 0 is not modelled for this function"})
        response: httpx.Response = getattr(self, f"_{function}")(function, params)
        return response

    def _view(self, account: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in account.items() if k != "password"}

    def _listpkgs(self, function: str, params: dict[str, str]) -> httpx.Response:
        names = [{"name": p} for p in self.packages]
        if params.get("api.version") != "1":
            return httpx.Response(200, json={"package": names})
        return _result(function, True, "OK", {"pkg": names})

    def _listaccts(self, function: str, params: dict[str, str]) -> httpx.Response:
        found = list(self.accounts.values())
        field, search = params.get("searchtype"), params.get("search")
        if field in ("user", "domain") and search is not None:
            if params.get("searchmethod") == "exact":
                found = [a for a in found if a[field] == search.lower()]
            else:
                found = [a for a in found if re.search(search, a[field])]
        views = [self._view(a) for a in found]
        if params.get("api.version") != "1":
            return httpx.Response(200, json={"status": 1, "statusmsg": "Ok", "acct": views})
        return _result(function, True, "OK", {"acct": views})

    def _accountsummary(self, function: str, params: dict[str, str]) -> httpx.Response:
        user, domain = params.get("user"), params.get("domain")
        found = [a for a in self.accounts.values() if a["user"] == user or a["domain"] == domain]
        if not found:
            return _result(function, False, "Account does not exist.")
        return _result(function, True, "OK", {"acct": [self._view(found[0])]})

    def _username_problem(self, user: str) -> str | None:
        if not USERNAME.match(user) or user.startswith("test") or user.endswith("assword"):
            return f"Invalid username “{user}”: use a-z and 0-9, start with a letter, at most 16 characters."
        if user in RESERVED:
            return f"The username “{user}” is reserved."
        if user in self.accounts:
            return f"This system already has an account named “{user}”."
        clash = next((u for u in self.accounts if u[:8] == user[:8]), None)
        if clash is not None:
            return f"The username “{user}” conflicts with the database prefix of “{clash}”."
        return None

    def _createacct(self, function: str, params: dict[str, str]) -> httpx.Response:
        user = params.get("username", "").lower()
        domain = params.get("domain", "").lower()
        plan = params.get("plan", "")
        password = params.get("password")
        problem = self._username_problem(user)
        if problem is None and not DOMAIN.match(domain):
            problem = f"“{domain}” is not a valid domain name."
        if problem is None and self.on_domain(domain):
            problem = f"The domain “{domain}” already exists on this server."
        if problem is None and plan not in self.packages:
            problem = f"Unable to find the package “{plan}”."
        if problem is None and password is not None and len(password) < 12:
            problem = "Sorry, the password you selected cannot be used because it is too weak."
        if problem is not None:
            return _result(function, False, problem)
        self.add_account(user, domain, plan, params.get("contactemail", ""))
        self.accounts[user]["password"] = password or secrets.token_urlsafe(16)
        return _result(function, True, "Account Creation Ok", {"package": plan, "ip": "192.0.2.10"})

    def _suspension(self, function: str, params: dict[str, str], target: int) -> httpx.Response:
        account = self.accounts.get(params.get("user", ""))
        if account is None:
            return _result(function, False, f"The user “{params.get('user')}” does not exist.")
        if self.strict_repeats and account["suspended"] == target:
            return _result(function, False, f"The account is already {'suspended' if target else 'active'}.")
        account["suspended"] = target
        return _result(function, True, "OK")

    def _suspendacct(self, function: str, params: dict[str, str]) -> httpx.Response:
        return self._suspension(function, params, 1)

    def _unsuspendacct(self, function: str, params: dict[str, str]) -> httpx.Response:
        return self._suspension(function, params, 0)

    def _changepackage(self, function: str, params: dict[str, str]) -> httpx.Response:
        account = self.accounts.get(params.get("user", ""))
        if account is None or params.get("pkg") not in self.packages:
            return _result(function, False, "The account or the package does not exist.")
        account["plan"] = params["pkg"]
        return _result(function, True, "OK")

    def _modifyacct(self, function: str, params: dict[str, str]) -> httpx.Response:
        # Unknown parameters (the PHP's ``plan``) are ignored and the answer is still a success.
        if params.get("user") not in self.accounts:
            return _result(function, False, "Account does not exist.")
        return _result(function, True, "Account Modified")

    def _removeacct(self, function: str, params: dict[str, str]) -> httpx.Response:
        if self.accounts.pop(params.get("user", ""), None) is None:
            return _result(function, False, f"The user “{params.get('user')}” does not exist.")
        return _result(function, True, "Account Removed")

    def _create_user_session(self, function: str, params: dict[str, str]) -> httpx.Response:
        if params.get("user") not in self.accounts or params.get("service") != "cpaneld":
            return _result(function, False, "Cannot create a session for that user and service.")
        session = secrets.token_hex(16)
        url = f"https://whm.example.com:2083/cpsess{secrets.randbelow(10**10):010d}/login/?session={session}"
        data = {"url": url, "session": session, "expires": 1700000000, "service": "cpaneld"}
        return _result(function, True, "OK", data)
