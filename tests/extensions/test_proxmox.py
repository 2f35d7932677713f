"""Proxmox VE's own quirks; the shared lifecycle/retry/redaction suite covers the rest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from extensions import get_extension
from extensions.base import JobContext, LocalContext, OperationResult, Service
from extensions.errors import (
    AuthFailed,
    InvalidConfig,
    InvalidPayload,
    NotFound,
    Pending,
    ProviderRejected,
    ProviderUnavailable,
)
from extensions.servers.proxmox import Proxmox
from extensions.servers.proxmox import mapping as m
from extensions.servers.proxmox.config import ProxmoxConfig, ProxmoxProduct
from tests.fakes.proxmox import LXC_PRODUCT, PRODUCT, SECRET, TOKEN_ID, FakeProxmox, size_gib

CREATE = r"POST /api2/json/nodes/pve1/(qemu|lxc)$"
TEMPLATE = {"name": "debian-tpl", "scsi0": "local-lvm:base-9000-disk-0,size=10G", "tags": "template"}


@pytest.fixture
def fake() -> FakeProxmox:
    return FakeProxmox()


def pve(fake: FakeProxmox, secret: str = SECRET) -> Proxmox:
    config = {"host": "https://pve.example.com/", "port": "8006", "username": TOKEN_ID, "password": secret}
    ext = get_extension("servers", "proxmox", config, transport=fake.transport())
    assert isinstance(ext, Proxmox)
    return ext


def service(service_id: int = 11, settings: dict[str, Any] | None = None, **properties: Any) -> Service:
    return Service.model_validate(
        {
            "id": service_id,
            "user": {"id": 1, "email": "alice@example.com"},
            "product": {"id": 9, "name": "VPS", "settings": {**PRODUCT, **(settings or {})}},
            "properties": {"hostname": "web1.example.com", "password": "Chk0ut-secret", **properties},
        }
    )


def drive(call: Callable[[JobContext], OperationResult], job: JobContext | None = None) -> tuple[OperationResult, int]:
    """Re-run an operation while it is Pending, as the runtime does; return its result and the wait count."""
    job = job or LocalContext()
    delays: list[float] = []
    while len(delays) < 50:
        try:
            result = call(job)
        except Pending as pending:
            delays.append(pending.delay)
            continue
        assert all(0 < delay <= 5 for delay in delays), "a short look-again delay"
        return result, len(delays)
    raise AssertionError("still pending after 50 runs")


def created(fake: FakeProxmox, svc: Service, ext: Proxmox | None = None) -> dict[str, Any]:
    drive(lambda job: (ext or pve(fake)).create(svc, job))
    return fake.guest_of(svc.id)


# --- config -----------------------------------------------------------------------------------------


def test_config_builds_the_api_url_from_host_and_port() -> None:
    config = ProxmoxConfig.model_validate({"host": "https://pve.example.com/", "username": TOKEN_ID, "password": "x"})
    assert config.base_url == "https://pve.example.com:8006/api2/json"
    with_port = ProxmoxConfig.model_validate({"host": "https://10.0.0.2:443", "username": TOKEN_ID, "password": "x"})
    assert with_port.base_url == "https://10.0.0.2:443/api2/json"
    assert "x" not in repr(config.password)


@pytest.mark.parametrize(
    "bad",
    [
        {"host": "https://pve.example.com/api2/json"},
        {"host": "ftp://pve.example.com"},
        {"username": "root@pam"},
        {"ca_file": "/nonexistent/ca.pem"},
    ],
)
def test_bad_config_is_invalid_config_without_the_secret(fake: FakeProxmox, bad: dict[str, str]) -> None:
    raw = {"host": "https://pve.example.com", "username": TOKEN_ID, "password": SECRET, **bad}
    with pytest.raises(InvalidConfig) as info:
        Proxmox(Proxmox.parse_config(raw))
    assert SECRET not in info.value.message


def test_product_settings_read_paymenter_strings_and_checkboxes() -> None:
    s = ProxmoxProduct.model_validate(
        {
            **PRODUCT,
            "firewall": "0",
            "storageType": "",
            "model": "",
            "sockets": "",
            "swap": "",
            "ips": "10.0.0.5, 10.0.0.6/26",
        }
    )
    assert (s.cores, s.memory, s.disk) == (2, 2048, 20)
    assert s.firewall is False  # a saved-but-unchecked box is off
    assert (s.storageType, s.model, s.sockets, s.swap) == ("scsi", "virtio", 1, 512)
    assert s.ips == ["10.0.0.5", "10.0.0.6/26"]


@pytest.mark.parametrize(
    "bad",
    [
        {"clone": "1"},
        {"type": "lxc"},
        {"memory": "8"},
        {"ips": "10.0.0.300"},
        {"type": "xen"},
        {"cores": ""},
        {"bridge": "vmbr0,firewall=0"},
        {"node": "../cluster"},
    ],
)
def test_invalid_product_settings_are_invalid_payload(fake: FakeProxmox, bad: dict[str, str]) -> None:
    with pytest.raises(InvalidPayload):
        pve(fake).create(service(settings=bad), LocalContext())
    assert fake.guests == {}


def test_checkout_properties_override_only_whitelisted_settings(fake: FakeProxmox) -> None:
    svc = service(settings={"overridable_settings": "cores"}, cores="4", memory="65536", node="evil", storage="x")
    guest = created(fake, svc)
    assert (guest["config"]["cores"], guest["config"]["memory"]) == ("4", "2048")
    assert guest["config"]["scsi0"].startswith("local-lvm:")


# --- create -----------------------------------------------------------------------------------------


def test_create_awaits_every_task_and_leaves_the_guest_running(fake: FakeProxmox) -> None:
    result, waits = drive(lambda job: pve(fake).create(service(), job))
    guest = fake.guest_of(11)
    assert waits >= 2  # the create task, then the start task
    assert guest["status"] == "running"
    assert fake.running_tasks() == 0
    config = guest["config"]
    assert config["tags"] == "paymenter-svc-11"
    assert config["description"].split() == ["web1.example.com", "paymenter-svc-11"]
    assert config["name"] == "web1.example.com"
    assert config["scsi0"] == f"local-lvm:vm-{guest['vmid']}-disk-0,format=raw,size=20G"
    assert config["net0"] == "virtio,bridge=vmbr0,firewall=1"
    assert (config["onboot"], config["agent"], config["ostype"]) == ("1", "1", "l26")
    assert result.properties == {"vmid": str(guest["vmid"])}
    assert result.data == {"vmid": guest["vmid"], "node": "pve1", "type": "qemu", "status": "running"}
    assert result.secrets == {}  # the checkout password is the customer's own


def test_lost_create_answer_waits_for_the_locked_guest_and_makes_one(fake: FakeProxmox) -> None:
    fake.drop_response_next(CREATE)
    job = LocalContext()
    with pytest.raises(ProviderUnavailable):
        pve(fake).create(service(), job)
    assert fake.guests[int(job.checkpoint("vmid") or 0)]["lock"] == "create"
    with pytest.raises(Pending):  # still being built: no tags yet, so it waits instead of building again
        pve(fake).create(service(), job)
    drive(lambda j: pve(fake).create(service(), j), job)
    assert len(fake.guests) == 1
    assert str(fake.guest_of(11)["vmid"]) == job.checkpoint("vmid")


def test_create_with_the_ledger_lost_adopts_the_tagged_guest(fake: FakeProxmox) -> None:
    first = created(fake, service())
    result, _ = drive(lambda job: pve(fake).create(service(), job))
    assert len(fake.guests) == 1
    assert result.properties["vmid"] == str(first["vmid"])


def test_reserved_id_taken_by_someone_else_gets_a_new_id(fake: FakeProxmox) -> None:
    job = LocalContext()
    job.save_checkpoint("vmid", "100")
    fake.add_guest(100, "qemu", {"name": "not-ours", "description": "hand made"})
    drive(lambda j: pve(fake).create(service(), j), job)
    assert fake.guests[100]["config"]["name"] == "not-ours"
    assert len(fake.guests_for(11)) == 1


def test_id_taken_between_nextid_and_create_retries_with_a_fresh_id(fake: FakeProxmox) -> None:
    route = fake.route
    raced: list[int] = []

    def racing(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/qemu") and not raced:
            raced.append(100)
            fake.add_guest(100, "qemu", {"name": "concurrent"})
        return route(request)

    fake.route = racing  # type: ignore[method-assign]
    guest = created(fake, service())
    assert raced
    assert guest["vmid"] == 101
    assert fake.guests[100]["config"] == {"name": "concurrent"}


def test_failed_create_task_is_a_clear_error_and_the_retry_reuses_the_id(fake: FakeProxmox) -> None:
    fake.fail_task("qmcreate", "storage 'local-lvm' does not exist")
    job = LocalContext()
    with pytest.raises(ProviderRejected) as info:
        drive(lambda j: pve(fake).create(service(), j), job)
    assert "qmcreate" in info.value.message
    assert "storage 'local-lvm' does not exist" in info.value.message
    assert fake.guests == {}
    drive(lambda j: pve(fake).create(service(), j), job)
    assert str(fake.guest_of(11)["vmid"]) == job.checkpoint("vmid")


def test_lock_timeout_in_a_task_is_retryable(fake: FakeProxmox) -> None:
    fake.fail_task("qmcreate", "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout")
    with pytest.raises(ProviderUnavailable):
        drive(lambda j: pve(fake).create(service(), j))


def test_qemu_create_with_iso_cloudinit_and_network_options(fake: FakeProxmox) -> None:
    settings = {
        "os": "iso",
        "iso": "local:iso/debian-12.iso",
        "cloudinit": "1",
        "storageType": "virtio",
        "cache": "writeback",
        "vlantag": "42",
        "network_limit": "12.5",
        "firewall": "0",
        "cputype": "host",
        "vcpu": "2",
        "pool": "customers",
    }
    guest = created(fake, service(settings=settings, hostname="Not a hostname!"))
    config = guest["config"]
    assert config["virtio0"].endswith("format=raw,cache=writeback,size=20G")  # the system disk stays
    assert config["ide3"].endswith("cloudinit,media=cdrom")
    assert config["ide2"] == "local:iso/debian-12.iso,media=cdrom"
    assert config["net0"] == "virtio,bridge=vmbr0,tag=42,rate=12.5"
    assert (config["cpu"], config["vcpus"], guest["pool"]) == ("host", "2", "customers")
    assert config["name"] == "service-11"
    assert guest["password"] == "Chk0ut-secret"


def test_lxc_create_sizes_rootfs_sets_features_and_hands_out_pool_ips(fake: FakeProxmox) -> None:
    lxc = {**LXC_PRODUCT, "ips": "10.0.0.5/26, 10.0.0.6", "gateway": "10.0.0.1", "nesting": "1", "disk": "8"}
    ext = pve(fake)
    first, _ = drive(lambda job: ext.create(service(11, lxc), job))
    second, _ = drive(lambda job: ext.create(service(12, lxc), job))
    config = fake.guest_of(11)["config"]
    assert size_gib(config["rootfs"]) == 8
    assert (config["features"], config["unprivileged"], config["swap"]) == ("nesting=1", "1", "512")
    assert config["net0"] == "name=eth0,bridge=vmbr0,firewall=1,ip=10.0.0.5/26,gw=10.0.0.1"
    assert fake.guest_of(11)["password"] == "Chk0ut-secret"
    assert "password" not in config
    assert (first.properties["ip"], second.properties["ip"]) == ("10.0.0.5", "10.0.0.6")
    assert fake.guest_of(12)["config"]["net0"].endswith("ip=10.0.0.6/24,gw=10.0.0.1")
    with pytest.raises(ProviderRejected, match="no more IPs"):
        ext.create(service(13, lxc), LocalContext())


def test_generated_password_is_returned_sealed_and_kept_only_sealed(fake: FakeProxmox) -> None:
    job = LocalContext()
    svc = service(settings=LXC_PRODUCT, password="")
    result, _ = drive(lambda j: pve(fake).create(svc, j), job)
    generated = result.secrets["password"].get_secret_value()
    assert len(generated) == 20
    assert fake.guest_of(11)["password"] == generated
    assert generated not in str(result.data) + str(result.properties)
    assert job.checkpoint("password") is None
    again, _ = drive(lambda j: pve(fake).create(svc, j), job)  # the ledger lost: adopted, same password
    assert again.secrets["password"].get_secret_value() == generated
    assert len(fake.guests) == 1


def test_clone_sets_tags_and_password_then_grows_the_boot_disk(fake: FakeProxmox) -> None:
    fake.add_guest(
        9000, "qemu", {**TEMPLATE, "boot": "order=scsi0;ide2;net0", "ide2": "none,media=cdrom"}, template=True
    )
    guest = created(fake, service(settings={"clone": "1", "vmId": "9000"}))
    config = guest["config"]
    assert (config["tags"], config["cores"], config["memory"], config["name"]) == (
        "paymenter-svc-11",
        "2",
        "2048",
        "web1.example.com",
    )
    assert size_gib(config["scsi0"]) == 20
    assert guest["password"] == "Chk0ut-secret"
    assert guest["status"] == "running"
    assert fake.guests[9000]["config"]["tags"] == "template"


def test_clone_never_shrinks_a_larger_template_disk_and_reads_legacy_bootdisk(fake: FakeProxmox) -> None:
    big = {"name": "big", "boot": "cdn", "bootdisk": "virtio0", "virtio0": "local-lvm:base-9001-disk-0,size=50G"}
    fake.add_guest(9001, "qemu", big, template=True)
    guest = created(fake, service(settings={"clone": "1", "vmId": "9001"}))
    assert size_gib(guest["config"]["virtio0"]) == 50
    assert fake.count("PUT", r".*/resize") == 0


def test_lxc_clone_gets_no_cipassword_and_a_grown_rootfs(fake: FakeProxmox) -> None:
    fake.add_guest(9002, "lxc", {"hostname": "tpl", "rootfs": "local:subvol-9002-disk-0,size=4G"}, template=True)
    guest = created(fake, service(settings={**LXC_PRODUCT, "clone": "1", "vmId": "9002"}))
    assert "cipassword" not in guest["config"]
    assert guest["config"]["hostname"] == "web1.example.com"
    assert size_gib(guest["config"]["rootfs"]) == 20


# --- power, terminate, upgrade ----------------------------------------------------------------------


def test_suspend_stops_and_clears_onboot_and_repeats_safely_on_lxc(fake: FakeProxmox) -> None:
    svc = service(settings=LXC_PRODUCT)
    created(fake, svc)
    ext = pve(fake)
    for _ in range(2):  # a stopped CT answers stop with 500 "not running"
        drive(lambda job: ext.suspend(svc, job))
        assert fake.guest_of(11)["status"] == "stopped"
        assert fake.guest_of(11)["config"]["onboot"] == "0"
    for _ in range(2):
        drive(lambda job: ext.unsuspend(svc, job))
        assert fake.guest_of(11)["status"] == "running"
        assert fake.guest_of(11)["config"]["onboot"] == "1"


def test_power_answers_for_a_state_that_already_holds_are_success(fake: FakeProxmox) -> None:
    svc = service()
    created(fake, svc)
    route = fake.route

    def stale(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status/current"):
            return httpx.Response(200, json={"data": {"status": "stopped", "lock": None}})
        return route(request)

    fake.route = stale  # type: ignore[method-assign]
    result, _ = drive(lambda job: pve(fake).unsuspend(svc, job))  # QEMU's start task fails "already running"
    assert result.data["suspended"] is False
    assert fake.guest_of(11)["status"] == "running"


def test_terminate_stops_waits_then_deletes(fake: FakeProxmox) -> None:
    svc = service()
    created(fake, svc)
    result, waits = drive(lambda job: pve(fake).terminate(svc, job))
    assert waits >= 2  # the stop task, then the delete task
    assert fake.guests_for(11) == []
    assert result.data["deleted"] is True


def test_terminate_of_a_suspended_lxc_and_of_a_missing_guest_succeeds(fake: FakeProxmox) -> None:
    svc = service(settings=LXC_PRODUCT)
    created(fake, svc)
    drive(lambda job: pve(fake).suspend(svc, job))
    drive(lambda job: pve(fake).terminate(svc, job))
    assert fake.guests == {}
    again, _ = drive(lambda job: pve(fake).terminate(svc, job))
    assert again.data == {"deleted": False, "already_gone": True}


def test_delete_racing_another_delete_counts_as_gone(fake: FakeProxmox) -> None:
    svc = service()
    created(fake, svc)
    drive(lambda job: pve(fake).suspend(svc, job))
    route = fake.route

    def vanished(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            fake.guests.clear()
            return httpx.Response(500, json={"data": None, "message": "Configuration file 'x.conf' does not exist\n"})
        return route(request)

    fake.route = vanished  # type: ignore[method-assign]
    result, _ = drive(lambda job: pve(fake).terminate(svc, job))
    assert result.data["deleted"] is True


def test_a_stored_vmid_never_reaches_another_services_guest(fake: FakeProxmox) -> None:
    other = created(fake, service(99))
    svc = service(11, vmid=str(other["vmid"]))
    result, _ = drive(lambda job: pve(fake).terminate(svc, job))
    assert result.data["already_gone"] is True
    assert fake.guest_of(99)["status"] == "running"
    with pytest.raises(NotFound):
        pve(fake).suspend(svc, LocalContext())


def test_untagged_guest_from_before_is_found_by_its_stored_vmid(fake: FakeProxmox) -> None:
    fake.add_guest(150, "qemu", {"name": "legacy", "scsi0": "local-lvm:vm-150-disk-0,size=10G"}, status="running")
    drive(lambda job: pve(fake).suspend(service(vmid="150"), job))
    assert fake.guests[150]["status"] == "stopped"


def test_upgrade_applies_sizing_and_only_grows_the_disk(fake: FakeProxmox) -> None:
    created(fake, service())
    _, waits = drive(lambda job: pve(fake).upgrade(service(settings={"cores": "4", "disk": "30"}), job))
    config = fake.guest_of(11)["config"]
    assert (config["cores"], size_gib(config["scsi0"]), waits) == ("4", 30, 1)
    drive(lambda job: pve(fake).upgrade(service(settings={"memory": "1024", "disk": "10"}), job))
    assert (config["memory"], size_gib(config["scsi0"])) == ("1024", 30)
    assert fake.count("PUT", r".*/resize") == 1


def test_lxc_upgrade_sets_swap_and_grows_rootfs(fake: FakeProxmox) -> None:
    created(fake, service(settings=LXC_PRODUCT))
    drive(lambda job: pve(fake).upgrade(service(settings={**LXC_PRODUCT, "swap": "1024", "disk": "40"}), job))
    config = fake.guest_of(11)["config"]
    assert (config["swap"], size_gib(config["rootfs"])) == ("1024", 40)


def test_operations_on_a_missing_guest_are_not_found(fake: FakeProxmox) -> None:
    for operation in (pve(fake).suspend, pve(fake).unsuspend, pve(fake).upgrade):
        with pytest.raises(NotFound):
            operation(service(), LocalContext())
    assert "login_url" not in Proxmox.operations


# --- errors and transport ---------------------------------------------------------------------------


def test_token_header_and_bad_secret(fake: FakeProxmox) -> None:
    assert pve(fake).test_config().data == {"ok": True, "nodes": ["pve1"]}
    wrong = "00000000-dead-beef-0000-000000000000"
    with pytest.raises(AuthFailed) as info:
        pve(fake, wrong).test_config()
    assert wrong not in str(info.value.to_dict())


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, {"data": None, "message": "VM is locked (backup)\n"}, ProviderUnavailable),
        (500, {"data": None, "message": "storage 'x' does not exist\n"}, ProviderRejected),
        (500, "<html>proxy error</html>", ProviderUnavailable),
        (596, {"data": None, "message": "Connection timed out\n"}, ProviderUnavailable),
        (403, {"data": None, "message": "Permission check failed (/vms/100, VM.PowerMgmt)\n"}, AuthFailed),
    ],
)
def test_pve_errors_are_classified_by_their_reason(
    fake: FakeProxmox, status: int, body: Any, error: type[Exception]
) -> None:
    created(fake, service())
    route = fake.route

    def failing(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            kwargs = {"json": body} if isinstance(body, dict) else {"text": body}
            return httpx.Response(status, **kwargs)
        return route(request)

    fake.route = failing  # type: ignore[method-assign]
    with pytest.raises(error):
        pve(fake).suspend(service(), LocalContext())


def test_parameter_errors_name_the_parameter_and_never_the_token_or_query(fake: FakeProxmox) -> None:
    created(fake, service())
    route = fake.route

    def echoing(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            detail = f"{request.headers['Authorization']} {request.url}"
            return httpx.Response(400, json={"data": None, "message": "bad\n", "errors": {"purge": detail}})
        return route(request)

    fake.route = echoing  # type: ignore[method-assign]
    with pytest.raises(ProviderRejected) as info:
        drive(lambda job: pve(fake).terminate(service(), job))
    message = info.value.message
    assert "purge: " in message
    assert SECRET not in message
    assert "DELETE /nodes/pve1/qemu/" in message


# --- pure mapping -----------------------------------------------------------------------------------


def test_main_disk_skips_cdroms_and_cloudinit_in_the_boot_order() -> None:
    config = {
        "boot": "order=ide2;ide3;sata0;net0",
        "ide2": "local:iso/x.iso,media=cdrom",
        "ide3": "local-lvm:vm-1-cloudinit,media=cdrom",
        "sata0": "local-lvm:vm-1-disk-0,size=512M",
    }
    assert m.main_disk("qemu", config) == ("sata0", 0.5)
    assert m.main_disk("lxc", {"rootfs": "local:subvol-1-disk-0,size=1T"}) == ("rootfs", 1024.0)
    with pytest.raises(ProviderRejected):
        m.main_disk("qemu", {"ide2": "none,media=cdrom"})


def test_marker_hostname_and_task_helpers() -> None:
    assert m.marker("Svc 7") == "paymenter-svc-svc-7"
    assert m.owns({"description": "x\npaymenter-svc-7"}, "paymenter-svc-7")
    assert not m.owns({"tags": "paymenter-svc-70"}, "paymenter-svc-7")
    assert m.hostname("Web-1.Example.COM.", 7) == "web-1.example.com"
    assert m.hostname("-bad-", 7) == "service-7"
    upid = "UPID:pve2:0000A1B2:0000ABCD:65000000:qmstart:101:root@pam!paymenter:"
    assert m.task_status(upid).path.startswith("/nodes/pve2/tasks/UPID%3Apve2%3A")
    assert m.task_kind(upid) == "qmstart 101"
    assert m.task_ok("WARNINGS: 2")
    assert not m.task_ok("VM 101 already running")
