"""Pure request builders and answer parsers for DirectAdmin's legacy ``CMD_API_*`` commands (no I/O here).

Answers are ``text/plain`` URL-encoded pairs (``error=1&text=...&details=...``, ``list[]=a&list[]=b``,
``key=value``) whose values may carry raw HTML entities, so entities are decoded before the pairs are split.
"""

from __future__ import annotations

import html
import re
import secrets
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from extensions.errors import AuthFailed, InvalidPayload, ProviderRejected
from extensions.http import ApiRequest, ApiResponse

Account = dict[str, str]  # CMD_API_SHOW_USER_CONFIG: username, domain, email, ip, package, suspended...

PASSWORD_LENGTH = 16
SYMBOLS = "!@.$%"
DOMAIN = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
USERNAME_TAKEN = re.compile(r"user(name)?\b.*\b(exists|taken|in use)", re.IGNORECASE)
DOMAIN_TAKEN = re.compile(r"domain\b.*\b(exists|taken|in use|owned)", re.IGNORECASE)
LOGIN_AS = "X-Login-As"  # read and removed by the client's auth: log in as "<admin>|<user>"


SHOW_USERS = ApiRequest("GET", "/CMD_API_SHOW_USERS")
RESELLER_IPS = ApiRequest("GET", "/CMD_API_SHOW_RESELLER_IPS")


def user_config(username: str) -> ApiRequest:
    return ApiRequest("GET", "/CMD_API_SHOW_USER_CONFIG", params={"user": username})


def create_account(account: Mapping[str, str], password: str, *, notify: bool) -> ApiRequest:
    """``account``: username, email, domain, package, ip. Form-encoded: older panels do not read JSON."""
    form = {"action": "create", "add": "Submit", **account, "passwd": password, "passwd2": password}
    form["notify"] = "yes" if notify else "no"
    return ApiRequest("POST", "/CMD_API_ACCOUNT_USER", form=form)


def set_suspended(username: str, suspended: bool) -> ApiRequest:
    # Old builds toggle on "suspend", newer ones honour dosuspend/dounsuspend; sent only when the state
    # differs, so a toggle moves it the right way too.
    verb = "suspend" if suspended else "unsuspend"
    form = {"location": "CMD_SELECT_USERS", "suspend": verb, f"do{verb}": "yes", "select0": username}
    return ApiRequest("POST", "/CMD_API_SELECT_USERS", form=form)


def delete_account(username: str) -> ApiRequest:
    form = {"confirmed": "Confirm", "delete": "yes", "select0": username}
    return ApiRequest("POST", "/CMD_API_SELECT_USERS", form=form)


def change_package(username: str, package: str) -> ApiRequest:
    return ApiRequest("POST", "/CMD_API_MODIFY_USER", form={"action": "package", "user": username, "package": package})


def one_time_login(username: str) -> ApiRequest:
    """A one-time login URL for ``username``, minted while logged in as that user."""
    form = {"action": "create", "type": "one_time_url", "expiry": "5m"}
    return ApiRequest("POST", "/CMD_API_LOGIN_KEYS", form=form, headers={LOGIN_AS: username})


def fields(text: str) -> dict[str, str]:
    return {k: v for k, v in parse_qsl(html.unescape(text), keep_blank_values=True) if not k.endswith("[]")}


def items(text: str) -> list[str]:
    return [v for k, v in parse_qsl(html.unescape(text), keep_blank_values=True) if k == "list[]" and v]


def _is_html(response: ApiResponse) -> bool:
    content_type = response.headers.get("content-type", "").lower()
    return "text/html" in content_type or response.text.lstrip().lower().startswith(("<!doctype", "<html"))


def reason(response: ApiResponse) -> str | None:
    """``text: details`` of an answer, tags stripped; None when it has neither."""
    answer = fields(response.text)
    parts = [re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", answer.get(k, ""))).strip() for k in ("text", "details")]
    return ": ".join(p for p in parts if p) or None


def body_error(response: ApiResponse) -> str | None:
    """The ``error_in_body`` hook: ``error=1`` in a 200 is an error; an HTML page is a login page."""
    if _is_html(response):
        # Older builds answer bad credentials or a wrong URL with their login page and HTTP 200.
        raise AuthFailed("directadmin answered with an HTML page: check the host and the credentials", response.status)
    error = fields(response.text).get("error")
    if error is None or error.strip() == "0":
        return None
    return reason(response) or "error without a reason"


def account(text: str) -> Account | None:
    answer = fields(text)
    return answer if answer.get("username") else None


def login_url(text: str) -> str:
    answer = fields(text)
    url = answer.get("details", "").strip()
    if "error" not in answer or not url.startswith(("https://", "http://")):
        raise ProviderRejected("Unexpected DirectAdmin response while creating SSO link")
    return url


def _domain(value: str) -> str:
    return value.strip().lower().rstrip(".")


def checkout_domain(properties: Mapping[str, Any]) -> str:
    domain = _domain(str(properties.get("domain") or ""))
    if not domain:
        raise InvalidPayload("service.properties.domain: the checkout must provide a domain")
    if not DOMAIN.match(domain):
        raise InvalidPayload("service.properties.domain: must be a domain name")
    return domain


def serves(found: Account, domain: str) -> bool:
    return _domain(found.get("domain", "")) == _domain(domain)


def belongs(found: Account, domain: str, email: str) -> bool:
    """The account this service made: same domain (unique on a server) and the customer's e-mail."""
    return serves(found, domain) and found.get("email", "").strip().casefold() == email.strip().casefold()


def is_suspended(found: Account) -> bool:
    return found.get("suspended", "").strip().lower() == "yes"


def username_prefix(domain: str) -> str:
    """Up to 5 letters/digits of the domain, starting with a letter (DirectAdmin's rule)."""
    return re.sub(r"[^a-z0-9]", "", domain.split(".")[0]).lstrip(string.digits)[:5] or "da"


def new_username(domain: str) -> str:
    alphabet = string.ascii_lowercase + string.digits
    return username_prefix(domain) + "".join(secrets.choice(alphabet) for _ in range(3))


def new_password() -> str:
    """16 characters with a lower, an upper, a digit and a symbol: passes "difficult password" checks."""
    groups = (string.ascii_lowercase, string.ascii_uppercase, string.digits, SYMBOLS)
    chosen = [secrets.choice(group) for group in groups]
    chosen += [secrets.choice("".join(groups)) for _ in range(PASSWORD_LENGTH - len(groups))]
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)
