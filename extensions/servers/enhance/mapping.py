"""Pure request builders and response parsers for the Enhance API (paths relative to ``{host}/api``)."""

from __future__ import annotations

import re
import secrets
import string
import uuid
from dataclasses import replace
from typing import Any

from extensions.errors import InvalidPayload, ProviderRejected
from extensions.http import ApiRequest, ApiResponse, default_error_message

PAGE = 100
DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
ERROR_KEYS = frozenset({"code", "message", "detail"})


def marker(service_id: int | str) -> str:
    """The subscription ``friendlyName`` that names the service a subscription belongs to."""
    return f"paymenter-service-{service_id}"


# --- requests ---------------------------------------------------------------------------------------


def paged(request: ApiRequest, offset: int) -> ApiRequest:
    return replace(request, params={**dict(request.params or {}), "offset": offset, "limit": PAGE})


def get_org(org_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/orgs/{org_id}")


def list_customers(org_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/orgs/{org_id}/customers")


def create_customer(org_id: str, name: str) -> ApiRequest:
    return ApiRequest("POST", f"/orgs/{org_id}/customers", json={"name": name})


def create_login(customer: str, email: str, name: str, password: str) -> ApiRequest:
    body = {"email": email, "name": name, "password": password}
    return ApiRequest("POST", "/logins", params={"orgId": customer}, json=body)


def list_logins(realm: str) -> ApiRequest:
    return ApiRequest("GET", "/logins", params={"realmId": realm})


def list_members(customer: str) -> ApiRequest:
    return ApiRequest("GET", f"/orgs/{customer}/members")


def add_owner_member(customer: str, login_id: str) -> ApiRequest:
    return ApiRequest("POST", f"/orgs/{customer}/members", json={"loginId": login_id, "roles": ["Owner"]})


def set_owner(customer: str, member_id: str) -> ApiRequest:
    return ApiRequest("PUT", f"/orgs/{customer}/owner", json={"memberId": member_id})


def sso_link(customer: str, member_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/orgs/{customer}/members/{member_id}/sso")


def list_subscriptions(org_id: str, customer: str) -> ApiRequest:
    return ApiRequest("GET", f"/orgs/{org_id}/customers/{customer}/subscriptions")


def create_subscription(org_id: str, customer: str, plan: int, name: str) -> ApiRequest:
    body = {"planId": plan, "friendlyName": name}
    return ApiRequest("POST", f"/orgs/{org_id}/customers/{customer}/subscriptions", json=body)


def subscription(customer: str, subscription_id: int, method: str = "GET", changes: Any = None) -> ApiRequest:
    """Read (GET), change (PATCH ``changes``) or soft-delete (DELETE) one subscription."""
    return ApiRequest(method, f"/orgs/{customer}/subscriptions/{subscription_id}", json=changes)


def server_groups() -> ApiRequest:
    return ApiRequest("GET", "/servers/groups")


def check_domain(customer: str, domain: str) -> ApiRequest:
    return ApiRequest("POST", f"/orgs/{customer}/domains/check", json={"domain": domain})


def list_websites(customer: str, subscription: int) -> ApiRequest:
    return ApiRequest("GET", f"/orgs/{customer}/websites", params={"subscriptionId": subscription})


def create_website(customer: str, domain: str, subscription: int, group: str | None) -> ApiRequest:
    body: dict[str, Any] = {"domain": domain, "subscriptionId": subscription}
    if group:
        body["serverGroupId"] = group
    return ApiRequest("POST", f"/orgs/{customer}/websites", json=body)


# --- parsers ----------------------------------------------------------------------------------------


def error_message(response: ApiResponse) -> str | None:
    """``code: message`` of Enhance's error body ``{"code", "message"?, "detail"?}``."""
    body = response.body
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        reason = body.get("message") or body.get("detail")
        return f"{body['code']}: {reason}" if reason else str(body["code"])
    return default_error_message(response)


def error_in_body(response: ApiResponse) -> str | None:
    """A 2xx carrying nothing but an error envelope is an error (no success body has that shape)."""
    body = response.body
    if is_api_error(body) and set(body) <= ERROR_KEYS:
        return error_message(response)
    return None


def is_api_error(body: Any) -> bool:
    """True for Enhance's own error body, not a proxy's page."""
    return isinstance(body, dict) and isinstance(body.get("code"), str)


def created_id(body: Any) -> str:
    value = body.get("id") if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise ProviderRejected("enhance returned no id for a created object")
    return str(value)


def items(body: Any) -> tuple[list[dict[str, Any]], int]:
    """The objects of a ``{"items": [...], "total": n}`` listing and its total."""
    found = body.get("items") if isinstance(body, dict) else None
    if not isinstance(found, list):
        raise ProviderRejected("enhance returned an unexpected listing")
    objects = [item for item in found if isinstance(item, dict) and item.get("id") is not None]
    total = body.get("total")
    return objects, total if isinstance(total, int) else len(objects)


def same(value: Any, wanted: str) -> bool:
    """Identifiers and e-mail addresses compare as strings, case-insensitively."""
    return value is not None and str(value).strip().casefold() == wanted.strip().casefold()


def subscription_id(value: Any) -> int:
    """Subscription ids are integers; properties carry them as strings."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise InvalidPayload("subscription_id must be an integer") from None


def owner_id(org: Any) -> str | None:
    """The member id of an organisation's owner, if it has one."""
    owner = org.get("ownerId") if isinstance(org, dict) else None
    return str(owner) if owner else None


def applied(subscription: Any, changes: dict[str, Any]) -> bool:
    """Whether the subscription shows ``changes``; suspended is shown by ``suspendedBy``."""
    if not isinstance(subscription, dict):
        raise ProviderRejected("enhance returned an unexpected subscription")
    view = {**subscription, "isSuspended": bool(subscription.get("suspendedBy"))}
    return all(view.get(key) == value for key, value in changes.items())


def domain_status(body: Any) -> tuple[str, str | None]:
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        raise ProviderRejected("enhance returned an unexpected domain check")
    website = body.get("websiteId")
    return body["status"], str(website) if website else None


def sso_url(body: Any) -> str:
    if not isinstance(body, str) or not body.startswith(("https://", "http://")):
        raise ProviderRejected("enhance returned no login link")
    return body


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def normalise_domain(value: Any) -> str:
    """The checkout domain in ASCII lower case, without a trailing dot."""
    text = str(value or "").strip().rstrip(".").lower()
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError:
        text = ""
    if not DOMAIN.fullmatch(text):
        raise InvalidPayload("service.properties.domain: a valid domain name is required")
    return text


def new_password(length: int = 20) -> str:
    """Random, with every character class the panel's password policy may ask for."""
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits, "!#%*+-=?@^_")
    chars = [secrets.choice(c) for c in classes]
    chars += [secrets.choice("".join(classes)) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)
