"""cPanel/WHM: one cPanel account per service, made from a WHM package for the checkout domain.

Natural key: the account's domain (unique on a WHM server) plus the username create chose. Create
generates that username once and saves it as a checkpoint before calling ``createacct``. Every run
first looks the domain up and adopts the account it finds when it is this service's: its user is the
checkpointed username or, when no checkpoint survived, its contact e-mail is the customer's. A domain
held by anyone else is a conflict; a username WHM refuses (taken, reserved) is replaced and tried
again. Later operations find the account by ``properties.cpanel_username``, or by domain under the
same ownership rule when that property is missing.

Checkout ``properties`` honoured: ``domain`` (required) and ``package`` when the product lists it in
``overridable_settings`` (create and upgrade alike). Nothing else a customer sends is used.

Suspend, unsuspend and upgrade read the account first and skip when it is already in the target
state; a ``metadata.result = 0`` is re-checked the same way before it counts as a failure. Terminate of
an account that is already gone succeeds.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from pydantic import SecretStr

from extensions.base import (
    SERVER_OPERATIONS,
    JobContext,
    OperationResult,
    ServerExtension,
    Service,
)
from extensions.errors import Conflict, NotFound, ProviderRejected, ProviderUnavailable
from extensions.http import ApiRequest, HttpApi
from extensions.servers.cpanel import mapping as m
from extensions.servers.cpanel.config import CPanelConfig, CPanelProduct

TIMEOUT = httpx.Timeout(120.0, connect=10.0)  # account creation and removal often outlast 30 s
USERNAME_TRIES = 3


class CPanel(ServerExtension[CPanelConfig]):
    slug = "cpanel"
    display_name = "cPanel"
    description = "cPanel hosting accounts on a WHM server through WHM API 1"
    Config = CPanelConfig
    ProductSettings = CPanelProduct
    operations = frozenset(SERVER_OPERATIONS)
    resource_properties = ("cpanel_username",)

    def setup(self) -> None:
        token = self.config.apikey.get_secret_value()
        self.api = HttpApi(
            self.config.host,
            provider="cpanel",
            headers={"Authorization": f"whm {self.config.username}:{token}", "Accept": "application/json"},
            redactor=self.redactor,
            transport=self.transport,
            ca_file=self.config.ca_file,
            timeout=TIMEOUT,
            error_in_body=m.body_error,
            error_message=m.error_message,
        )

    # --- operations ---------------------------------------------------------------------------------

    def test_config(self, service: Service | None = None, job: JobContext | None = None) -> OperationResult:
        body = self.api.send(m.list_packages()).body
        return OperationResult(data={"ok": True, "packages": m.packages(body)})

    def create(self, service: Service, job: JobContext) -> OperationResult:
        domain = m.domain_of(service.properties)
        package = self._settings(service).package
        email = service.user.email
        user = job.checkpoint("username")
        reason: str | None = None
        for _ in range(USERNAME_TRIES):
            existing = self._find("domain", domain)
            if existing is not None:
                if not self._ours(existing, service, user):
                    raise Conflict(f"cpanel: the domain {domain} belongs to another cPanel account")
                return self._created(existing, password=None)
            if user is None or self._find("user", user) is not None:
                user = m.make_username(domain)
                job.save_checkpoint("username", user)  # before the call, so a retry reuses it
            elif reason is not None:
                raise ProviderRejected(f"cpanel POST /json-api/createacct: {reason}")
            password = m.make_password()
            response = self.api.send(m.create_account(user, domain, package, email, password), allow={200})
            reason = m.failure(response.body)
            if reason is None:
                return self._created(m.Account(user, domain, email, package, False), password=password)
            reason = reason.replace(password, "***")
            if m.is_busy(reason):
                raise ProviderUnavailable(f"cpanel POST /json-api/createacct: {reason}")
            if m.about_username(reason, user):
                user = None
        raise ProviderRejected(f"cpanel: no username accepted after {USERNAME_TRIES} tries: {reason}")

    def suspend(self, service: Service, job: JobContext) -> OperationResult:
        account = self._require(service)
        if not account.suspended:
            request = m.suspend(account.user, f"Suspended by billing (service {service.id})")
            self._apply(request, account.user, lambda a: a is not None and a.suspended)
        return OperationResult(data={"user": account.user, "suspended": True})

    def unsuspend(self, service: Service, job: JobContext) -> OperationResult:
        account = self._require(service)
        if account.suspended:
            self._apply(m.unsuspend(account.user), account.user, lambda a: a is not None and not a.suspended)
        return OperationResult(data={"user": account.user, "suspended": False})

    def terminate(self, service: Service, job: JobContext) -> OperationResult:
        account = self._account(service)
        if account is None:
            return OperationResult(data={"deleted": False, "already_gone": True})
        self._apply(m.remove(account.user), account.user, lambda a: a is None)
        return OperationResult(data={"user": account.user, "deleted": True, "already_gone": False})

    def upgrade(self, service: Service, job: JobContext) -> OperationResult:
        account = self._require(service)
        package = self._settings(service).package
        if account.plan != package:
            request = m.change_package(account.user, package)
            self._apply(request, account.user, lambda a: a is not None and a.plan == package)
        return OperationResult(data={"user": account.user, "package": package, "previous_package": account.plan})

    def login_url(self, service: Service, job: JobContext) -> OperationResult:
        account = self._require(service)
        url, expires = m.session(self.api.send(m.user_session(account.user)).body)
        # The URL logs the customer in without a password until it is used: a credential, sealed.
        return OperationResult(data={"user": account.user, "expires": expires}, secrets={"url": SecretStr(url)})

    # --- steps --------------------------------------------------------------------------------------

    def _settings(self, service: Service) -> CPanelProduct:
        settings = self.product_settings(service)
        assert isinstance(settings, CPanelProduct)
        return settings

    def _find(self, searchtype: str, value: str) -> m.Account | None:
        found = m.accounts(self.api.send(m.find_accounts(searchtype, value)).body)
        return next((a for a in found if getattr(a, searchtype) == value.lower()), None)

    @staticmethod
    def _ours(account: m.Account, service: Service, user: str | None) -> bool:
        if user is not None:
            return account.user == user
        return account.email.strip().casefold() == service.user.email.strip().casefold()

    def _account(self, service: Service) -> m.Account | None:
        user = str(service.properties.get("cpanel_username") or "").strip().lower()
        if user:
            return self._find("user", user)
        found = self._find("domain", m.domain_of(service.properties))
        return found if found is not None and self._ours(found, service, None) else None

    def _require(self, service: Service) -> m.Account:
        account = self._account(service)
        if account is None:
            raise NotFound(f"cpanel: service {service.id} has no cPanel account (never created, or removed)")
        return account

    def _apply(self, request: ApiRequest, user: str, reached: Callable[[m.Account | None], bool]) -> None:
        """Send a state change; a ``result = 0`` is fine when a re-read shows the target state anyway."""
        reason = m.failure(self.api.send(request, allow={200}).body)
        if reason is None:
            return
        where = f"cpanel {request.method} {request.path}: {reason}"
        if m.is_busy(reason):
            raise ProviderUnavailable(where)
        after = self._find("user", user)
        if reached(after):
            return
        raise NotFound(where) if after is None else ProviderRejected(where)

    @staticmethod
    def _created(account: m.Account, *, password: str | None) -> OperationResult:
        data = {"user": account.user, "domain": account.domain, "package": account.plan, "adopted": not password}
        secrets = {"password": SecretStr(password)} if password else {}
        return OperationResult(data=data, properties={"cpanel_username": account.user}, secrets=secrets)
