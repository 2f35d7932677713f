"""Pure request builders and response parsers for Convoy's Application API (no I/O here)."""

from __future__ import annotations

import hashlib
import hmac
import re
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from extensions.errors import InvalidPayload, ProviderRejected
from extensions.http import ApiRequest
from extensions.servers.convoy.config import MIB, ConvoyProduct

API = "/api/application"
NAME_MAX = 40
PER_PAGE = 50
SYMBOLS = "!@#$%^&*"
HOSTNAME = re.compile(
    r"^(?=.{1,40}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$", re.I
)


# --- requests ---------------------------------------------------------------------------------------


def _server_path(uuid: str, rest: str = "") -> str:
    return f"{API}/servers/{quote(uuid, safe='')}{rest}"


def list_servers(name: str, page: int = 1, per_page: int = PER_PAGE) -> ApiRequest:
    params = {"filter[name]": name, "page": page, "per_page": per_page} if name else {"per_page": per_page}
    return ApiRequest("GET", f"{API}/servers", params=params)


def get_server(uuid: str) -> ApiRequest:
    return ApiRequest("GET", _server_path(uuid))


def template_groups(node: int) -> ApiRequest:
    return ApiRequest("GET", f"{API}/nodes/{node}/template-groups")


def free_addresses(node: int, kind: str, count: int) -> ApiRequest:
    # An empty server_id filter selects unassigned addresses.
    params = {"filter[server_id]": "", "filter[type]": kind, "per_page": count}
    return ApiRequest("GET", f"{API}/nodes/{node}/addresses", params=params)


def find_user(email: str) -> ApiRequest:
    return ApiRequest("GET", f"{API}/users", params={"filter[email]": email})


def create_user(email: str, name: str, password: str) -> ApiRequest:
    body = {"email": email, "name": name, "password": password, "root_admin": False}
    return ApiRequest("POST", f"{API}/users", json=body)


def create_server(body: dict[str, Any]) -> ApiRequest:
    return ApiRequest("POST", f"{API}/servers", json=body)


def server_action(uuid: str, action: str) -> ApiRequest:
    """``suspend`` or ``unsuspend``."""
    return ApiRequest("POST", _server_path(uuid, f"/settings/{action}"))


def delete_server(uuid: str) -> ApiRequest:
    return ApiRequest("DELETE", _server_path(uuid))


def update_build(uuid: str, body: dict[str, Any]) -> ApiRequest:
    return ApiRequest("PATCH", _server_path(uuid, "/settings/build"), json=body)


def sso_token(user_id: int) -> ApiRequest:
    return ApiRequest("POST", f"{API}/users/{user_id}/generate-sso-token")


# --- parsers ----------------------------------------------------------------------------------------


def data(body: Any, what: str) -> dict[str, Any]:
    found = body.get("data") if isinstance(body, dict) else None
    if not isinstance(found, dict):
        raise ProviderRejected(f"convoy returned an unexpected {what} body")
    return found


def items(body: Any, what: str) -> tuple[list[dict[str, Any]], bool]:
    """The items of a list envelope and whether a later page exists."""
    found = body.get("data") if isinstance(body, dict) else None
    if not isinstance(found, list):
        raise ProviderRejected(f"convoy returned an unexpected {what} list")
    pagination = (body.get("meta") or {}).get("pagination") or {}
    more = int(pagination.get("current_page") or 1) < int(pagination.get("total_pages") or 1)
    return [i for i in found if isinstance(i, dict)], more


def server(body: Any) -> dict[str, Any]:
    found = data(body, "server")
    if not isinstance(found.get("uuid"), str):
        raise ProviderRejected("convoy returned a server without a uuid")
    return found


def address_ids(found: Mapping[str, Any], kind: str) -> list[int]:
    addresses = ((found.get("limits") or {}).get("addresses") or {}).get(kind) or []
    return [int(a["id"]) for a in addresses if isinstance(a, dict) and "id" in a]


def is_api_error(body: Any) -> bool:
    """True for Convoy's own error envelope (not a proxy's page), so its 404 really means absent."""
    return isinstance(body, dict) and isinstance(body.get("message"), str)


