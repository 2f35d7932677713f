"""DirectAdmin: one user account per service, made by the configured admin/reseller login.

Natural key: the checkout ``domain`` (unique on a server) with the customer's e-mail. The username (5
letters of the domain + 3 random) and password are generated once and checkpointed before the account is
made, the password encrypted with a key derived from the connection credential. Every create first reads
that username (``CMD_API_SHOW_USER_CONFIG``): our domain and e-mail ⇒ adopt (a lost answer or ledger);
someone else's ⇒ a new name. A create refused because the domain exists adopts our account found among
the caller's users with the same prefix (checkpoint lost; password then unknown), else ``conflict``.

Suspend/unsuspend read ``suspended`` first, call only when it differs (older builds toggle) and read it
again. Terminate of an account already gone succeeds; upgrade sets the package (``CMD_API_MODIFY_USER``);
login_url mints a one-time URL logged in as ``<admin>|<user>``, never with the customer's password. The
password is only returned as a sealed secret.

Checkout properties honoured: ``domain`` (required by create); ``directadmin_username`` (stored by create
and used by the other operations, which fall back to the domain when it is missing); ``package`` and
``ip`` only when the product lists them in ``overridable_settings``.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import httpx
from pydantic import SecretStr

from extensions.base import SERVER_OPERATIONS, JobContext, OperationResult, ServerExtension, Service
from extensions.errors import Conflict, NotFound, ProviderRejected, ProviderUnavailable
from extensions.http import HttpApi
from extensions.servers.directadmin import mapping as m
from extensions.servers.directadmin.config import DirectAdminConfig, DirectAdminProduct

CANDIDATE = "account"  # checkpoint: the username; secret checkpoint: its password
USERNAME_PROPERTY = "directadmin_username"
USERNAME_TRIES = 3
MAX_LOOKUPS = 20


class _Login(httpx.Auth):
    """Basic auth as the configured login, or as ``<login>|<user>`` when a request names a user."""

    def __init__(self, login: str, secret: SecretStr) -> None:
        self.login = login
        self.secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        user = request.headers.pop(m.LOGIN_AS, None)
        login = f"{self.login}|{user}" if user else self.login
        yield from httpx.BasicAuth(login, self.secret.get_secret_value()).auth_flow(request)


class DirectAdmin(ServerExtension[DirectAdminConfig]):
    slug = "directadmin"
    display_name = "DirectAdmin"
    description = "Web hosting accounts on a DirectAdmin server through its legacy API"
    Config = DirectAdminConfig
    ProductSettings = DirectAdminProduct
    operations = frozenset(SERVER_OPERATIONS)
    resource_properties = (USERNAME_PROPERTY,)

    def setup(self) -> None:
        conn = self.config
        self.api = HttpApi(
            conn.host,
            provider="directadmin",
            headers={"Accept": "text/plain"},
            auth=_Login(conn.username, conn.password),
            redactor=self.redactor,
            transport=self.transport,
            ca_file=conn.ca_file,
            error_in_body=m.body_error,
            error_message=m.reason,
        )

    def test_config(self) -> OperationResult:
        users = m.items(self.api.send(m.SHOW_USERS).text)
        return OperationResult(data={"ok": True, "users": len(users)})

    def create(self, service: Service, job: JobContext) -> OperationResult:
        domain = m.checkout_domain(service.properties)
        settings = self._settings(service)
        email = service.user.email
        for _ in range(USERNAME_TRIES):
            username, password = self._candidate(job, domain)
            found = self._account(username)
            if found is None:
                ip = settings.ip or self._first_ip()
                made = {"username": username, "email": email, "domain": domain, "package": settings.package, "ip": ip}
                try:
                    self.api.send(m.create_account(made, password, notify=settings.notify))
                except ProviderRejected as exc:
                    found = self._after_refusal(exc, username, domain, email)
                else:
                    return self._created(made, password, adopted=False)
            if found is not None and m.belongs(found, domain, email):
                return self._created(found, password if found["username"] == username else None, adopted=True)
            job.save_checkpoint(CANDIDATE, "")  # the name is someone else's: draw another
        raise Conflict(f"directadmin: {USERNAME_TRIES} generated usernames were all taken")

    def suspend(self, service: Service, job: JobContext) -> OperationResult:
        return self._suspension(service, True)

    def unsuspend(self, service: Service, job: JobContext) -> OperationResult:
        return self._suspension(service, False)

    def terminate(self, service: Service, job: JobContext) -> OperationResult:
        found = self._find(service)
        if found is None:
            return OperationResult(data={"deleted": False, "already_gone": True})
        username = found["username"]
        try:
            self.api.send(m.delete_account(username))
        except ProviderRejected as exc:
            # A repeated delete answers error=1: success when the account is indeed gone.
            if exc.provider_status != 200 or self._account(username) is not None:
                raise
            return OperationResult(data={"username": username, "deleted": False, "already_gone": True})
        return OperationResult(data={"username": username, "deleted": True, "already_gone": False})

    def upgrade(self, service: Service, job: JobContext) -> OperationResult:
        found = self._require(service)
        username, package = found["username"], self._settings(service).package
        changed = found.get("package") != package
        if changed:
            self.api.send(m.change_package(username, package))
            now = (self._account(username) or {}).get("package")
            if now != package:
                raise ProviderRejected(f"directadmin: {username} still has package {now!r} after the change")
        return OperationResult(data={"username": username, "package": package, "changed": changed})

    def login_url(self, service: Service, job: JobContext) -> OperationResult:
        found = self._require(service)
        response = self.api.send(m.one_time_login(found["username"]))
        return OperationResult(data={"url": m.login_url(response.text), "username": found["username"]})

    def _settings(self, service: Service) -> DirectAdminProduct:
        settings = self.product_settings(service)
        assert isinstance(settings, DirectAdminProduct)
        return settings

    def _account(self, username: str) -> m.Account | None:
        try:
            response = self.api.send(m.user_config(username))
        except ProviderRejected as exc:
            if exc.provider_status == 200:
                return None  # error=1: no such user, or not one of the caller's
            raise
        return m.account(response.text)

    def _candidate(self, job: JobContext, domain: str) -> tuple[str, str]:
        """The username and password this create uses, generated once and saved before any use."""
        username = job.checkpoint(CANDIDATE)
        password = job.secret_checkpoint(CANDIDATE) if username else None
        if username and password:
            return username, password
        # No usable pair (first run, or the sealed password is out of reach): a new name, so an account
        # made under the old one is found by domain instead of being re-created with a wrong password.
        username, password = m.new_username(domain), m.new_password()
        job.save_secret_checkpoint(CANDIDATE, password)
        job.save_checkpoint(CANDIDATE, username)
        return username, password

    def _after_refusal(self, exc: ProviderRejected, username: str, domain: str, email: str) -> m.Account | None:
        """After error=1 on create: the account holding the name or ours for the domain; None: name taken."""
        if exc.provider_status != 200:
            raise exc
        found = self._account(username)
        if found is not None:
            return found
        if m.DOMAIN_TAKEN.search(exc.message):
            owner = self._owner(domain, email)
            if owner is None:
                raise Conflict(exc.message, exc.provider_status)
            return owner
        if m.USERNAME_TAKEN.search(exc.message):
            return None
        raise exc

    def _owner(self, domain: str, email: str) -> m.Account | None:
        """This service's account among the caller's users named like ours (when its name was lost)."""
        prefix = m.username_prefix(domain)
        names = [u for u in m.items(self.api.send(m.SHOW_USERS).text) if u.startswith(prefix)]
        for name in names[:MAX_LOOKUPS]:
            found = self._account(name)
            if found is not None and m.belongs(found, domain, email):
                return found
        return None

    def _first_ip(self) -> str:
        ips = m.items(self.api.send(m.RESELLER_IPS).text)
        if not ips:
            raise ProviderRejected("directadmin: No IP address available for the server")
        return ips[0]

    def _find(self, service: Service) -> m.Account | None:
        username = str(service.properties.get(USERNAME_PROPERTY) or "").strip()
        if not username:
            return self._owner(m.checkout_domain(service.properties), service.user.email)
        found = self._account(username)
        domain = str(service.properties.get("domain") or "")
        if found is not None and domain and not m.serves(found, domain):
            raise Conflict(f"directadmin: account {username} serves another domain than this service")
        return found

    def _require(self, service: Service) -> m.Account:
        found = self._find(service)
        if found is None:
            raise NotFound("directadmin: the service's account does not exist")
        return found

    def _suspension(self, service: Service, wanted: bool) -> OperationResult:
        found = self._require(service)
        username = found["username"]
        changed = m.is_suspended(found) != wanted
        if changed:
            self.api.send(m.set_suspended(username, wanted))
            now = self._account(username)
            if now is None or m.is_suspended(now) != wanted:
                raise ProviderUnavailable(f"directadmin: suspension of {username} not applied yet")
        return OperationResult(data={"username": username, "suspended": wanted, "changed": changed})

    def _created(self, found: Mapping[str, str], password: str | None, *, adopted: bool) -> OperationResult:
        data: dict[str, Any] = {k: found.get(k) for k in ("username", "domain", "ip", "package")}
        data["adopted"] = adopted
        sealed = {"directadmin_password": SecretStr(password)} if password else {}
        return OperationResult(data=data, properties={USERNAME_PROPERTY: found["username"]}, secrets=sealed)
