"""Pure request builders and response parsers for the Pterodactyl Application API (no I/O here)."""

from __future__ import annotations

import re
import secrets
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from extensions.base import ServiceUser
from extensions.errors import InvalidPayload, ProviderRejected
from extensions.http import ApiRequest
from extensions.servers.pterodactyl.config import PterodactylProduct

API = "/api/application"
NAME_MAX = 191


@dataclass(frozen=True)
class Egg:
    id: int
    docker_image: str
    startup: str
    variables: dict[str, str | None]  # env_variable -> default_value


@dataclass(frozen=True)
class Allocation:
    id: int
    port: int


@dataclass(frozen=True)
class Node:
    id: int
    free: list[Allocation]  # unassigned allocations, in the panel's order


@dataclass(frozen=True)
class Deployment:
    allocations_needed: int
    environment: dict[str, str] = field(default_factory=dict)
    deploy: dict[str, Any] | None = None
    allocation: dict[str, Any] | None = None


# --- requests ---------------------------------------------------------------------------------------


def lookup_server(external_id: str) -> ApiRequest:
    return ApiRequest("GET", f"{API}/servers/external/{quote(external_id, safe='')}")


def get_egg(nest_id: int, egg_id: int) -> ApiRequest:
    return ApiRequest("GET", f"{API}/nests/{nest_id}/eggs/{egg_id}", params={"include": "variables"})


def search_users(email: str, page: int) -> ApiRequest:
    return ApiRequest("GET", f"{API}/users", params={"filter[email]": email, "page": page})


def create_user(email: str, username: str, first_name: str, last_name: str) -> ApiRequest:
    body = {"email": email, "username": username, "first_name": first_name, "last_name": last_name}
    return ApiRequest("POST", f"{API}/users", json=body)


def deployable_nodes(memory: int, disk: int, location_ids: list[int], page: int) -> ApiRequest:
    params: list[tuple[str, Any]] = [("memory", memory), ("disk", disk)]
    params += [("location_ids[]", location) for location in location_ids]
    params += [("include", "allocations"), ("page", page)]
    return ApiRequest("GET", f"{API}/nodes/deployable", params=params)


def create_server(body: dict[str, Any]) -> ApiRequest:
    return ApiRequest("POST", f"{API}/servers", json=body)


def server_action(server_id: int, action: str) -> ApiRequest:
    """``suspend`` or ``unsuspend``."""
    return ApiRequest("POST", f"{API}/servers/{server_id}/{action}")


def delete_server(server_id: int) -> ApiRequest:
    return ApiRequest("DELETE", f"{API}/servers/{server_id}")


def patch_build(server_id: int, body: dict[str, Any]) -> ApiRequest:
    return ApiRequest("PATCH", f"{API}/servers/{server_id}/build", json=body)


def patch_startup(server_id: int, body: dict[str, Any]) -> ApiRequest:
    return ApiRequest("PATCH", f"{API}/servers/{server_id}/startup", json=body)


def list_servers() -> ApiRequest:
    return ApiRequest("GET", f"{API}/servers", params={"per_page": 1})


# --- parsers ----------------------------------------------------------------------------------------


def _attributes(body: Any, what: str) -> dict[str, Any]:
    attributes = body.get("attributes") if isinstance(body, dict) else None
    if not isinstance(attributes, dict) or not isinstance(attributes.get("id"), int):
        raise ProviderRejected(f"pterodactyl returned an unexpected {what} body")
    return attributes


