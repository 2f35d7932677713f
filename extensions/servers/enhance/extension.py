"""Enhance: per user a customer organisation owned by the user's login; per service a subscription and website.

Natural key of a service: the subscription whose ``friendlyName`` is ``paymenter-service-<service id>``
(or the stored ``subscription_id``), not deleted, in the organisation the user owns. Create looks each
object up before making it, so a retry, a lost answer or a lost ledger entry never makes a second one:

- organisation: ``enhance_orgId``, else the customer whose ``ownerEmail`` is the user's e-mail; one whose
  creation answer was lost has no owner yet, so after its own attempt (a checkpoint) a retry adopts the
  ownerless customer with the name it sent;
- owner: unless the organisation has one, a login (409: the e-mail has one in the realm, reuse it), an
  ``Owner`` member (409: reuse it) and ``PUT /owner``, so no organisation is left ownerless;
- subscription: by the natural key; website: ``domains/check``, this subscription's website is adopted.
  A domain that cannot be used fails before any subscription exists.

Checkout ``properties`` honoured: ``domain`` (required); ``subscription_id`` and ``enhance_orgId``
(Paymenter's user property, when the producer passes it) as a create returned them;
``plan`` and ``location`` (server group name or UUID) override the product settings only when the product
lists them in ``overridable_settings``. The login password is returned sealed, only by the create that
made the login. Suspend, unsuspend and upgrade are read back until the panel shows them; terminate
soft-deletes the subscription (and its website) and takes "already gone" as success.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import SecretStr

from extensions.base import (
    SERVER_OPERATIONS,
    JobContext,
    OperationResult,
    ServerExtension,
    Service,
    ServiceUser,
)
from extensions.errors import Conflict, InvalidPayload, NotFound, Pending, ProviderRejected
from extensions.http import ApiRequest, HttpApi
from extensions.servers.enhance import mapping as m
from extensions.servers.enhance.config import EnhanceConfig, EnhanceProduct

MAX_PAGES = 100
SETTLE_DELAY = 2.0


class Enhance(ServerExtension[EnhanceConfig]):
    slug = "enhance"
    display_name = "Enhance"
    description = "Websites on an Enhance control panel: customer organisation, subscription and website"
    Config = EnhanceConfig
    ProductSettings = EnhanceProduct
    operations = frozenset(SERVER_OPERATIONS)
    resource_properties = ("subscription_id", "website_id")

    def setup(self) -> None:
        self.org_id = self.config.orgId
        token = self.config.apikey.get_secret_value()
        self.api = HttpApi(
            f"{self.config.host}/api",
            provider="enhance",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            redactor=self.redactor,
            transport=self.transport,
            error_in_body=m.error_in_body,
            error_message=m.error_message,
        )

    # --- operations ---------------------------------------------------------------------------------

    def test_config(self, service: Service | None = None, job: JobContext | None = None) -> OperationResult:
        self.api.send(m.get_org(self.org_id))
        return OperationResult(data={"ok": True})

    def create(self, service: Service, job: JobContext) -> OperationResult:
        settings = self._settings(service)
        domain = m.normalise_domain(service.properties.get("domain"))
        customer = self._customer(service, job)
        self._ensure_owner(customer, service.user, job)
        # Everything that can refuse the order is checked before the subscription exists.
        website = self._usable_domain(customer, domain)
        group = self._server_group(settings.location) if settings.location and website is None else None
        subscription = self._find_subscription(customer, service)
        adopted = subscription is not None
        if website is not None and (subscription is None or not self._has_website(customer, subscription, website)):
            raise Conflict(f"enhance: {domain} is a website of another subscription of this customer")
        if subscription is None:
            request = m.create_subscription(self.org_id, customer, settings.plan, m.marker(service.id))
            subscription = m.subscription_id(m.created_id(self.api.send(request).body))
        if website is None:
            request = m.create_website(customer, domain, subscription, group)
            website = m.created_id(self.api.send(request).body)
        password = job.secret_checkpoint("password") if job.checkpoint("login_id") else None
        return OperationResult(
            data={
                "organisation": customer,
                "subscription": subscription,
                "website": website,
                "domain": domain,
                "adopted": adopted,
            },
            properties={"enhance_orgId": customer, "subscription_id": str(subscription), "website_id": website},
            secrets={"password": SecretStr(password)} if password else {},
        )

    def suspend(self, service: Service, job: JobContext) -> OperationResult:
        return self._update(service, {"isSuspended": True})

    def unsuspend(self, service: Service, job: JobContext) -> OperationResult:
        return self._update(service, {"isSuspended": False})

    def upgrade(self, service: Service, job: JobContext) -> OperationResult:
        return self._update(service, {"planId": self._settings(service).plan})

    def terminate(self, service: Service, job: JobContext) -> OperationResult:
        located = self._locate(service)
        if located is None:
            return OperationResult(data={"deleted": False, "already_gone": True})
        customer, subscription = located
        response = self.api.send(m.subscription(customer, subscription, "DELETE"), allow={404})
        gone = response.status == 404
        if gone and not m.is_api_error(response.body):
            raise self.api.classify(response, f"DELETE /orgs/{customer}/subscriptions/{subscription}")
        return OperationResult(data={"subscription": subscription, "deleted": not gone, "already_gone": gone})

    def login_url(self, service: Service, job: JobContext) -> OperationResult:
        customer = self._customer_of(service)
        if customer is None:
            raise NotFound(f"enhance: no customer organisation for service {service.id}", 404)
        member = self._owner_member(customer, service.user.email)
        return OperationResult(data={"url": m.sso_url(self.api.send(m.sso_link(customer, member)).body)})

    # --- steps --------------------------------------------------------------------------------------

    def _settings(self, service: Service) -> EnhanceProduct:
        settings = self.product_settings(service)
        assert isinstance(settings, EnhanceProduct)
        return settings

    def _items(self, request: ApiRequest) -> Iterator[dict[str, Any]]:
        offset = 0
        for _ in range(MAX_PAGES):
            found, total = m.items(self.api.send(m.paged(request, offset)).body)
            yield from found
            offset += len(found)
            if not found or offset >= total:
                return

    def _find(self, listing: ApiRequest, field: str, value: str) -> dict[str, Any] | None:
        return next((item for item in self._items(listing) if m.same(item.get(field), value)), None)

    def _customer_of(self, service: Service, orphan_name: str | None = None) -> str | None:
        """The stored organisation, else the one the user's e-mail owns, else an ownerless one so named."""
        stored = str(service.properties.get("enhance_orgId") or "").strip()
        if stored:
            return stored
        orphan = None
        for org in self._items(m.list_customers(self.org_id)):
            if m.same(org.get("ownerEmail"), service.user.email):
                return str(org["id"])
            if orphan is None and orphan_name and not org.get("ownerId") and org.get("name") == orphan_name:
                orphan = str(org["id"])
        return orphan

    def _customer(self, service: Service, job: JobContext) -> str:
        found = job.checkpoint("org_id") or self._customer_of(service, job.checkpoint("org_name"))
        if found:
            return found
        name = service.user.display_name
        job.save_checkpoint("org_name", name)  # marks the attempt: its answer may be lost
        customer = m.created_id(self.api.send(m.create_customer(self.org_id, name)).body)
        job.save_checkpoint("org_id", customer)
        return customer

    def _ensure_owner(self, customer: str, user: ServiceUser, job: JobContext) -> None:
        if m.owner_id(self.api.send(m.get_org(customer)).body):
            return
        login = self._login(customer, user, job)
        member, _ = self._create_or_find(
            m.add_owner_member(customer, login), m.list_members(customer), "loginId", login
        )
        self.api.send(m.set_owner(customer, member))

    def _login(self, customer: str, user: ServiceUser, job: JobContext) -> str:
        known = job.checkpoint("login_id")
        if known:
            return known
        password = m.new_password()
        request = m.create_login(customer, user.email, user.display_name, password)
        login, created = self._create_or_find(request, m.list_logins(self.org_id), "email", user.email)
        if created:  # only a login this job made has a password we know
            job.save_secret_checkpoint("password", password)
            job.save_checkpoint("login_id", login)
        return login

    def _create_or_find(self, create: ApiRequest, listing: ApiRequest, field: str, value: str) -> tuple[str, bool]:
        """POST ``create``; on 409 (it exists already) the listed object whose ``field`` is ``value``."""
        response = self.api.send(create, allow={409})
        if response.status != 409:
            return m.created_id(response.body), True
        found = self._find(listing, field, value)
        if found is None:
            raise self.api.classify(response, f"{create.method} {create.path}")
        return str(found["id"]), False

    def _find_subscription(self, customer: str, service: Service) -> int | None:
        stored = str(service.properties.get("subscription_id") or "").strip()
        name = m.marker(service.id)
        for sub in self._items(m.list_subscriptions(self.org_id, customer)):
            if sub.get("status") != "deleted" and (
                m.same(sub.get("friendlyName"), name) or (stored and m.same(sub["id"], stored))
            ):
                return m.subscription_id(sub["id"])
        return None

    def _locate(self, service: Service) -> tuple[str, int] | None:
        """The service's organisation and subscription; None only when nothing says one exists."""
        stored = service.properties.get("subscription_id")
        customer = self._customer_of(service)
        if customer is None and stored:  # never report a subscription we cannot reach as gone
            raise NotFound(f"enhance: no organisation found for subscription {stored}; pass enhance_orgId", 404)
        if customer is None:
            return None
        subscription = m.subscription_id(stored) if stored else self._find_subscription(customer, service)
        return None if subscription is None else (customer, subscription)

    def _update(self, service: Service, changes: dict[str, Any]) -> OperationResult:
        located = self._locate(service)
        if located is None:
            raise NotFound(f"enhance: no subscription for service {service.id}", 404)
        customer, subscription = located
        self.api.send(m.subscription(customer, subscription, "PATCH", changes))
        if not m.applied(self.api.send(m.subscription(customer, subscription)).body, changes):
            # Accepted but not visible yet: the re-run repeats the PATCH (idempotent) and looks again.
            raise Pending("enhance has not applied the subscription change yet", SETTLE_DELAY)
        return OperationResult(data={"subscription": subscription, **changes})

    def _usable_domain(self, customer: str, domain: str) -> str | None:
        """The id of this customer's website for ``domain``, None when the domain is free, else refused."""
        status, website = m.domain_status(self.api.send(m.check_domain(customer, domain)).body)
        if status == "inUseCurrentOrg" and website:
            return website
        if status in ("notInUse", "inUseDeletedSite"):
            return None
        raise (Conflict if status.startswith("inUse") else ProviderRejected)(f"enhance: {domain} is {status}")

    def _has_website(self, customer: str, subscription: int, website: str) -> bool:
        return self._find(m.list_websites(customer, subscription), "id", website) is not None

    def _server_group(self, location: str) -> str:
        if m.is_uuid(location):  # no need for the MO-level listing
            return location
        found = self._find(m.server_groups(), "name", location)
        if found is None:
            raise InvalidPayload(f"enhance: no server group named {location!r}")
        return str(found["id"])

    def _owner_member(self, customer: str, email: str) -> str:
        owner = m.owner_id(self.api.send(m.get_org(customer)).body)
        if owner:
            return owner
        # An organisation without an owner set: the customer's own Owner member, not just any Owner.
        for member in self._items(m.list_members(customer)):
            if "Owner" in (member.get("roles") or []) and m.same(member.get("email"), email):
                return str(member["id"])
        raise NotFound(f"enhance: organisation {customer} has no owner login", 404)
