"""Pure request builders and response parsers for the VirtFusion API v1 (no I/O here)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from extensions.base import ServiceUser
from extensions.errors import ProviderRejected
from extensions.http import ApiRequest, ApiResponse, default_error_message
from extensions.servers.virtfusion.config import VirtFusionProduct

API = "/api/v1"
BUILT = 3  # commissionStatus of a server whose OS install finished
MARKER = re.compile(r"^paymenter-\d+$")
OVERRIDES = (
    "storage memory traffic networkSpeedInbound networkSpeedOutbound cpuCores networkProfile storageProfile".split()
)


def marker(service_id: int | str) -> str:
    """The server name that ties a VirtFusion server to one Paymenter service."""
    return f"paymenter-{service_id}"


def ext_relation(user: ServiceUser) -> str:
    return quote(str(user.id), safe="")


# --- requests ---------------------------------------------------------------------------------------


def connect() -> ApiRequest:
    return ApiRequest("GET", f"{API}/connect")


def get_user(ext: str) -> ApiRequest:
    return ApiRequest("GET", f"{API}/users/{ext}/byExtRelation")


def create_user(user: ServiceUser) -> ApiRequest:
    ext: int | str = int(user.id) if str(user.id).isdigit() else str(user.id)
    body = {"name": user.display_name, "email": user.email, "extRelationId": ext}
    return ApiRequest("POST", f"{API}/users", json=body)


def user_servers(user_id: int) -> ApiRequest:
    return ApiRequest("GET", f"{API}/servers/user/{user_id}")


def create_server(settings: VirtFusionProduct, user_id: int) -> ApiRequest:
    body: dict[str, Any] = {
        "packageId": settings.package_id,
        "userId": user_id,
        "hypervisorId": settings.hypervisorId or settings.hypervisor,
        "ipv4": settings.ipv4,
    }
    body.update({key: getattr(settings, key) for key in OVERRIDES if getattr(settings, key) is not None})
    return ApiRequest("POST", f"{API}/servers", json=body)


def rename(server_id: int, name: str) -> ApiRequest:
    return ApiRequest("PUT", f"{API}/servers/{server_id}/modify/name", json={"name": name})


def build(server_id: int, operating_system: int, name: str, hostname: str | None) -> ApiRequest:
    body: dict[str, Any] = {"operatingSystemId": operating_system, "name": name}
    if hostname:
        body["hostname"] = hostname
    return ApiRequest("POST", f"{API}/servers/{server_id}/build", json=body)


def server_action(server_id: int, action: str) -> ApiRequest:
    """``suspend`` or ``unsuspend``."""
    return ApiRequest("POST", f"{API}/servers/{server_id}/{action}")


def change_package(server_id: int, package_id: int) -> ApiRequest:
    return ApiRequest("PUT", f"{API}/servers/{server_id}/package/{package_id}")


def delete_server(server_id: int, delay: int) -> ApiRequest:
    return ApiRequest("DELETE", f"{API}/servers/{server_id}", params={"delay": delay})


def login_tokens(ext: str, server_id: int) -> ApiRequest:
    return ApiRequest("POST", f"{API}/users/{ext}/serverAuthenticationTokens/{server_id}")


# --- parsers ----------------------------------------------------------------------------------------


def data(body: Any, what: str) -> dict[str, Any]:
    found = body.get("data") if isinstance(body, dict) else None
    if not isinstance(found, dict) or not isinstance(found.get("id"), int):
        raise ProviderRejected(f"virtfusion returned an unexpected {what} body")
    return found


def servers(body: Any) -> list[dict[str, Any]]:
    found = body.get("data") if isinstance(body, dict) else None
    if not isinstance(found, list):
        raise ProviderRejected("virtfusion returned an unexpected server list")
    return [s for s in found if isinstance(s, dict) and isinstance(s.get("id"), int)]


def find_server(candidates: list[dict[str, Any]], name: str, recorded: Any) -> dict[str, Any] | None:
    """The server the service's ``server_id`` records, else the one carrying its marker name."""
    wanted = str(recorded or "").strip()
    by_id = [s for s in candidates if str(s["id"]) == wanted]
    return next(iter(by_id + [s for s in candidates if s.get("name") == name]), None)


def unmarked_since(candidates: list[dict[str, Any]], known: set[int]) -> list[dict[str, Any]]:
    """Servers that appeared since the create attempt and carry no service's marker yet."""
    return [s for s in candidates if s["id"] not in known and not MARKER.match(str(s.get("name") or ""))]


def root_password(body: Any) -> str | None:
    settings = (body.get("data") or {}).get("settings") if isinstance(body, dict) else None
    password = settings.get("decryptedPassword") if isinstance(settings, dict) else None
    return password if isinstance(password, str) and password else None


def ipv4_addresses(server: dict[str, Any]) -> list[str]:
    interfaces = (server.get("network") or {}).get("interfaces") or []
    return [str(ip["address"]) for i in interfaces for ip in i.get("ipv4") or [] if ip.get("address")]


def login_path(body: Any) -> str:
    auth = ((body.get("data") or {}).get("authentication") or {}) if isinstance(body, dict) else {}
    path = auth.get("endpoint_complete")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ProviderRejected("virtfusion returned no login endpoint")
    return path


def is_api_error(body: Any) -> bool:
    """True for VirtFusion's own error envelope, not a proxy's bare 404 page."""
    return isinstance(body, dict) and ("msg" in body or "errors" in body)


def error_message(response: ApiResponse) -> str | None:
    """VirtFusion's ``{"msg": ...}`` or ``{"errors": ["...", ...]}``, else the common shapes."""
    body = response.body
    if isinstance(body, dict):
        if isinstance(body.get("msg"), str) and body["msg"]:
            return str(body["msg"])
        errors = body.get("errors")
        if isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
            return "; ".join(errors)
    return default_error_message(response)