def _list(body: Any, what: str) -> tuple[list[dict[str, Any]], bool]:
    """The ``attributes`` of every item of a list envelope, and whether a later page exists."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ProviderRejected(f"pterodactyl returned an unexpected {what} list")
    items = [i["attributes"] for i in data if isinstance(i, dict) and isinstance(i.get("attributes"), dict)]
    pagination = (body.get("meta") or {}).get("pagination") or {}
    more = int(pagination.get("current_page") or 1) < int(pagination.get("total_pages") or 1)
    return items, more


def server_attributes(body: Any) -> dict[str, Any]:
    attributes = _attributes(body, "server")
    if not isinstance(attributes.get("identifier"), str):
        raise ProviderRejected("pterodactyl returned a server without an identifier")
    return attributes


def user_id(body: Any) -> int:
    value: int = _attributes(body, "user")["id"]
    return value


def find_user(body: Any, email: str) -> tuple[int | None, bool]:
    """The id of the user whose e-mail equals ``email`` (the filter is a substring match), and ``more``."""
    users, more = _list(body, "user")
    wanted = email.strip().casefold()
    for user in users:
        if str(user.get("email", "")).strip().casefold() == wanted and isinstance(user.get("id"), int):
            return user["id"], more
    return None, more


def parse_egg(body: Any) -> Egg:
    attributes = _attributes(body, "egg")
    relation = (attributes.get("relationships") or {}).get("variables") or {}
    variables, _ = _list(relation, "egg variable")
    return Egg(
        id=attributes["id"],
        docker_image=str(attributes.get("docker_image") or ""),
        startup=str(attributes.get("startup") or ""),
        variables={str(v["env_variable"]): v.get("default_value") for v in variables if v.get("env_variable")},
    )


def parse_nodes(body: Any) -> tuple[list[Node], bool]:
    nodes, more = _list(body, "node")
    parsed = []
    for node in nodes:
        relation = (node.get("relationships") or {}).get("allocations") or {"data": []}
        allocations, _ = _list(relation, "allocation")
        free = [Allocation(int(a["id"]), int(a["port"])) for a in allocations if not a.get("assigned")]
        parsed.append(Node(id=int(node["id"]), free=free))
    return parsed, more


def error_fields(body: Any) -> set[str]:
    """``meta.source_field`` of every validation error (``external_id``, ``email``, ``username``...)."""
    errors = body.get("errors") if isinstance(body, dict) else None
    fields = set()
    for error in errors if isinstance(errors, list) else []:
        meta = error.get("meta") if isinstance(error, dict) else None
        if isinstance(meta, dict) and meta.get("source_field"):
            fields.add(str(meta["source_field"]))
    return fields


def is_api_error(body: Any) -> bool:
    """True when a body is the panel's own error envelope (not a proxy's or another site's page)."""
    return isinstance(body, dict) and isinstance(body.get("errors"), list)


# --- customer ---------------------------------------------------------------------------------------


def random_suffix(length: int = 4) -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def make_username(name: str, suffix: str) -> str:
    """ASCII, lower-case alphanumerics of ``name`` (``user`` when none are left) + ``_`` + ``suffix``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    base = re.sub(r"[^a-z0-9]", "", ascii_name.lower())[:40] or "user"
    return f"{base}_{suffix}"


def customer_names(user: ServiceUser) -> tuple[str, str]:
    """First and last name for the panel, which requires both to be non-empty."""
    parts = (user.name or "").split()
    first = (user.first_name or "").strip() or (parts[0] if parts else "") or user.email.split("@")[0].strip()
    last = (user.last_name or "").strip() or " ".join(parts[1:])
    return (first or "Customer")[:NAME_MAX], (last or "Customer")[:NAME_MAX]


# --- deployment -------------------------------------------------------------------------------------


def deploy_locations(settings: PterodactylProduct) -> list[int]:
    return [settings.location] if settings.location else list(settings.location_ids)


def port_requests(settings: PterodactylProduct) -> list[tuple[str, int]]:
    """(variable, port) pairs of ``port_array`` in order; SERVER_PORT is required."""
    pairs: list[tuple[str, int]] = []
    for key, ports in (settings.port_array or {}).items():
        pairs += [(key, port) for port in (ports if isinstance(ports, list) else [ports])]
    if not any(key == "SERVER_PORT" for key, _ in pairs):
        raise InvalidPayload("port_array must map SERVER_PORT to a port")
    return pairs


def allocations_needed(settings: PterodactylProduct) -> int:
    return len(port_requests(settings)) if settings.port_array else 1


def auto_deploy(settings: PterodactylProduct) -> Deployment:
    """Mode A: the panel picks node and allocation within the locations and port ranges."""
    deploy = {
        "locations": deploy_locations(settings),
        "dedicated_ip": settings.dedicated_ip,
        "port_range": list(settings.port_range),
    }
    return Deployment(allocations_needed=1, deploy=deploy)


def pick_port(pool: list[Allocation], wanted: int) -> Allocation:
    """The free allocation on ``wanted``, else the nearest higher port, else the nearest lower; removed."""
    if not pool:
        raise ProviderRejected("pterodactyl: no available allocations left on the node")
    higher = [a for a in pool if a.port >= wanted]
    choice = min(higher, key=lambda a: a.port) if higher else max(pool, key=lambda a: a.port)
    pool.remove(choice)
    return choice


def _choose_node(settings: PterodactylProduct, nodes: list[Node], needed: int) -> Node:
    if settings.node is not None:
        node = next((n for n in nodes if n.id == settings.node), None)
        if node is None:
            raise ProviderRejected(f"pterodactyl: node {settings.node} is not suitable for deployment")
        if len(node.free) < needed:
            raise ProviderRejected(f"pterodactyl: node {settings.node} has fewer than {needed} free allocations")
        return node
    for node in nodes:
        if len(node.free) >= needed:
            return node
    raise ProviderRejected(f"pterodactyl: no nodes with {needed} free allocations in the chosen locations")


def plan_deployment(settings: PterodactylProduct, egg: Egg, nodes: list[Node]) -> Deployment:
    """Modes B (forced node, first free allocation) and C (``port_array`` ports) over deployable nodes."""
    if not settings.port_array:
        first = _choose_node(settings, nodes, 1).free[0]
        port_env = {"SERVER_PORT": str(first.port)} if "SERVER_PORT" in egg.variables else {}
        return Deployment(1, port_env, allocation={"default": first.id, "additional": []})
    requests = port_requests(settings)
    pool = list(_choose_node(settings, nodes, len(requests)).free)
    picked = [(key, pick_port(pool, port)) for key, port in requests]
    environment: dict[str, str] = {}
    for key, allocation in reversed(picked):  # the first port of a variable wins
        if key != "NONE" and key in egg.variables:
            environment[key] = str(allocation.port)
    default = next(a.id for key, a in picked if key == "SERVER_PORT")
    additional = [a.id for _, a in picked if a.id != default]
    return Deployment(len(requests), environment, allocation={"default": default, "additional": additional})


# --- bodies -----------------------------------------------------------------------------------------


def egg_environment(
    egg: Egg, properties: Mapping[str, Any], current: Mapping[str, Any] | None = None
) -> dict[str, str | None]:
    """Each egg variable: the server's current value, else the checkout property, else the default."""
    environment: dict[str, str | None] = {}
    for name, default in egg.variables.items():
        if current and current.get(name) not in (None, ""):
            environment[name] = str(current[name])
        elif properties.get(name) not in (None, ""):
            environment[name] = str(properties[name])
        else:
            environment[name] = default
    return environment


