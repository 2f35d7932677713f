"""Pure request builders and response parsers for the Virtualizor Admin API (no I/O here).

Every call is ``/index.php?act=<act>``; the API answers HTTP 200 with an ``error`` list or map on failure
and ``done`` on a successful write. Lists are maps ``id -> record`` (``[]`` when empty) and their
filters are searches, so records are always matched exactly here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from extensions.base import validation_message
from extensions.errors import InvalidPayload, ProviderRejected
from extensions.http import ApiRequest, ApiResponse
from extensions.servers.virtualizor.config import Checkout, VirtualizorProduct

PATH = "/index.php"
PAGE = 50
BUSY = re.compile(r"\b(locked|busy|another task|in progress|try again)\b", re.IGNORECASE)
# addvs/managevps field -> the product setting that overrides the plan field of the same name.
SAME = ("ram", "space", "bandwidth", "network_speed", "cpu", "cores", "cpu_percent", "vnc", "osreinstall_limit")
RESOURCES = {"num_ips": "ips", "num_ips6": "ips6", "num_ips6_subnet": "ips6_subnet", "swapram": "swap"} | {
    k: k for k in SAME
}
PLAN_ONLY = ("kvm_cache", "io_mode", "vnc_keymap", "nic_type")


# --- requests ---------------------------------------------------------------------------------------


def get(act: str, **params: Any) -> ApiRequest:
    return ApiRequest("GET", PATH, params={"act": act, **params})


def post(act: str, form: dict[str, str], **params: Any) -> ApiRequest:
    return ApiRequest("POST", PATH, params={"act": act, **params}, form=form)


def act(request: ApiRequest) -> str:
    return str(dict(request.params or {}).get("act"))


def add_user(email: str, first_name: str, last_name: str, password: str) -> ApiRequest:
    form = {"adduser": "1", "priority": "0", "newemail": email, "newpass": password}
    return post("adduser", form | {"fname": first_name, "lname": last_name})


def find_plans(name: str, virt: str, page: int) -> ApiRequest:
    return get("plans", planname=name, ptype=virt, page=page, reslen=PAGE)


def find_vps(page: int, **filters: str) -> ApiRequest:
    """``vpsid`` or ``vpshostname`` filters."""
    return get("vs", page=page, reslen=PAGE, **filters)


# --- bodies -----------------------------------------------------------------------------------------


def parse_checkout(properties: dict[str, Any]) -> Checkout:
    try:
        return Checkout.model_validate(properties)
    except ValidationError as exc:
        raise InvalidPayload(validation_message(exc, "service.properties")) from None


def resources(settings: VirtualizorProduct, plan: dict[str, Any]) -> dict[str, str]:
    """Each resource from its override when the product sets one, else from the plan."""
    values = {}
    for field, key in RESOURCES.items():
        value = getattr(settings, key)
        value = plan.get(key) if value is None else value
        if value not in (None, ""):
            values[field] = str(value)
    return values


def addvs_form(
    settings: VirtualizorProduct, plan: dict[str, Any], checkout: Checkout, uid: str, rootpass: str
) -> dict[str, str]:
    form = {"addvps": "1", "node_select": "1", "virt": settings.virt, "uid": uid, "plid": str(plan["plid"])}
    form |= {"osid": str(checkout.os), "hostname": checkout.hostname, "rootpass": rootpass}
    form |= {key: str(plan[key]) for key in PLAN_ONLY if plan.get(key) not in (None, "")}
    return form | resources(settings, plan)


def managevps_form(vpsid: str, settings: VirtualizorProduct, plan: dict[str, Any]) -> dict[str, str]:
    """The plan id and its resources spelled out: changing ``plid`` alone need not resize the VPS."""
    form = {"vpsid": vpsid, "plid": str(plan["plid"]), "editvps": "1", "theme_edit": "1"}
    return form | resources(settings, plan)


def derive_password(secret: str, label: str, length: int = 16) -> str:
    """A password recomputable from ``secret`` and ``label``, with a lower, an upper and a digit."""
    digest = hmac.new(secret.encode(), label.encode(), hashlib.sha512).digest()
    alnum = string.ascii_letters + string.digits
    pools = [string.ascii_lowercase, string.ascii_uppercase, string.digits] + [alnum] * (length - 3)
    return "".join(pool[byte % len(pool)] for pool, byte in zip(pools, digest, strict=False))


# --- parsers ----------------------------------------------------------------------------------------


def messages(body: Any) -> list[str]:
    """The messages of a body's ``error`` list or map (empty when it reports none)."""
    error = body.get("error") if isinstance(body, dict) else None
    values = list(error.values()) if isinstance(error, dict) else error if isinstance(error, list) else [error]
    return [str(value) for value in values if value not in (None, "", [], {})]


def is_busy(found: list[str]) -> bool:
    return any(BUSY.search(message) for message in found)


def body_error(response: ApiResponse) -> str | None:
    """``error_in_body`` hook: a permanent error reported in a 200 (busy/locked ones are left to the caller)."""
    found = messages(response.body)
    return None if not found or is_busy(found) else ", ".join(found)


def error_message(response: ApiResponse) -> str | None:
    return ", ".join(messages(response.body)) or None


def entries(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key)
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [item for item in items if isinstance(item, dict)]


def is_plan(plan: dict[str, Any], name: str, virt: str) -> bool:
    return plan.get("plan_name") == name and plan.get("virt", virt) == virt and plan.get("plid") is not None


def find_user(body: dict[str, Any], email: str) -> str | None:
    wanted = email.strip().casefold()
    for user in entries(body, "users"):
        if str(user.get("email", "")).strip().casefold() == wanted and user.get("uid") is not None:
            return str(user["uid"])
    return None


def same_host(vps: dict[str, Any], hostname: str) -> bool:
    return str(vps.get("hostname", "")).rstrip(".").casefold() == hostname.rstrip(".").casefold()


def is_suspended(vps: dict[str, Any]) -> bool:
    return str(vps.get("suspended", "0")) not in ("0", "", "None")


def ips(vps: dict[str, Any]) -> list[str]:
    value = vps.get("ips") or []
    return [str(ip) for ip in (value.values() if isinstance(value, dict) else value)]


def new_vps(body: dict[str, Any]) -> dict[str, Any]:
    vps = body.get("newvs")
    if not isinstance(vps, dict) or not vps.get("vpsid"):
        raise ProviderRejected("virtualizor addvs answered without the new VPS")
    return vps


def build_state(tasks: list[dict[str, Any]], vpsid: str) -> tuple[str, int]:
    """``("failed" | "running" | "done", progress)`` of the VPS's build tasks; none listed counts as done."""
    mine = [t for t in tasks if str(t.get("vpsid")) == vpsid and t.get("action", "addvs") == "addvs"]
    if any(str(t.get("status")) == "-1" for t in mine):
        return "failed", 0
    progress = [int(float(t.get("progress") or 0)) for t in mine if str(t.get("status")) != "2"]
    running = [p for p in progress if p < 100]
    return ("running", min(running)) if running else ("done", 100)


def sso_url(base: str, body: dict[str, Any], vpsid: str) -> str:
    sid, token = body.get("sid"), body.get("token_key")
    if not sid or not token:
        raise ProviderRejected("virtualizor sso answered without a session")
    return f"{base}/{quote(str(token), safe='')}/?as={quote(str(sid), safe='')}&svs={quote(vpsid, safe='')}"
