"""Plesk: one subscription (a domain with virtual hosting from a service plan) per service.

Natural key: the checkout ``domain``, owned by this Paymenter user's customer (``external_id`` = user id).
Create looks the domain up by name first and adopts it when its owner is that customer (another owner is
a permanent conflict), so a retry after a lost answer or a lost ledger entry never makes a second
subscription. The customer is found by external id, then by our login, then by e-mail, and created only
when none matches: one customer per Paymenter user, reused by their later orders. A failed lookup is never
read as "absent".

Logins are generated once and checkpointed before the call that uses them: the customer login
``<name>-<user id>`` (unique even when two users share a name) and, per subscription, the FTP (system user)
login ``<name>_<random>`` (system logins are unique server-wide, so a second order needs its own).
Passwords are returned only as sealed secrets and never checkpointed: when a retry adopts a customer or
subscription an earlier attempt of this job created, it sets a fresh password so the welcome e-mail has a
working one.

Later operations use ``properties.domain_id`` (the PHP's property), else the domain name and its owner.
Suspend/unsuspend set the status (idempotent); terminate treats Plesk's own 404 as already gone; upgrade
switches the service plan through the CLI gateway, whose HTTP 200 with a non-zero exit code is an error.
Plesk creates subscriptions synchronously, so nothing is polled.

Checkout properties honoured: ``domain`` (required); product settings (``plan``) only for keys the product
lists in ``overridable_settings``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
from pydantic import SecretStr

from extensions.base import (
    SERVER_OPERATIONS,
    JobContext,
    OperationResult,
    ServerExtension,
    Service,
    ServiceUser,
)
from extensions.errors import Conflict, InvalidPayload, NotFound
from extensions.http import ApiRequest, HttpApi
from extensions.servers.plesk import mapping as m
from extensions.servers.plesk.config import PleskConfig, PleskProduct

TIMEOUT = httpx.Timeout(90.0, connect=10.0)  # a subscription create sets up a system user and web server
REFUSED = frozenset({400, 409, 422})  # validation answers a create reconciles before giving up
FTP_TRIES = 3


class Plesk(ServerExtension[PleskConfig]):
    slug = "plesk"
    display_name = "Plesk"
    description = "Web hosting subscriptions on a Plesk panel through its REST API"
    Config = PleskConfig
    ProductSettings = PleskProduct
    operations = frozenset(SERVER_OPERATIONS) - {"login_url"}
    resource_properties = ("domain_id",)

    def setup(self) -> None:
        key = self.config.api_key
        headers = {"Accept": "application/json"} | ({"X-API-Key": key.get_secret_value()} if key else {})
        auth = None if key else (self.config.username, self.config.password.get_secret_value())
        self.api = HttpApi(
            self.config.host,
            provider="plesk",
            headers=headers,
            auth=auth,
            redactor=self.redactor,
            transport=self.transport,
            timeout=TIMEOUT,
            error_in_body=m.body_error,
        )

    # --- operations ---------------------------------------------------------------------------------

    def test_config(self, service: Service | None = None, job: JobContext | None = None) -> OperationResult:
        body = self.api.send(m.SERVER_INFO).body
        version = body.get("panel_version") if isinstance(body, dict) else None
        return OperationResult(data={"ok": True, "panel_version": version})

    def create(self, service: Service, job: JobContext) -> OperationResult:
        plan = self._settings(service).plan
        name = m.domain_name(service.properties.get("domain"))
        login = job.checkpoint("customer_login") or m.customer_login(service.user)
        customer = self._find_customer(service.user, login)
        domain = self._find_domain(name)
        if domain is not None:
            self._check_owner(domain, customer, name)
        secrets: dict[str, str] = {}
        if customer is None:
            customer, password = self._create_customer(service.user, login, job)
            if password is not None:
                secrets["password"] = password
        elif job.checkpoint("customer_login") == customer.get("login"):
            # An earlier attempt of this job created the customer; its password was not kept.
            secrets["password"] = self._reissue(partial(m.set_client_password, customer["id"]))
        if domain is None:
            made = self._create_domain(name, plan, service, customer, job)
            if made is not None:
                domain_id, ftp_login, secrets["ftp_password"] = made
                return self._created(name, domain_id, customer, ftp_login, secrets, adopted=False)
            domain = self._find_domain(name)  # refused because the name was taken meanwhile
            if domain is None:
                raise Conflict(f"plesk: domain {name} was refused and does not exist")
            self._check_owner(domain, customer, name)
            return self._created(name, domain["id"], customer, None, secrets, adopted=True)
        tried = job.checkpoint("ftp_login")
        if tried is not None:
            # An earlier attempt of this job created the subscription; the answer with it was lost.
            secrets["ftp_password"] = self._reissue(partial(m.set_ftp_password, domain["id"], tried))
        return self._created(name, domain["id"], customer, tried, secrets, adopted=True)

    def suspend(self, service: Service, job: JobContext) -> OperationResult:
        return self._set_status(service, "suspended")

    def unsuspend(self, service: Service, job: JobContext) -> OperationResult:
        return self._set_status(service, "active")

    def terminate(self, service: Service, job: JobContext) -> OperationResult:
        domain_id = self._lookup(service)
        if domain_id is None:
            return OperationResult(data={"deleted": False, "already_gone": True})
        response = self.api.send(m.delete_domain(domain_id), allow={404})
        gone = response.status == 404
        if gone and not m.is_plesk_error(response.body):
            raise self.api.classify(response, f"DELETE {m.API}/domains/{domain_id}")
        return OperationResult(data={"domain_id": domain_id, "deleted": not gone, "already_gone": gone})

    def upgrade(self, service: Service, job: JobContext) -> OperationResult:
        plan = self._settings(service).plan
        domain_id = self._require(service)
        domain = m.parse_object(self.api.send(m.get_domain(domain_id)).body, "domain")
        self.api.send(m.switch_plan(str(domain.get("name")), plan))
        return OperationResult(data={"domain_id": domain_id, "plan": plan})

    # --- steps --------------------------------------------------------------------------------------

    def _settings(self, service: Service) -> PleskProduct:
        settings = self.product_settings(service)
        assert isinstance(settings, PleskProduct)
        return settings

    def _find_customer(self, user: ServiceUser, login: str) -> dict[str, Any] | None:
        return m.match_client(self.api.send(m.LIST_CLIENTS).body, str(user.id), login, user.email)

    def _find_domain(self, name: str) -> dict[str, Any] | None:
        return m.find_domain(self.api.send(m.find_domains(name)).body, name)

    def _owner_id(self, domain: dict[str, Any]) -> int:
        owner: int = m.parse_object(self.api.send(m.domain_owner(domain["id"])).body, "client")["id"]
        return owner

    def _check_owner(self, domain: dict[str, Any], customer: dict[str, Any] | None, name: str) -> None:
        if customer is None or self._owner_id(domain) != customer["id"]:
            raise Conflict(f"plesk: domain {name} belongs to another customer")

    def _create_customer(self, user: ServiceUser, login: str, job: JobContext) -> tuple[dict[str, Any], str | None]:
        job.save_checkpoint("customer_login", login)
        password = m.password()
        response = self.api.send(m.create_client(user, login, password), allow=REFUSED)
        if response.ok:
            return {**m.parse_object(response.body, "client"), "login": login}, password
        raced = self._find_customer(user, login)  # a concurrent order of the same user created it
        if raced is None:
            raise self.api.classify(response, f"POST {m.API}/clients")
        return raced, None

    def _create_domain(
        self, name: str, plan: str, service: Service, customer: dict[str, Any], job: JobContext
    ) -> tuple[int, str, str] | None:
        """(id, FTP login, FTP password) of the new subscription, or None when the name got taken."""
        ftp_login = job.checkpoint("ftp_login") or m.ftp_login(service.user, m.random_suffix())
        for _ in range(FTP_TRIES):
            job.save_checkpoint("ftp_login", ftp_login)
            password = m.password()
            request = m.create_domain(name, plan, str(service.id), customer, ftp_login, password)
            response = self.api.send(request, allow=REFUSED)
            if response.ok:
                return m.parse_object(response.body, "domain")["id"], ftp_login, password
            if self._find_domain(name) is not None:
                return None
            error = self.api.classify(response, f"POST {m.API}/domains")
            if not m.ftp_login_taken(error.message, ftp_login):
                raise error
            ftp_login = m.ftp_login(service.user, m.random_suffix())
        raise Conflict("plesk: could not find a free FTP login")

    def _reissue(self, request: Callable[[str], ApiRequest]) -> str:
        password = m.password()
        self.api.send(request(password))
        return password

    def _created(
        self,
        name: str,
        domain_id: int,
        customer: dict[str, Any],
        ftp_login: str | None,
        secrets: dict[str, str],
        adopted: bool,
    ) -> OperationResult:
        data = {"domain": name, "domain_id": domain_id, "client_id": customer["id"], "adopted": adopted}
        data |= {"username": customer.get("login"), "ftp_login": ftp_login, "customer_created": "password" in secrets}
        sealed = {key: SecretStr(value) for key, value in secrets.items()}
        return OperationResult(data=data, properties={"domain_id": str(domain_id)}, secrets=sealed)

    def _lookup(self, service: Service) -> int | None:
        """The service's domain id: ``domain_id`` as stored, else the domain found by name with our owner."""
        stored = str(service.properties.get("domain_id") or "").strip()
        if stored:
            if not stored.isdigit():
                raise InvalidPayload("properties.domain_id must be a number")
            return int(stored)
        name = m.domain_name(service.properties.get("domain"))
        domain = self._find_domain(name)
        if domain is None:
            return None
        customer = self._find_customer(service.user, m.customer_login(service.user))
        found: int = domain["id"]
        return found if customer is not None and self._owner_id(domain) == customer["id"] else None

    def _require(self, service: Service) -> int:
        domain_id = self._lookup(service)
        if domain_id is None:
            raise NotFound(f"plesk: service {service.id} has no subscription", 404)
        return domain_id

    def _set_status(self, service: Service, status: str) -> OperationResult:
        domain_id = self._require(service)
        self.api.send(m.set_status(domain_id, status))
        return OperationResult(data={"domain_id": domain_id, "status": status})