def error_text(body: Any) -> str:
    """Every message of a Laravel error body, lower-cased, for telling one 422 from another."""
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get("message") or "")]
    errors = body.get("errors")
    for messages in errors.values() if isinstance(errors, dict) else []:
        parts += [str(m) for m in (messages if isinstance(messages, list) else [messages])]
    return " ".join(parts).lower()


def template_offered(body: Any, uuid: str) -> bool:
    """Whether ``uuid`` is a template of a visible group on the node and not hidden itself."""
    groups, _ = items(body, "template group")
    for group in groups:
        templates = (group.get("templates") or {}).get("data") or []
        for template in templates if not group.get("hidden") else []:
            if isinstance(template, dict) and template.get("uuid") == uuid and not template.get("hidden"):
                return True
    return False


# --- naming and passwords ---------------------------------------------------------------------------


def checkout_hostname(properties: Mapping[str, Any]) -> str:
    hostname = str(properties.get("hostname") or "").strip().lower()
    if not HOSTNAME.match(hostname):
        raise InvalidPayload("service.properties.hostname: must be a domain name of at most 40 characters")
    return hostname


def marker(service_id: int | str) -> str:
    return f" #{service_id}"


def server_name(hostname: str, customer: str, service_id: int | str) -> str:
    """``<hostname> <customer>`` cut to fit, ending with the service marker that makes it unique."""
    suffix = marker(service_id)
    return f"{hostname} {customer}"[: NAME_MAX - len(suffix)].rstrip() + suffix


def is_service_server(found: Mapping[str, Any], service_id: int | str, hostname: str | None) -> bool:
    if not str(found.get("name") or "").endswith(marker(service_id)):
        return False
    return hostname is None or str(found.get("hostname") or "").lower() == hostname


def derive_password(key: str, salt: str, label: str, length: int = 24) -> str:
    """A password meeting Convoy's rule, recomputable from a stored salt without storing the password."""
    digest = hmac.new(key.encode(), f"{label}:{salt}".encode(), hashlib.sha512).digest()
    alphabet = string.ascii_letters + string.digits + SYMBOLS
    required = [string.ascii_lowercase, string.ascii_uppercase, string.digits, SYMBOLS]
    chars = [pool[digest[i] % len(pool)] for i, pool in enumerate(required)]
    chars += [alphabet[b % len(alphabet)] for b in digest[len(required) : length]]
    start = digest[-1] % length  # rotate so the required classes are not always first
    return "".join(chars[start:] + chars[:start])


# --- bodies -----------------------------------------------------------------------------------------


def server_body(
    settings: ConvoyProduct, user_id: int, name: str, hostname: str, template: str, password: str
) -> dict[str, Any]:
    """The create body; ``limits.address_ids`` is filled in by the caller (free addresses can race)."""
    return {
        "node_id": settings.node,
        "user_id": user_id,
        "name": name,
        "hostname": hostname,
        "vmid": None,
        "limits": {
            "cpu": settings.cpu,
            "memory": settings.ram * MIB,
            "disk": settings.disk * MIB,
            "snapshots": settings.snapshot,
            "bandwidth": settings.bandwidth_bytes(),
            "backups": settings.backups,
            "address_ids": [],
        },
        "account_password": password,
        "template_uuid": template,
        "should_create_server": True,
        "start_on_completion": settings.start_on_create,
    }


def build_body(settings: ConvoyProduct, addresses: list[int]) -> dict[str, Any]:
    return {
        "cpu": settings.cpu,
        "memory": settings.ram * MIB,
        "disk": settings.disk * MIB,
        "snapshot_limit": settings.snapshot,
        "backup_limit": settings.backups,
        "bandwidth_limit": settings.bandwidth_bytes(),
        "address_ids": addresses,
    }


def build_applied(found: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    limits = found.get("limits") or {}
    wanted = {"cpu": "cpu", "memory": "memory", "disk": "disk", "snapshots": "snapshot_limit"}
    wanted |= {"backups": "backup_limit", "bandwidth": "bandwidth_limit"}
    same = all(limits.get(k) == body[b] for k, b in wanted.items())
    ids = set(address_ids(found, "ipv4") + address_ids(found, "ipv6"))
    return same and ids == set(body["address_ids"])
