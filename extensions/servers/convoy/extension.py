"""Convoy: one VPS per service, named ``<hostname> <customer> #<service id>``.

Natural key and reconciliation: Convoy has no external-id field, so the ``#<service id>`` marker at the
end of the server name (plus the checkout hostname) identifies the service's server. Create first
resumes the server uuid it checkpointed, else looks the server up by that marker and adopts it, and only
then creates one; a lost answer or a lost ledger therefore never makes a second VPS. Suspend, unsuspend,
upgrade, terminate and login_url use the stored ``server_uuid`` property and fall back to the same lookup.

Asynchronous states are awaited by raising ``Pending``: create succeeds only once the server leaves
``installing`` (``install_failed`` fails the job), terminate only once the server is gone
(``deletion_failed`` fails the job); a server already gone is a successful terminate.

Checkout properties honoured: ``os`` (template uuid; must be a visible template of the node),
``hostname`` and ``password`` (the VPS root password; generated when absent). Product settings (``cpu``,
``ram``, ``node``, ``ipv4``...) are overridden only for keys listed in ``overridable_settings``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from extensions.base import (
    SERVER_OPERATIONS,
    JobContext,
    OperationResult,
    ServerExtension,
    Service,
)
from extensions.errors import (
    Conflict,
    InvalidPayload,
    NotFound,
    Pending,
    ProviderRejected,
    ProviderUnavailable,
)
from extensions.http import ApiRequest, ApiResponse, HttpApi
from extensions.servers.convoy import mapping as m
from extensions.servers.convoy.config import ConvoyConfig, ConvoyProduct

# 409: the server is installing, restoring or being deleted; Convoy asks to come back later.
RETRYABLE = frozenset({409, 429, 500, 502, 503, 504})
DELETING = ("deleting", "deletion_failed")
KINDS = ("ipv4", "ipv6")
MAX_PAGES = 100
ADDRESS_TRIES = 3
POLL_DELAY = 10.0


class Convoy(ServerExtension[ConvoyConfig]):
    slug = "convoy"
    display_name = "Convoy"
    description = "Virtual servers on a Convoy (Proxmox) panel through its Application API"
    Config = ConvoyConfig
    ProductSettings = ConvoyProduct
    operations = frozenset(SERVER_OPERATIONS)
    resource_properties = ("server_uuid",)

    def setup(self) -> None:
        self.host = self.config.host
        self.key = self.config.api_key.get_secret_value()
        self.api = HttpApi(
            self.host,
            provider="convoy",
            headers={"Authorization": f"Bearer {self.key}", "Accept": "application/json"},
            redactor=self.redactor,
            transport=self.transport,
            retryable_statuses=RETRYABLE,
        )

    # --- operations ---------------------------------------------------------------------------------

    def test_config(self, service: Service | None = None, job: JobContext | None = None) -> OperationResult:
        self.api.send(m.list_servers("", per_page=1))
        return OperationResult(data={"ok": True})

    def create(self, service: Service, job: JobContext) -> OperationResult:
        hostname = m.checkout_hostname(service.properties)
        uuid = job.checkpoint("server_uuid")
        server = self._fetch(uuid) if uuid else None
        if server is None or server.get("status") in DELETING:
            found = self._find(service, hostname)
            live = found if found is not None and found.get("status") not in DELETING else None
            uuid = (live or self._provision(service, job, hostname))["uuid"]
            job.save_checkpoint("server_uuid", uuid)
            server = self._require(uuid)  # a fresh read: the install may be over already
        status = server.get("status")
        if status == "installing":
            raise Pending(f"convoy server {uuid} is installing", POLL_DELAY)
        if status == "install_failed":
            raise ProviderRejected(f"convoy: installing server {uuid} failed; an administrator must look at it")
        return self._created(service, job, server)

    def suspend(self, service: Service, job: JobContext) -> OperationResult:
        uuid = self._uuid(service)
        self.api.send(m.server_action(uuid, "suspend"))
        return OperationResult(data={"server": uuid, "suspended": True})

    def unsuspend(self, service: Service, job: JobContext) -> OperationResult:
        uuid = self._uuid(service)
        self.api.send(m.server_action(uuid, "unsuspend"))
        return OperationResult(data={"server": uuid, "suspended": False})

    def terminate(self, service: Service, job: JobContext) -> OperationResult:
        uuid = self._stored_uuid(service)
        server = self._fetch(uuid) if uuid else self._find(service, _hostname(service))
        if server is not None:
            uuid = str(server["uuid"])
            if server.get("status") not in DELETING:
                if self.api.send(m.delete_server(uuid), allow={404}).status == 404:
                    server = None
                else:
                    job.save_checkpoint("deleted", uuid)  # this job's DELETE, so a resumed poll reports it
                    server = self._fetch(uuid)
        if server is None:
            deleted = uuid is not None and job.checkpoint("deleted") == uuid
            return OperationResult(data={"server": uuid, "deleted": deleted})
        if server.get("status") == "deletion_failed":
            raise ProviderRejected(f"convoy: deleting server {uuid} failed; an administrator must look at it")
        raise Pending(f"convoy server {uuid} is being deleted", POLL_DELAY)

    def upgrade(self, service: Service, job: JobContext) -> OperationResult:
        uuid = self._uuid(service)
        server = self._require(uuid)
        settings = self._settings(service)
        body: dict[str, Any] = {}
        for _ in range(ADDRESS_TRIES):
            body = m.build_body(settings, self._upgrade_addresses(server, settings))
            if self._send_racing(m.update_build(uuid, body)) is not None:
                break
        else:
            raise ProviderUnavailable("convoy: the free addresses kept being taken by other servers")
        # Convoy saves the build even when syncing it to Proxmox fails: read it back before reporting success.
        updated = self._require(uuid)
        if not m.build_applied(updated, body):
            raise ProviderUnavailable(f"convoy: server {uuid} does not show the new build yet")
        return OperationResult(data={"server": updated})

    def login_url(self, service: Service, job: JobContext) -> OperationResult:
        # The owner of the server, never a user created on the fly; the token lives 15 s: never cache it.
        owner = int(self._require(self._uuid(service))["user_id"])
        token = m.data(self.api.send(m.sso_token(owner)).body, "sso token").get("token")
        if not isinstance(token, str) or not token:
            raise ProviderRejected("convoy returned no SSO token")
        return OperationResult(data={"url": f"{self.host}/authenticate?token={token}"})

    # --- steps --------------------------------------------------------------------------------------

    def _settings(self, service: Service) -> ConvoyProduct:
        settings = self.product_settings(service)
        assert isinstance(settings, ConvoyProduct)
        return settings

    def _fetch(self, uuid: str) -> dict[str, Any] | None:
        """The server, or None on Convoy's own 404; any other failure propagates."""
        response = self.api.send(m.get_server(uuid), allow={404})
        if response.status == 404:
            if m.is_api_error(response.body):
                return None
            raise self.api.classify(response, "GET /api/application/servers/{server}")
        return m.server(response.body)

    def _require(self, uuid: str) -> dict[str, Any]:
        server = self._fetch(uuid)
        if server is None:
            raise NotFound(f"convoy: server {uuid} does not exist", 404)
        return server

    def _find(self, service: Service, hostname: str | None) -> dict[str, Any] | None:
        """The service's server by name marker (the name filter is partial: compare exactly), live first."""
        matches: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            found, more = m.items(self.api.send(m.list_servers(m.marker(service.id).strip(), page)).body, "server")
            matches += [s for s in found if m.is_service_server(s, service.id, hostname)]
            if not more:
                break
        live = [s for s in matches if s.get("status") not in DELETING] or matches
        if len(live) > 1:
            raise Conflict(f"convoy: {len(live)} servers carry the marker of service {service.id}")
        return live[0] if live else None

    def _stored_uuid(self, service: Service) -> str | None:
        value = str(service.properties.get("server_uuid") or "").strip()
        return value or None

    def _uuid(self, service: Service) -> str:
        uuid = self._stored_uuid(service)
        if uuid is not None:
            return uuid
        found = self._find(service, _hostname(service))
        if found is None:
            raise NotFound(f"convoy: no server for service {service.id}", 404)
        return str(found["uuid"])

    def _salt(self, job: JobContext) -> str:
        """Generated passwords derive from this salt and the API key, so no password is ever stored."""
        salt = job.checkpoint("password_salt")
        if salt is None:
            salt = secrets.token_hex(16)
            job.save_checkpoint("password_salt", salt)
        return salt

    def _account_password(self, service: Service, job: JobContext) -> str:
        chosen = str(service.properties.get("password") or "")
        return chosen or m.derive_password(self.key, self._salt(job), "account")

    def _provision(self, service: Service, job: JobContext, hostname: str) -> dict[str, Any]:
        settings = self._settings(service)
        template = str(service.properties.get("os") or "").strip()
        if not m.template_offered(self.api.send(m.template_groups(settings.node)).body, template):
            raise InvalidPayload(f"service.properties.os: not a template offered on node {settings.node}")
        name = m.server_name(hostname, service.user.display_name, service.id)
        password = self._account_password(service, job)
        body = m.server_body(settings, self._user(service, job), name, hostname, template, password)
        job.save_checkpoint("server_attempted", "1")
        v4, v6 = settings.addresses_wanted()
        for _ in range(ADDRESS_TRIES):
            wanted = zip(KINDS, settings.addresses_wanted(), strict=True)
            body["limits"]["address_ids"] = [i for kind, n in wanted for i in self._free(settings.node, kind, n)]
            if (response := self._send_racing(m.create_server(body))) is not None:
                return m.server(response.body)
        raise ProviderUnavailable("convoy: the free addresses kept being taken by other servers")

    def _send_racing(self, request: ApiRequest) -> ApiResponse | None:
        """Send a request assigning addresses; None when another server took one of them meanwhile."""
        response = self.api.send(request, allow={422})
        if response.ok:
            return response
        if "already in use" in m.error_text(response.body):
            return None
        raise self.api.classify(response, f"{request.method} {request.path}")

    def _free(self, node: int, kind: str, count: int) -> list[int]:
        if count <= 0:
            return []
        found, _ = m.items(self.api.send(m.free_addresses(node, kind, count)).body, "address")
        ids = [int(a["id"]) for a in found if a.get("server_id") is None][:count]
        if len(ids) < count:
            raise ProviderRejected(f"convoy: node {node} has {len(ids)} free {kind} addresses, {count} needed")
        return ids

    def _upgrade_addresses(self, server: Mapping[str, Any], settings: ConvoyProduct) -> list[int]:
        """Keep the current addresses up to the wanted count (in Convoy's order); top up from the free pool."""
        ids: list[int] = []
        for kind, wanted in zip(KINDS, settings.addresses_wanted(), strict=True):
            current = m.address_ids(server, kind)
            ids += current[:wanted] + self._free(int(server["node_id"]), kind, wanted - len(current))
        return ids

    def _find_user(self, email: str) -> int | None:
        users, _ = m.items(self.api.send(m.find_user(email)).body, "user")
        wanted = email.strip().casefold()
        return next((int(u["id"]) for u in users if str(u.get("email", "")).strip().casefold() == wanted), None)

    def _user(self, service: Service, job: JobContext) -> int:
        """The Convoy user with the customer's e-mail, created (with a generated password) when absent."""
        email = service.user.email
        found = self._find_user(email)
        if found is not None:
            return found
        password = m.derive_password(self.key, self._salt(job), "user")
        response = self.api.send(m.create_user(email, service.user.display_name, password), allow={422})
        if response.ok:
            user_id = int(m.data(response.body, "user")["id"])
            job.save_checkpoint("user_created", str(user_id))
            return user_id
        if "taken" in m.error_text(response.body) and (found := self._find_user(email)) is not None:
            return found  # created meanwhile by another job of the same customer
        raise self.api.classify(response, "POST /api/application/users")

    def _created(self, service: Service, job: JobContext, server: dict[str, Any]) -> OperationResult:
        user_id = int(server["user_id"])
        created = job.checkpoint("user_created") == str(user_id)
        found: dict[str, SecretStr] = {}
        # The root password is known only when the checkout chose it or this job's own attempt set it.
        if service.properties.get("password") or job.checkpoint("server_attempted"):
            found["password"] = SecretStr(self._account_password(service, job))
        if created:
            found["user_password"] = SecretStr(m.derive_password(self.key, self._salt(job), "user"))
        data = {"server": server, "user": {"id": user_id, "created": created}}
        return OperationResult(data=data, properties={"server_uuid": str(server["uuid"])}, secrets=found)


def _hostname(service: Service) -> str | None:
    value = str(service.properties.get("hostname") or "").strip().lower()
    return value or None
