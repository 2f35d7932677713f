"""VirtFusion: one server per service, owned by the VirtFusion user whose ``extRelationId`` is the Paymenter
user id.

Natural keys and reconciliation:

- the user is read by ``extRelationId`` before any create; a timeout or 5xx there never creates a user, and
  a create refused because the user appeared meanwhile reads it again;
- the server is the user's server that ``server_id`` records, else the one named ``paymenter-<service id>``.
  VirtFusion servers carry no external reference, so create checkpoints the user's server ids before the
  POST; a retry after a lost answer adopts the one server that appeared since without any service's name,
  and every create names its server at once so later lookups are exact;
- the OS install starts only while the server reports ``commissionStatus`` 0, then is awaited with
  ``Pending``; 423 (server locked by a running task) is ``Pending`` as well, never a failure.

Checkout ``properties`` honoured: ``hostname`` (the build's hostname). The config options Paymenter
documents (``packageId``, ``hypervisorId``, ``ipv4``, ``memory``, ``cpuCores``...) and ``operating_system``
override product settings only when the product lists them in ``overridable_settings``. A checkout
``password`` is not used: VirtFusion generates the root password, returned sealed like the panel password
of a user created here; between runs both wait in sealed checkpoints.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import SecretStr

from extensions.base import SERVER_OPERATIONS, JobContext, OperationResult, ServerExtension, Service
from extensions.errors import NotFound, Pending, ProviderRejected, ProviderUnavailable
from extensions.http import ApiRequest, ApiResponse, HttpApi
from extensions.servers.virtfusion import mapping as m
from extensions.servers.virtfusion.config import VirtFusionConfig, VirtFusionProduct

LOCK_DELAY = 15.0
# How long a create may keep its customer's turn: three calls at the client's 30 s timeout, with room
# to spare, so a live turn never lapses. The runtime adds the visibility timeout for a holder killed inside.
CREATE_TURN_S = 180.0
BUILD_DELAY = 20.0
SEALED = ("root_password", "panel_password")


class VirtFusion(ServerExtension[VirtFusionConfig]):
    slug = "virtfusion"
    display_name = "VirtFusion"
    description = "Virtual servers on a VirtFusion control panel"
    Config = VirtFusionConfig
    ProductSettings = VirtFusionProduct
    operations = frozenset(SERVER_OPERATIONS)
    resource_properties = ("server_id",)

    def setup(self) -> None:
        self.host = self.config.host
        key = self.config.apikey.get_secret_value()
        self.api = HttpApi(
            self.host,
            provider="virtfusion",
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            redactor=self.redactor,
            transport=self.transport,
            error_message=m.error_message,
        )

    # --- operations ---------------------------------------------------------------------------------

    def test_config(self, service: Service | None = None, job: JobContext | None = None) -> OperationResult:
        self._send(m.connect())
        return OperationResult(data={"ok": True})

    def create(self, service: Service, job: JobContext) -> OperationResult:
        settings = self._settings(service)
        user_id = self._ensure_user(service, job)
        name = m.marker(service.id)
        server = m.find_server(self._servers(user_id), name, service.properties.get("server_id"))
        if server is None:
            # Creates of one customer take turns from listing their servers to naming the new one, so a
            # server nobody has named yet can only be the one the last turn made.
            with job.exclusive(f"create:{user_id}", CREATE_TURN_S):
                server = self._create_named(settings, user_id, name, job)
        server = self._named(server, name)  # a server_id recorded by the PHP extension gets the name too
        adopted = job.checkpoint("created_server") != str(server["id"])  # not when resuming our own
        server, built = self._build(service, settings, server, job)
        data = {"server_id": server["id"], "uuid": server.get("uuid"), "name": name, "hostname": server.get("hostname")}
        data |= {"ipv4": m.ipv4_addresses(server), "user_id": user_id, "built": built, "adopted": adopted}
        return OperationResult(data=data, properties={"server_id": str(server["id"])}, secrets=self._unseal(job))

    def suspend(self, service: Service, job: JobContext) -> OperationResult:
        return self._suspension(service, True)

    def unsuspend(self, service: Service, job: JobContext) -> OperationResult:
        return self._suspension(service, False)

    def terminate(self, service: Service, job: JobContext) -> OperationResult:
        delay = self._settings(service).delete_delay
        server = self._locate(service)
        gone = server is None or self._send(m.delete_server(server["id"], delay), allow={404}).status == 404
        data = {"server_id": server and server["id"], "deleted": not gone, "already_gone": gone, "delay": delay}
        # Cleared so that a later create of this service provisions anew.
        return OperationResult(data=data)

    def upgrade(self, service: Service, job: JobContext) -> OperationResult:
        package = self._settings(service).package_id
        server = self._require(service)
        self._send(m.change_package(server["id"], package))
        return OperationResult(data={"server_id": server["id"], "package": package})

    def login_url(self, service: Service, job: JobContext) -> OperationResult:
        server = self._require(service)
        response = self._send(m.login_tokens(m.ext_relation(service.user), server["id"]))
        return OperationResult(data={"url": self.host + m.login_path(response.body)})

    # --- steps --------------------------------------------------------------------------------------

    def _send(self, request: ApiRequest, allow: Collection[int] = ()) -> ApiResponse:
        """HttpApi plus VirtFusion's statuses: 423 is a lock to wait out, a bare 404 a proxy's answer."""
        response = self.api.send(request, allow={404, 423, *allow})
        where = f"{request.method} {request.path}"
        if response.status == 423:
            raise Pending(f"virtfusion {where}: {m.error_message(response) or 'server locked'}", LOCK_DELAY)
        if response.status == 404 and not m.is_api_error(response.body):
            raise ProviderUnavailable(f"virtfusion {where}: HTTP 404 without VirtFusion's error body", 404)
        if response.status == 404 and 404 not in allow:
            raise self.api.classify(response, where)
        return response

    def _settings(self, service: Service) -> VirtFusionProduct:
        settings = self.product_settings(service)
        assert isinstance(settings, VirtFusionProduct)
        return settings

    def _find_user(self, service: Service) -> int | None:
        response = self._send(m.get_user(m.ext_relation(service.user)), allow={404})
        return None if response.status == 404 else int(m.data(response.body, "user")["id"])

    def _ensure_user(self, service: Service, job: JobContext) -> int:
        found = self._find_user(service)
        if found is not None:
            return found
        response = self._send(m.create_user(service.user), allow={422})
        if response.status == 422:
            found = self._find_user(service)  # another delivery created it meanwhile
            if found is None:
                raise self.api.classify(response, "POST /api/v1/users")
            return found
        user = m.data(response.body, "user")
        if isinstance(user.get("password"), str) and user["password"]:
            self._seal(job, "panel_password", user["password"])
        return int(user["id"])

    def _servers(self, user_id: int) -> list[dict[str, Any]]:
        return m.servers(self._send(m.user_servers(user_id)).body)

    def _create_named(self, settings: VirtFusionProduct, user_id: int, name: str, job: JobContext) -> dict[str, Any]:
        """Find or make the service's server and give it the service's name (inside the customer's turn).

        VirtFusion servers carry no reference of ours until named, so the job checkpoints the ids it saw
        before its POST; a retry whose answer was lost takes the oldest unnamed server that appeared since.
        Turns make that exact: only a holder whose worker died leaves a server unnamed, and every later
        turn's checkpoint already lists it.
        """
        listed = self._servers(user_id)
        server = m.find_server(listed, name, None)  # another job for this service named it while we waited
        created, known = job.checkpoint("created_server"), job.checkpoint("known_servers")
        if server is None and created:  # the answer arrived last time: resume that server
            server = next((s for s in listed if str(s["id"]) == created), None)
        if server is None and known is not None and not created:
            fresh = m.unmarked_since(listed, {int(i) for i in known.split(",") if i})
            server = min(fresh, key=lambda s: int(s["id"]), default=None)
        if server is None:
            job.save_checkpoint("known_servers", ",".join(str(s["id"]) for s in listed))
            server = m.data(self._send(m.create_server(settings, user_id)).body, "server")
            job.save_checkpoint("created_server", str(server["id"]))
        return self._named(server, name)

    def _named(self, server: dict[str, Any], name: str) -> dict[str, Any]:
        if server.get("name") == name:
            return server
        self._send(m.rename(server["id"], name))
        return {**server, "name": name}

    def _locate(self, service: Service) -> dict[str, Any] | None:
        user_id = self._find_user(service)
        if user_id is None:
            return None
        return m.find_server(self._servers(user_id), m.marker(service.id), service.properties.get("server_id"))

    def _require(self, service: Service) -> dict[str, Any]:
        server = self._locate(service)
        if server is None:
            raise NotFound(f"virtfusion: no server for service {service.id}", 404)
        return server

    def _suspension(self, service: Service, wanted: bool) -> OperationResult:
        server = self._require(service)
        if bool(server.get("suspended")) != wanted:  # already there: no call, so a repeat is harmless
            self._send(m.server_action(server["id"], "suspend" if wanted else "unsuspend"))
        return OperationResult(data={"server_id": server["id"], "suspended": wanted})

    def _build(
        self, service: Service, settings: VirtFusionProduct, server: dict[str, Any], job: JobContext
    ) -> tuple[dict[str, Any], bool]:
        """Install the product's OS template once and wait for it; False when the product names none."""
        if settings.operating_system is None:
            return server, False
        if not server.get("commissionStatus") and not server.get("buildFailed"):
            hostname = str(service.properties.get("hostname") or "").strip() or None
            request = m.build(server["id"], settings.operating_system, m.marker(service.id), hostname)
            response = self._send(request)
            if password := m.root_password(response.body):
                self._seal(job, "root_password", password)
            server = m.data(response.body, "server")
        if server.get("buildFailed"):
            raise ProviderRejected(f"virtfusion: the OS install of server {server['id']} failed")
        if server.get("commissionStatus") != m.BUILT:
            raise Pending(f"virtfusion: OS install of server {server['id']} in progress", BUILD_DELAY)
        return server, True

    def _seal(self, job: JobContext, name: str, value: str) -> None:
        job.save_secret_checkpoint(name, value)

    def _unseal(self, job: JobContext) -> dict[str, SecretStr]:
        found = {}
        for name in SEALED:
            if value := job.secret_checkpoint(name):
                found[name] = SecretStr(value)
        return found
