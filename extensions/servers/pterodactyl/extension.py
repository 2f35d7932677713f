"""Pterodactyl: one panel server per service, linked by ``external_id = str(service.id)``.

What checkout ``properties`` may change:

- every egg variable, by its ``env_variable`` (``SERVER_JARFILE``, ``MC_VERSION``...), feeds the server
  environment;
- ``servername`` names the server (default ``"<product name> #<service id>"``);
- product settings (``memory``, ``cpu``, ``egg_id``, ``node``, ``location``, ``docker_image``,
  ``startup``...) are overridden only for keys the product lists in ``overridable_settings``; anything
  else a customer sends at checkout is ignored.

Create looks the server up by external id first and adopts it when it exists, so a retry after a lost
answer never makes a second server; terminate of a server that is already gone succeeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extensions.base import (
    SERVER_OPERATIONS,
    JobContext,
    OperationResult,
    ServerExtension,
    Service,
)
from extensions.errors import NotFound, ProviderRejected
from extensions.http import HttpApi
from extensions.servers.pterodactyl import mapping as m
from extensions.servers.pterodactyl.config import PterodactylConfig, PterodactylProduct

RETRYABLE = frozenset({409, 429, 500, 502, 503, 504})  # 409: the server is being transferred
MAX_PAGES = 200
USERNAME_TRIES = 3


class Pterodactyl(ServerExtension[PterodactylConfig]):
    slug = "pterodactyl"
    display_name = "Pterodactyl"
    description = "Game servers on a Pterodactyl panel through its Application API"
    Config = PterodactylConfig
    ProductSettings = PterodactylProduct
    operations = frozenset(SERVER_OPERATIONS)
    resource_properties = ("pterodactyl_server_id",)

    def setup(self) -> None:
        self.host = self.config.host
        self.api = HttpApi(
            self.host,
            provider="pterodactyl",
            headers={
                "Authorization": f"Bearer {self.config.api_key.get_secret_value()}",
                "Accept": "application/json",
            },
            redactor=self.redactor,
            transport=self.transport,
            retryable_statuses=RETRYABLE,
        )

    # --- operations ---------------------------------------------------------------------------------

    def test_config(self, service: Service | None = None, job: JobContext | None = None) -> OperationResult:
        self.api.send(m.list_servers())
        return OperationResult(data={"ok": True})

    def create(self, service: Service, job: JobContext) -> OperationResult:
        existing = self._lookup(service)
        if existing is not None:
            return self._created(existing, adopted=True)
        settings = self._settings(service)
        egg = self._egg(settings)
        user = self._user(service, job)
        deployment = self._deployment(settings, egg)
        name = str(service.properties.get("servername") or "").strip() or f"{service.product.name} #{service.id}"
        body = m.server_body(
            external_id=str(service.id),
            name=name,
            user=user,
            settings=settings,
            egg=egg,
            environment=m.egg_environment(egg, service.properties),
            deployment=deployment,
        )
        response = self.api.send(m.create_server(body), allow={422})
        if response.status == 422:
            if "external_id" in m.error_fields(response.body):
                raced = self._lookup(service)
                if raced is not None:
                    return self._created(raced, adopted=True)
            raise self.api.classify(response, "POST /api/application/servers")
        return self._created(m.server_attributes(response.body), adopted=False)

    def suspend(self, service: Service, job: JobContext) -> OperationResult:
        server = self._require(service)
        self.api.send(m.server_action(server["id"], "suspend"))
        return OperationResult(data={"server": server["id"], "suspended": True})

    def unsuspend(self, service: Service, job: JobContext) -> OperationResult:
        server = self._require(service)
        self.api.send(m.server_action(server["id"], "unsuspend"))
        return OperationResult(data={"server": server["id"], "suspended": False})

    def terminate(self, service: Service, job: JobContext) -> OperationResult:
        server = self._lookup(service)
        if server is None:
            return OperationResult(data={"deleted": False, "already_gone": True})
        response = self.api.send(m.delete_server(server["id"]), allow={404})
        gone = response.status == 404
        return OperationResult(data={"server": server["id"], "deleted": not gone, "already_gone": gone})

    def upgrade(self, service: Service, job: JobContext) -> OperationResult:
        server = self._require(service)
        settings = self._settings(service)
        egg = self._egg(settings)
        self.api.send(m.patch_build(server["id"], m.build_body(settings, server)))
        self.api.send(m.patch_startup(server["id"], m.startup_body(settings, egg, server, service.properties)))
        return OperationResult(data={"server": server["id"], "identifier": server["identifier"], "egg": egg.id})

    def login_url(self, service: Service, job: JobContext) -> OperationResult:
        return OperationResult(data={"url": self._link(self._require(service))})

    # --- steps --------------------------------------------------------------------------------------

    def _settings(self, service: Service) -> PterodactylProduct:
        settings = self.product_settings(service)
        assert isinstance(settings, PterodactylProduct)
        return settings

    def _lookup(self, service: Service) -> dict[str, Any] | None:
        """The service's server, or None on the panel's own 404; any other failure propagates."""
        response = self.api.send(m.lookup_server(str(service.id)), allow={404})
        if response.status == 404:
            if m.is_api_error(response.body):
                return None
            raise self.api.classify(response, "GET /api/application/servers/external")
        return m.server_attributes(response.body)

    def _require(self, service: Service) -> dict[str, Any]:
        server = self._lookup(service)
        if server is None:
            raise NotFound(f"pterodactyl: no server has external id {service.id}", 404)
        return server

    def _created(self, server: Mapping[str, Any], *, adopted: bool) -> OperationResult:
        data = {
            "server": server["id"],
            "identifier": server["identifier"],
            "link": self._link(server),
            "status": server.get("status"),
            "adopted": adopted,
        }
        return OperationResult(data=data, properties={"pterodactyl_server_id": str(server["id"])})

    def _link(self, server: Mapping[str, Any]) -> str:
        return f"{self.host}/server/{server['identifier']}"

    def _egg(self, settings: PterodactylProduct) -> m.Egg:
        return m.parse_egg(self.api.send(m.get_egg(settings.nest_id, settings.egg_id)).body)

    def _find_user(self, email: str) -> int | None:
        for page in range(1, MAX_PAGES + 1):
            found, more = m.find_user(self.api.send(m.search_users(email, page)).body, email)
            if found is not None or not more:
                return found
        return None

    def _user(self, service: Service, job: JobContext) -> int:
        """The panel user with the customer's e-mail (exact match), created when there is none."""
        email = service.user.email
        found = self._find_user(email)
        if found is not None:
            return found
        first, last = m.customer_names(service.user)
        username = job.checkpoint("username") or m.make_username(service.user.display_name, m.random_suffix())
        for _ in range(USERNAME_TRIES):
            job.save_checkpoint("username", username)
            response = self.api.send(m.create_user(email, username, first, last), allow={422})
            if response.ok:
                return m.user_id(response.body)
            taken = m.error_fields(response.body)
            if "email" in taken and (found := self._find_user(email)) is not None:
                return found
            if taken != {"username"}:
                raise self.api.classify(response, "POST /api/application/users")
            username = m.make_username(service.user.display_name, m.random_suffix())
        raise ProviderRejected("pterodactyl: could not find a free panel username")

    def _deployment(self, settings: PterodactylProduct, egg: m.Egg) -> m.Deployment:
        if not settings.port_array and settings.node is None:
            return m.auto_deploy(settings)
        locations = m.deploy_locations(settings)
        nodes: list[m.Node] = []
        for page in range(1, MAX_PAGES + 1):
            request = m.deployable_nodes(settings.memory, settings.disk, locations, page)
            found, more = m.parse_nodes(self.api.send(request).body)
            nodes += found
            if not more:
                break
        return m.plan_deployment(settings, egg, nodes)
