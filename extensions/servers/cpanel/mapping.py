"""Pure request builders and response parsers for WHM API 1 (no I/O here)."""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from extensions.errors import InvalidPayload, ProviderRejected
from extensions.http import ApiRequest, ApiResponse, default_error_message

API = "/json-api"
USERNAME = re.compile(r"^[a-z][a-z0-9]{0,15}$")
LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
BUSY = re.compile(r"\b(lock|locked|busy|in progress|try again)\b", re.IGNORECASE)
USERNAME_LENGTH = 8  # the limit while WHM prefixes database names with the username
PASSWORD_SYMBOLS = "!#%*+-.:=_"


@dataclass(frozen=True)
class Account:
    user: str
    domain: str
    email: str
    plan: str
    suspended: bool


# --- requests ---------------------------------------------------------------------------------------


def _get(function: str, **params: str) -> ApiRequest:
    # Without api.version=1 WHM silently answers in the legacy API 0 shapes.
    return ApiRequest("GET", f"{API}/{function}", params={"api.version": "1", **params})


def list_packages() -> ApiRequest:
    return _get("listpkgs")


def find_accounts(searchtype: str, value: str) -> ApiRequest:
    """``searchtype`` is ``user`` or ``domain``; an exact match, answered with an empty list when none."""
    return _get("listaccts", searchtype=searchtype, search=value, searchmethod="exact")


def create_account(user: str, domain: str, plan: str, email: str, password: str) -> ApiRequest:
    # A form body keeps the new password out of URLs and WHM's access log.
    form = {
        "api.version": "1",
        "username": user,
        "domain": domain,
        "plan": plan,
        "contactemail": email,
        "password": password,
    }
    return ApiRequest("POST", f"{API}/createacct", form=form)


def suspend(user: str, reason: str) -> ApiRequest:
    return _get("suspendacct", user=user, reason=reason)


def unsuspend(user: str) -> ApiRequest:
    return _get("unsuspendacct", user=user)


def remove(user: str) -> ApiRequest:
    return _get("removeacct", user=user)


def change_package(user: str, package: str) -> ApiRequest:
    return _get("changepackage", user=user, pkg=package)


def user_session(user: str) -> ApiRequest:
    return _get("create_user_session", user=user, service="cpaneld")


# --- responses --------------------------------------------------------------------------------------


def failure(body: Any) -> str | None:
    """WHM's reason when an API 1 answer reports ``metadata.result`` other than 1, else None."""
    metadata = body.get("metadata") if isinstance(body, dict) else None
    if not isinstance(metadata, dict):
        return "not a WHM API 1 answer (is the host a WHM port, 2087?)"
    if str(metadata.get("result")) == "1":
        return None
    return str(metadata.get("reason") or "request failed without a reason")


def body_error(response: ApiResponse) -> str | None:
    """``error_in_body`` hook: WHM reports most errors as HTTP 200 with ``metadata.result = 0``."""
    return failure(response.body)


def error_message(response: ApiResponse) -> str | None:
    body = response.body
    metadata = body.get("metadata") if isinstance(body, dict) else None
    reason = metadata.get("reason") if isinstance(metadata, dict) else None
    if isinstance(reason, str) and reason:
        return reason
    return default_error_message(response)


def _data(body: Any) -> dict[str, Any]:
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


def accounts(body: Any) -> list[Account]:
    found = _data(body).get("acct") or []
    if not isinstance(found, list):
        raise ProviderRejected("cpanel returned an unexpected account list")
    return [
        Account(
            user=str(a["user"]).lower(),
            domain=str(a.get("domain") or "").lower(),
            email=str(a.get("email") or ""),
            plan=str(a.get("plan") or ""),
            suspended=str(a.get("suspended")) == "1",
        )
        for a in found
        if isinstance(a, dict) and a.get("user")
    ]


def packages(body: Any) -> list[str]:
    return [str(p["name"]) for p in _data(body).get("pkg") or [] if isinstance(p, dict) and p.get("name")]


def session(body: Any) -> tuple[str, Any]:
    data = _data(body)
    url = data.get("url")
    if not isinstance(url, str) or not url:
        raise ProviderRejected("cpanel: unable to generate a cPanel login URL")
    return url, data.get("expires")


def is_busy(reason: str) -> bool:
    return bool(BUSY.search(reason))


def about_username(reason: str, user: str) -> bool:
    """True when WHM refused the username itself (taken, reserved, database-prefix clash)."""
    lowered = reason.lower()
    return "username" in lowered or user in lowered


# --- values -----------------------------------------------------------------------------------------


def domain_of(properties: dict[str, Any]) -> str:
    """The checkout ``domain``, lower-cased and in ASCII (IDNA), or ``InvalidPayload``."""
    raw = str(properties.get("domain") or "").strip().rstrip(".").lower()
    try:
        domain = raw.encode("idna").decode("ascii")
    except UnicodeError:
        domain = ""
    labels = domain.split(".")
    if len(labels) < 2 or len(domain) > 253 or not all(LABEL.match(label) for label in labels):
        raise InvalidPayload("service.properties.domain: a valid domain name is required")
    return domain


def valid_username(user: str) -> bool:
    return bool(USERNAME.match(user)) and not user.startswith("test") and not user.endswith("assword")


def make_username(domain: str) -> str:
    """Up to four letters of the domain, then random characters: 8 in all, a valid cPanel username."""
    stem = re.sub(r"[^a-z0-9]", "", domain.split(".")[0]).lstrip(string.digits)[:4]
    alphabet = string.ascii_lowercase + string.digits
    while True:
        head = stem or secrets.choice(string.ascii_lowercase)
        user = head + "".join(secrets.choice(alphabet) for _ in range(USERNAME_LENGTH - len(head)))
        if valid_username(user):
            return user
        stem = ""  # a stem WHM refuses ("test...") is dropped


def make_password(length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits + PASSWORD_SYMBOLS
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits, PASSWORD_SYMBOLS)
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in group for c in password) for group in classes):
            return password