def _limits(settings: PterodactylProduct) -> dict[str, Any]:
    return {
        "memory": settings.memory,
        "swap": settings.swap,
        "disk": settings.disk,
        "io": settings.io,
        "cpu": settings.cpu,
        "threads": settings.cpu_pinning,
    }


def _feature_limits(settings: PterodactylProduct, needed: int) -> dict[str, int]:
    allocations = needed + settings.additional_allocations
    return {"databases": settings.databases, "allocations": allocations, "backups": settings.backups}


def server_body(
    *,
    external_id: str,
    name: str,
    user: int,
    settings: PterodactylProduct,
    egg: Egg,
    environment: Mapping[str, str | None],
    deployment: Deployment,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": external_id,
        "name": name[:NAME_MAX],
        "user": user,
        "egg": egg.id,
        "docker_image": settings.docker_image or egg.docker_image,
        "startup": settings.startup or egg.startup,
        "environment": {**environment, **deployment.environment},
        "skip_scripts": settings.skip_scripts,
        "oom_disabled": not settings.oom_killer,
        "limits": _limits(settings),
        "feature_limits": _feature_limits(settings, deployment.allocations_needed),
        "start_on_completion": settings.start_on_completion,
    }
    if deployment.deploy is not None:
        body["deploy"] = deployment.deploy
    else:
        body["allocation"] = deployment.allocation
    return body


def build_body(settings: PterodactylProduct, server: Mapping[str, Any]) -> dict[str, Any]:
    """Build limits for upgrade; the allocation limit counts the allocations create assigned too."""
    return {
        "allocation": server["allocation"],
        **_limits(settings),
        "oom_disabled": not settings.oom_killer,
        "feature_limits": _feature_limits(settings, allocations_needed(settings)),
    }


def startup_body(
    settings: PterodactylProduct, egg: Egg, server: Mapping[str, Any], properties: Mapping[str, Any]
) -> dict[str, Any]:
    """Startup for upgrade: environment kept; a changed egg brings its own image and startup command."""
    container = server.get("container") or {}
    same_egg = server.get("egg") == egg.id
    image = container.get("image") if same_egg else None
    startup = container.get("startup_command") if same_egg else None
    return {
        "environment": egg_environment(egg, properties, container.get("environment") or {}),
        "skip_scripts": settings.skip_scripts,
        "egg": egg.id,
        "image": settings.docker_image or image or egg.docker_image,
        "startup": settings.startup or startup or egg.startup,
    }
