"""Pure request builders, response parsers and generated values for the Plesk REST API v2 (no I/O here)."""

from __future__ import annotations

import re
import secrets
import string
import unicodedata
from typing import Any

from extensions.base import ServiceUser
from extensions.errors import Conflict, InvalidPayload, ProviderRejected
from extensions.http import ApiRequest, ApiResponse

API = "/api/v2"
LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
SYMBOLS = "!#%*+-_=."
FTP_BASE_MAX = 10  # + "_" + 5 random characters: within the 16 characters older Plesk allows system users


# --- requests ---------------------------------------------------------------------------------------


SERVER_INFO = ApiRequest("GET", f"{API}/server")
LIST_CLIENTS = ApiRequest("GET", f"{API}/clients")


def create_client(user: ServiceUser, login: str, password: str) -> ApiRequest:
    body = {"name": user.display_name, "login": login, "email": user.email, "password": password}
    return ApiRequest("POST", f"{API}/clients", json={**body, "type": "customer", "external_id": str(user.id)})


def set_client_password(client_id: int, password: str) -> ApiRequest:
    return ApiRequest("PUT", f"{API}/clients/{client_id}", json={"password": password})


def find_domains(name: str) -> ApiRequest:
    return ApiRequest("GET", f"{API}/domains", params={"name": name})


def get_domain(domain_id: int) -> ApiRequest:
    return ApiRequest("GET", f"{API}/domains/{domain_id}")


def domain_owner(domain_id: int) -> ApiRequest:
    return ApiRequest("GET", f"{API}/domains/{domain_id}/client")


def create_domain(
    name: str, plan: str, service_id: str, owner: dict[str, Any], ftp_login: str, ftp_password: str
) -> ApiRequest:
    reference = {key: owner[key] for key in ("id", "login", "guid") if owner.get(key) is not None}
    body = {
        "name": name,
        "external_id": service_id,
        "owner_client": reference,
        "hosting_type": "virtual",
        "hosting_settings": {"ftp_login": ftp_login, "ftp_password": ftp_password},
        "plan": {"name": plan},
    }
    return ApiRequest("POST", f"{API}/domains", json=body)


def set_ftp_password(domain_id: int, ftp_login: str, password: str) -> ApiRequest:
    body = {"hosting_settings": {"ftp_login": ftp_login, "ftp_password": password}}
    return ApiRequest("PUT", f"{API}/domains/{domain_id}", json=body)


def set_status(domain_id: int, status: str) -> ApiRequest:
    return ApiRequest("PUT", f"{API}/domains/{domain_id}/status", json={"status": status})


def delete_domain(domain_id: int) -> ApiRequest:
    return ApiRequest("DELETE", f"{API}/domains/{domain_id}")


def switch_plan(domain: str, plan: str) -> ApiRequest:
    """REST v2 has no plan switch; the ``subscription`` utility through the CLI gateway does it."""
    params = ["--switch-subscription", domain, "-service-plan", plan]
    return ApiRequest("POST", f"{API}/cli/subscription/call", json={"params": params})


# --- parsers ----------------------------------------------------------------------------------------


def body_error(response: ApiResponse) -> str | None:
    """A 2xx body carrying a non-zero ``code`` (the CLI gateway's exit code) is a failure."""
    body = response.body
    if not isinstance(body, dict) or body.get("code") in (None, 0, "0"):
        return None
    detail = body.get("stderr") or body.get("message") or body.get("stdout") or "no output"
    return f"exit code {body['code']}: {str(detail).strip()}"


def is_plesk_error(body: Any) -> bool:
    """True for Plesk's own error body (not a proxy's or another site's page)."""
    return isinstance(body, dict) and "code" in body and "message" in body


def parse_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("id"), int):
        raise ProviderRejected(f"plesk returned an unexpected {what} body")
    return body


def _items(body: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(body, list):
        raise ProviderRejected(f"plesk returned an unexpected {what} list")
    return [item for item in body if isinstance(item, dict) and isinstance(item.get("id"), int)]


def find_domain(body: Any, name: str) -> dict[str, Any] | None:
    """The listed domain called ``name``; compared here too, as a Plesk ignoring the filter lists all."""
    wanted = {name, ascii_domain(name)}
    for domain in _items(body, "domain"):
        if {str(domain.get("name", "")).lower(), str(domain.get("ascii_name", "")).lower()} & wanted:
            return domain
    return None


def match_client(body: Any, external_id: str, login: str, email: str) -> dict[str, Any] | None:
    """This Paymenter user's client: by external id, else by our login, else a customer with the e-mail.

    Login and e-mail matches count only for clients without an external id; our login held by a client
    with another external id is a conflict (Plesk would refuse to create a second one).
    """
    clients = _items(body, "client")
    for client in clients:
        if str(client.get("external_id") or "") == external_id:
            return client
    for client in clients:
        if str(client.get("login", "")).lower() == login:
            if client.get("external_id"):
                raise Conflict(f"plesk: customer login {login} belongs to another external id")
            return client
    wanted = email.strip().casefold()
    for client in clients:
        same_email = str(client.get("email", "")).strip().casefold() == wanted
        if same_email and not client.get("external_id") and client.get("type", "customer") == "customer":
            return client
    return None


def ftp_login_taken(message: str, login: str) -> bool:
    text = message.lower()
    mentions = login in text or "system user" in text or "ftp" in text
    return mentions and any(word in text for word in ("exist", "in use", "taken"))


# --- inputs and generated values --------------------------------------------------------------------


def ascii_domain(name: str) -> str:
    return name.encode("idna").decode("ascii")


def domain_name(value: Any) -> str:
    """The checkout domain, lower-cased without a trailing dot; InvalidPayload unless a valid name."""
    name = str(value or "").strip().lower().rstrip(".")
    try:
        labels = ascii_domain(name).split(".")
    except UnicodeError:
        labels = []
    valid = len(labels) > 1 and all(LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()
    if len(name) > 253 or not valid:
        raise InvalidPayload("properties.domain: a valid domain name is required")
    return name


def _alnum(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]", "", folded)


def _name_base(user: ServiceUser, limit: int, fallback: str) -> str:
    return _alnum(user.display_name).lstrip(string.digits)[:limit] or fallback


def customer_login(user: ServiceUser) -> str:
    """``<name>-<user id>``: starts with a letter, unique per Paymenter user even when names repeat."""
    return f"{_name_base(user, 20, 'customer')}-{_alnum(str(user.id))[-20:] or '0'}"


def ftp_login(user: ServiceUser, suffix: str) -> str:
    """A system (FTP) login per subscription; system logins are unique server-wide."""
    return f"{_name_base(user, FTP_BASE_MAX, 'web')}_{suffix}"


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(length))


def password(length: int = 16) -> str:
    """Random, with every character class Plesk's password strength policy may ask for."""
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits, SYMBOLS)
    alphabet = "".join(classes)
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in chars for c in value) for chars in classes):
            return value
