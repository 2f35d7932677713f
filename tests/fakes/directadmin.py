"""A stateful DirectAdmin legacy API: user accounts owned by their creator, user packages, reseller IPs.

Modelled where it matters to a client: Basic auth (``<admin>|<user>`` logs in as one of the admin's
users; anything else is 401), form or JSON POST bodies, ``text/plain`` URL-encoded answers with errors
as HTTP 200 + ``error=1`` (details ending in a raw ``&#60;br&#62;`` as the panel writes them), usernames
and domains unique server-wide, DirectAdmin's username rules, "difficult password" enforcement, and
``CMD_API_SELECT_USERS`` suspension that toggles (``toggle=True``, older builds) or follows
``dosuspend``/``dounsuspend`` (``toggle=False``). User creation and deletion are synchronous on the
panel, so there is no asynchronous state to poll.

Knobs beyond the base ones: ``toggle``; ``html_login`` (every call answers HTTP 200 with the HTML login
page, as older builds do for bad credentials); ``forbidden`` (commands a restricted Login Key may not
use: HTTP 403). ``mails`` lists the accounts the panel sent its own welcome e-mail for, ``login_urls``
maps each minted one-time hash to the user it logs in.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from tests.fakes.base import FakeProvider

USERNAME = re.compile(r"^[a-z][a-z0-9]{2,9}$")
RESERVED = {"admin", "root", "mysql", "apache", "nobody", "diradmin", "mail"}
DOMAIN = re.compile(r"^([a-z0-9-]+\.)+[a-z]{2,}$")
HTML = "text/html; charset=utf-8"


def _answer(pairs: list[tuple[str, str]] | dict[str, str]) -> httpx.Response:
    return httpx.Response(200, text=urlencode(pairs), headers={"Content-Type": "text/plain"})


def _ok(text: str, details: str = "") -> httpx.Response:
    return _answer({"error": "0", "text": text, "details": details})


def _error(text: str, details: str) -> httpx.Response:
    body = urlencode({"error": "1", "text": text, "details": details}) + "&#60;br&#62;"
    return httpx.Response(200, text=body, headers={"Content-Type": "text/plain"})


def _list(values: list[str]) -> httpx.Response:
    return _answer([("list[]", v) for v in values])


def _difficult(password: str) -> bool:
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
    return len(password) >= 8 and all(any(c in group for c in password) for group in classes)


class FakeDirectAdmin(FakeProvider):
    def __init__(self, admin: str = "admin", password: str = "da-admin-login-key-0000") -> None:
        super().__init__()
        self.admin = admin
        self.password = password
        self.toggle = True
        self.html_login = False
        self.forbidden: set[str] = set()
        self.packages = ["basic", "pro"]
        self.ips = ["192.0.2.10", "192.0.2.11"]
        self.users: dict[str, dict[str, str]] = {}
        self.mails: list[str] = []
        self.login_urls: dict[str, str] = {}

    # --- world building and state -------------------------------------------------------------------
    def add_user(self, username: str, domain: str, email: str = "other@example.net", creator: str = "") -> None:
        self.users[username] = {
            "username": username,
            "domain": domain,
            "email": email,
            "package": "basic",
            "ip": self.ips[0],
            "suspended": "no",
            "usertype": "user",
            "creator": creator or self.admin,
            "password": secrets.token_urlsafe(12),
        }

    def accounts_for(self, domain: str) -> list[dict[str, str]]:
        return [u for u in self.users.values() if u["domain"] == domain]

    # --- dispatch -----------------------------------------------------------------------------------
    def route(self, request: httpx.Request) -> httpx.Response:
        if self.html_login:
            return httpx.Response(200, text="<html><body>Please login</body></html>", headers={"Content-Type": HTML})
        acting = self._login(request.headers.get("Authorization", ""))
        if acting is None:
            return httpx.Response(401, text="Unauthorized", headers={"Content-Type": "text/plain"})
        command = request.url.path.lstrip("/")
        if command in self.forbidden:
            return httpx.Response(403, text="Login Key does not allow this command")
        form = self._form(request)
        if acting != self.admin:
            if command != "CMD_API_LOGIN_KEYS":
                return _error("Cannot execute your request", "You do not have access to that command")
            return self._login_key(acting, form)
        handler = self._routes().get((request.method, command))
        if handler is None:
            return httpx.Response(404, text="Not found")
        response: httpx.Response = handler(form)
        return response

    def _login(self, header: str) -> str | None:
        """Who the call acts as: the admin, one of its users (``admin|user``), or None."""
        if not header.startswith("Basic "):
            return None
        login, _, password = base64.b64decode(header[6:]).decode().partition(":")
        admin, _, user = login.partition("|")
        if admin != self.admin or password != self.password:
            return None
        if not user:
            return admin
        owned = self.users.get(user)
        return user if owned and owned["creator"] == self.admin else None

    def _form(self, request: httpx.Request) -> dict[str, str]:
        if request.method == "GET":
            return dict(request.url.params)
        if "json" in request.headers.get("Content-Type", ""):
            return {k: str(v) for k, v in json.loads(request.content).items()}
        return dict(parse_qsl(request.content.decode(), keep_blank_values=True))

    def _routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "CMD_API_SHOW_USERS"): lambda f: _list([u for u in self.users if self._owned(u)]),
            ("GET", "CMD_API_SHOW_RESELLER_IPS"): lambda f: _list(self.ips),
            ("GET", "CMD_API_SHOW_USER_CONFIG"): self._user_config,
            ("POST", "CMD_API_ACCOUNT_USER"): self._create,
            ("POST", "CMD_API_SELECT_USERS"): self._select,
            ("POST", "CMD_API_MODIFY_USER"): self._modify,
        }

    def _owned(self, username: str) -> dict[str, str] | None:
        user = self.users.get(username)
        return user if user and user["creator"] == self.admin else None

    def _user_config(self, form: dict[str, str]) -> httpx.Response:
        user = self._owned(form.get("user", ""))
        if user is None:
            return _error("Unable to show user", "You do not own that user")
        return _answer({k: v for k, v in user.items() if k != "password"} | {"bandwidth": "unlimited"})

    def _create_problem(self, form: dict[str, str]) -> str | None:
        username, domain = form.get("username", ""), form.get("domain", "")
        if form.get("action") != "create":
            return "Unknown action"
        if username in self.users:
            return "That username already exists on the system"
        if not USERNAME.match(username) or username in RESERVED:
            return "Invalid username: lowercase letters and digits, starting with a letter, at most 10"
        if not form.get("passwd") or form.get("passwd") != form.get("passwd2"):
            return "Passwords do not match"
        if not _difficult(form["passwd"]):
            return "Password is not difficult enough"
        if "@" not in form.get("email", ""):
            return "Invalid e-mail address"
        if not DOMAIN.match(domain):
            return "Invalid domain"
        if self.accounts_for(domain):
            return "That domain already exists"
        if form.get("package") not in self.packages:
            return "Unknown package"
        if form.get("ip") not in self.ips:
            return "That IP is not owned by you"
        return None

    def _create(self, form: dict[str, str]) -> httpx.Response:
        problem = self._create_problem(form)
        if problem is not None:
            return _error("Unable to create user", problem)
        username = form["username"]
        self.add_user(username, form["domain"], form["email"])
        self.users[username].update(package=form["package"], ip=form["ip"], password=form["passwd"])
        if form.get("notify") == "yes":
            self.mails.append(username)
        return _ok("User created", f"User {username} created")

    def _select(self, form: dict[str, str]) -> httpx.Response:
        names = [v for k, v in sorted(form.items()) if re.fullmatch(r"select\d+", k)]
        if any(self._owned(n) is None for n in names) or not names:
            return _error("Cannot execute your request", "No such user")
        if form.get("delete") == "yes" and form.get("confirmed") == "Confirm":
            for name in names:
                del self.users[name]
            return _ok("Users deleted")
        suspend = "dosuspend" in form or form.get("suspend") == "suspend"
        if not (suspend or "dounsuspend" in form or form.get("suspend") == "unsuspend"):
            return _error("Cannot execute your request", "Nothing to do")
        for name in names:
            user = self.users[name]
            if self.toggle:
                user["suspended"] = "no" if user["suspended"] == "yes" else "yes"
            else:
                user["suspended"] = "yes" if suspend else "no"
        return _ok("Success")

    def _modify(self, form: dict[str, str]) -> httpx.Response:
        user = self._owned(form.get("user", ""))
        if user is None or form.get("action") != "package":
            return _error("Cannot modify user", "No such user")
        if form.get("package") not in self.packages:
            return _error("Cannot modify user", "Unknown package")
        user["package"] = form["package"]
        return _ok("User modified")

    def _login_key(self, username: str, form: dict[str, str]) -> httpx.Response:
        if form.get("action") != "create" or form.get("type") != "one_time_url":
            return _error("Cannot create login key", "Unknown type")
        token = secrets.token_hex(8)
        self.login_urls[token] = username
        return _ok("Created", f"https://da.test:2222/CMD_LOGIN_URL?hash={token}")
