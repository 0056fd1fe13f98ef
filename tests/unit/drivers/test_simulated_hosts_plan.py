"""The plans of the simulated hosts: image, network, containers, steps, known_hosts.

Nothing here talks to an engine: every test inspects a frozen value.
"""

from __future__ import annotations

import doctest
import shlex
from pathlib import Path
from typing import Any

import pytest

import unkai.drivers.simulated_hosts as sim
from unkai.drivers.images import RootfsFile, RootfsSpec, rootfs_argv
from unkai.environments import load_environment
from unkai.errors import ConfigError, DriverError
from unkai.model import Environment

ROOT = Path(__file__).resolve().parents[3]
PROJECT = "/work/project"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOPERATOR unkai-operator"
CACHE = Path("/cache")


def _env(addresses: dict[str, str], **host: Any) -> Environment:
    return Environment.model_validate(
        {
            "name": "sim",
            "zones": {"z1": {}, "z2": {}},
            "host_pools": {"p1": {"zone": "z1"}, "p2": {"zone": "z2"}},
            "hosts": {
                name: {
                    "address": address,
                    "ssh_user": "root",
                    "cpus": 2,
                    "memory_mb": 4096,
                    "disk_gb": 20,
                    "cpu_vendor": "amd",
                    "pool": "p1" if i % 2 == 0 else "p2",
                    "zone": "z1" if i % 2 == 0 else "z2",
                    **host,
                }
                for i, (name, address) in enumerate(sorted(addresses.items()))
            },
        }
    )


TWO = {"h1": "10.239.7.11", "h2": "10.239.7.12"}


def _plan(env: Environment | None = None, *, kvm: bool = False, key: str = KEY) -> sim.FleetPlan:
    return sim.plan_fleet(
        env or _env(TWO),
        project=PROJECT,
        image=sim.plan_host_image(cache_root=CACHE),
        authorized_keys=[key],
        kvm=kvm,
    )


def test_doctests():
    assert doctest.testmod(sim).failed == 0


# --- the host image -----------------------------------------------------------------------


def test_the_host_image_has_what_a_hypervisor_ansible_and_libvirt_ssh_need():
    packages = set(sim.host_image_spec().packages)
    assert {
        "libvirt-daemon-system",
        "qemu-system-x86",
        "qemu-utils",
        "openssh-server",
        "tini",
        "dnsmasq-base",
        "iptables",
        "python3",
        "python3-apt",
        "netcat-openbsd",
    } <= packages


def test_the_entrypoint_starts_the_daemons_under_tini_and_writes_the_identity():
    plan = sim.plan_host_image(cache_root=CACHE)
    script = next(f for f in plan.spec.files if f.path == sim.ENTRYPOINT.lstrip("/"))
    assert script.mode == 0o755
    for line in ("/usr/sbin/sshd", "virtlogd --daemon", "libvirtd --daemon"):
        assert line in script.content
    assert "host_uuid" in script.content and "UNKAI_HOST_UUID" in script.content
    assert "authorized_keys" in script.content
    # The host key is made only when missing: restarts keep it.
    assert "[ -s /etc/ssh/ssh_host_ed25519_key ] ||" in script.content
    entrypoint = next(c for c in plan.import_plan.changes if c.startswith("ENTRYPOINT"))
    assert entrypoint == f'ENTRYPOINT ["/usr/bin/tini", "-s", "--", "{sim.ENTRYPOINT}"]'


def test_the_host_tree_disables_libvirt_cgroups_and_its_default_network_and_has_no_host_keys():
    argv = rootfs_argv(sim.host_image_spec(), Path("/out.tar"))
    hooks = [argv[i + 1] for i, a in enumerate(argv) if a == "--customize-hook"]
    assert any("cgroup_controllers = [ ]" in h and "qemu.conf" in h for h in hooks)
    assert any("networks/autostart/default.xml" in h for h in hooks)
    assert hooks[-1] == 'rm -f "$1"/etc/ssh/ssh_host_*'
    assert argv[:4] == ["mmdebstrap", "--variant=minbase", "--mode=root", "--format=tar"]


def test_the_image_is_tagged_by_the_digest_of_its_tree_which_covers_files_and_hooks():
    plan = sim.plan_host_image(cache_root=CACHE)
    digest = plan.spec.digest()
    assert plan.reference == f"unkai/kvm-host:bookworm-{digest[:12]}"
    assert plan.import_plan.rootfs == CACHE / "rootfs" / digest / "rootfs.tar"
    assert f'LABEL dev.unkai.rootfs-digest="{digest}"' in plan.import_plan.changes
    bench = sim.plan_host_image(cache_root=CACHE, ref="bench/kvm-host:bookworm")
    assert bench.reference == f"bench/kvm-host:bookworm-{digest[:12]}"
    assert bench.ref == "bench/kvm-host:bookworm" and plan.ref == sim.HOST_IMAGE_REF
    other = RootfsSpec(
        name=plan.spec.name,
        packages=plan.spec.packages,
        files=(*plan.spec.files, RootfsFile("etc/extra", "x")),
        hooks=plan.spec.hooks,
    )
    assert other.digest() != digest
    assert (
        RootfsSpec(name="a", packages=("x", "y")).digest()
        == RootfsSpec(name="a", packages=("y", "x", "x")).digest()
    )


def test_a_rootfs_file_hook_writes_content_and_mode_quoted():
    hook = RootfsFile("usr/local/bin/it's", "echo 'hi'\n", 0o750).hook()
    assert hook.startswith("mkdir -p \"$1\"/'usr/local/bin' && printf %s ")
    assert hook.endswith("&& chmod 0750 \"$1\"/'usr/local/bin/it'\"'\"'s'")
    with pytest.raises(ConfigError, match="relative path"):
        RootfsFile("/etc/passwd", "")
    with pytest.raises(ConfigError, match="relative path"):
        RootfsFile("etc/../../x", "")


# --- the network ---------------------------------------------------------------------------


def test_the_network_is_the_smallest_subnet_of_the_addresses_with_this_machine_as_gateway():
    net = sim.plan_network(_env(TWO), project=PROJECT)
    assert (net.name, net.subnet, net.gateway) == ("unkai-sim", "10.239.7.0/24", "10.239.7.1")
    assert net.labels == {sim.PROJECT_LABEL: PROJECT, sim.ENVIRONMENT_LABEL: "sim"}
    wide = sim.plan_network(_env({"h1": "10.239.6.11", "h2": "10.239.7.11"}), project=PROJECT)
    assert wide.subnet == "10.239.6.0/23"


@pytest.mark.parametrize(
    ("addresses", "message"),
    [
        ({"h1": "10.239.7.1"}, "network, gateway or broadcast"),
        ({"h1": "10.239.7.255"}, "network, gateway or broadcast"),
        ({"h1": "10.1.0.11", "h2": "10.200.0.11"}, "one private subnet"),
        ({"h1": "8.8.8.8"}, "one private subnet"),
        ({"h1": "kvm.example.org"}, "IPv4 address"),
        ({"h1": "fd00::11"}, "IPv4 address"),
        ({"h1": "10.239.7.11", "h2": "10.239.7.11"}, "same address"),
    ],
)
def test_addresses_that_cannot_be_simulated_are_config_errors(addresses, message):
    with pytest.raises(ConfigError, match=message) as info:
        sim.plan_network(_env(addresses), project=PROJECT, file="environments/sim.yaml")
    assert str(info.value).startswith("environments/sim.yaml:hosts")


def test_only_ssh_hosts_with_root_can_be_simulated():
    with pytest.raises(ConfigError, match=r"hosts\.h1\.ssh_user.*allowed: root"):
        _plan(_env(TWO, ssh_user="ops"))
    local = _env({"h1": "127.0.0.1"}, connection="local")
    with pytest.raises(ConfigError, match=r"hosts\.h1\.connection.*allowed: ssh"):
        _plan(local)
    with pytest.raises(ConfigError, match="no hosts"):
        sim.plan_network(Environment(name="empty"), project=PROJECT)


# --- the hosts -----------------------------------------------------------------------------


def test_each_host_is_a_container_with_its_name_address_volume_and_ownership_labels():
    plan = _plan()
    h1 = plan.host("h1")
    assert h1.container == "unkai-sim-h1"
    assert (h1.hostname, h1.address, h1.network) == ("h1", "10.239.7.11", "unkai-sim")
    assert h1.volume == "unkai-sim-h1-libvirt"
    assert h1.image == plan.image.reference
    assert {
        k: h1.labels[k] for k in (sim.PROJECT_LABEL, sim.ENVIRONMENT_LABEL, sim.HOST_LABEL)
    } == {
        sim.PROJECT_LABEL: PROJECT,
        sim.ENVIRONMENT_LABEL: "sim",
        sim.HOST_LABEL: "h1",
    }
    assert sim.SPEC_LABEL not in h1.volume_labels()
    assert h1.volume_labels()[sim.HOST_LABEL] == "h1"


def test_a_host_gets_a_hypervisors_capabilities_and_nothing_published():
    args = _plan().host("h1").host_config_arguments()
    assert args["cap_add"] == ["ALL"] and args["cap_drop"] == ["SYS_RESOURCE"]
    assert sorted(args["security_opt"]) == ["apparmor=unconfined", "seccomp=unconfined"]
    assert args["devices"] == ["/dev/net/tun:/dev/net/tun:rwm"]
    assert args["network_mode"] == "unkai-sim"
    assert "privileged" not in args and "port_bindings" not in args
    assert dict(sim.SYSTEM_PATHS) == {"MaskedPaths": (), "ReadonlyPaths": ()}
    kvm = _plan(kvm=True).host("h1").host_config_arguments()
    assert kvm["devices"] == ["/dev/net/tun:/dev/net/tun:rwm", "/dev/kvm:/dev/kvm:rwm"]


def test_host_uuids_are_stable_and_distinct_and_the_operator_key_is_authorized():
    plan, again = _plan(), _plan()
    uuids = {h.host_uuid for h in plan.hosts}
    assert len(uuids) == 2
    assert [h.host_uuid for h in plan.hosts] == [h.host_uuid for h in again.hosts]
    for host in plan.hosts:
        assert host.environment == {"UNKAI_AUTHORIZED_KEYS": KEY, "UNKAI_HOST_UUID": host.host_uuid}
    other_project = sim.host_uuid(project="/elsewhere", environment="sim", host="h1")
    assert other_project != plan.host("h1").host_uuid
    with pytest.raises(ConfigError, match="no public key"):
        _plan(key="  ")


def test_the_spec_digest_changes_with_what_the_container_is_made_of():
    base = _plan().host("h1").spec_digest
    assert _plan().host("h1").spec_digest == base
    assert _plan(kvm=True).host("h1").spec_digest != base
    assert _plan(key="ssh-ed25519 OTHER").host("h1").spec_digest != base
    moved = _env({"h1": "10.239.7.21", "h2": "10.239.7.12"})
    assert _plan(moved).host("h1").spec_digest != base


def test_the_fleet_environment_plans_four_hosts_in_two_zones():
    env = load_environment("fleet", root=ROOT)
    plan = _plan(env)
    assert plan.network.subnet == "10.231.0.0/24"
    assert [(h.host, h.address, h.zone) for h in plan.hosts] == [
        ("kvm-a1", "10.231.0.11", "fleet-a"),
        ("kvm-a2", "10.231.0.12", "fleet-a"),
        ("kvm-b1", "10.231.0.13", "fleet-b"),
        ("kvm-b2", "10.231.0.14", "fleet-b"),
    ]
    assert {h.libvirt_uri for h in env.hosts.values()} == {
        f"qemu+ssh://root@10.231.0.{n}/system" for n in (11, 12, 13, 14)
    }


# --- steps ---------------------------------------------------------------------------------


def _running(plan: sim.FleetPlan, **changes: Any) -> sim.Observed:
    containers = {
        h.container: sim.ObservedContainer(h.container, "running", dict(h.labels))
        for h in plan.hosts
    }
    volumes = {h.volume: h.volume_labels() for h in plan.hosts}
    net = sim.ObservedNetwork(plan.network.name, plan.network.subnet, dict(plan.network.labels))
    return sim.Observed(
        containers=changes.get("containers", containers),
        volumes=changes.get("volumes", volumes),
        network=changes.get("network", net),
    )


def _steps(plan: sim.FleetPlan, observed: sim.Observed) -> list[tuple[str, str]]:
    return [(s.action, s.target) for s in sim.diff_fleet(plan, observed)]


def test_nothing_exists_so_network_volumes_and_containers_are_created():
    plan = _plan()
    assert _steps(plan, sim.Observed()) == [
        ("create-network", "unkai-sim"),
        ("create-volume", "unkai-sim-h1-libvirt"),
        ("create-container", "unkai-sim-h1"),
        ("create-volume", "unkai-sim-h2-libvirt"),
        ("create-container", "unkai-sim-h2"),
    ]


def test_everything_running_as_planned_needs_no_step():
    plan = _plan()
    assert sim.diff_fleet(plan, _running(plan)) == ()


def test_a_stopped_host_is_started_and_a_changed_one_recreated_keeping_its_volume():
    plan = _plan()
    observed = _running(plan)
    containers = dict(observed.containers)
    containers["unkai-sim-h1"] = sim.ObservedContainer(
        "unkai-sim-h1", "exited", dict(plan.host("h1").labels)
    )
    changed = {**plan.host("h2").labels, sim.SPEC_LABEL: "old"}
    containers["unkai-sim-h2"] = sim.ObservedContainer("unkai-sim-h2", "running", changed)
    steps = sim.diff_fleet(plan, _running(plan, containers=containers))
    assert [(s.action, s.target) for s in steps] == [
        ("remove-container", "unkai-sim-h2"),
        ("create-container", "unkai-sim-h2"),
        ("start-container", "unkai-sim-h1"),
    ]
    assert str(steps[0]) == "remove container unkai-sim-h2: its configuration changed"
    assert not any(s.action == "remove-volume" for s in steps)


def test_a_host_no_longer_in_the_environment_goes_with_its_volume():
    plan = _plan()
    observed = _running(plan)
    labels = {**plan.host("h1").labels, sim.HOST_LABEL: "h9"}
    containers = {
        **observed.containers,
        "unkai-sim-h9": sim.ObservedContainer("unkai-sim-h9", "running", labels),
    }
    volumes = {**observed.volumes, "unkai-sim-h9-libvirt": plan.host("h1").volume_labels()}
    steps = sim.diff_fleet(plan, _running(plan, containers=containers, volumes=volumes))
    assert [(s.action, s.target) for s in steps] == [
        ("remove-container", "unkai-sim-h9"),
        ("remove-volume", "unkai-sim-h9-libvirt"),
    ]
    assert steps[0].reason == "host h9 is no longer in sim"


def test_a_network_of_another_subnet_is_remade_with_every_container():
    plan = _plan()
    old = sim.ObservedNetwork("unkai-sim", "10.239.9.0/24", dict(plan.network.labels))
    assert _steps(plan, _running(plan, network=old)) == [
        ("remove-container", "unkai-sim-h1"),
        ("remove-container", "unkai-sim-h2"),
        ("remove-network", "unkai-sim"),
        ("create-network", "unkai-sim"),
        ("create-container", "unkai-sim-h1"),
        ("create-container", "unkai-sim-h2"),
    ]


@pytest.mark.parametrize(
    "labels",
    [{}, {sim.PROJECT_LABEL: "/other", sim.ENVIRONMENT_LABEL: "sim"}],
    ids=["not-unkai", "other-project"],
)
def test_objects_of_a_planned_name_owned_by_someone_else_are_never_touched(labels):
    plan = _plan()
    foreign = {"unkai-sim-h1": sim.ObservedContainer("unkai-sim-h1", "running", labels)}
    with pytest.raises(DriverError, match=r"container unkai-sim-h1 .*does not touch it"):
        sim.diff_fleet(plan, _running(plan, containers=foreign))
    net = sim.ObservedNetwork("unkai-sim", "10.239.7.0/24", labels)
    with pytest.raises(DriverError, match="network unkai-sim"):
        sim.diff_fleet(plan, _running(plan, network=net))
    with pytest.raises(DriverError, match="volume unkai-sim-h2-libvirt"):
        sim.diff_fleet(plan, sim.Observed(volumes={"unkai-sim-h2-libvirt": labels}))


# --- known_hosts and the probe -----------------------------------------------------------


def test_known_hosts_lines_of_an_address_are_replaced_and_others_kept():
    text = (
        "# mine\n"
        "10.239.7.11 ssh-ed25519 OLD\n"
        "[10.239.7.11]:22 ssh-rsa OLDER\n"
        "db,10.239.7.11 ecdsa-sha2-nistp256 OLDEST\n"
        "10.239.7.111 ssh-ed25519 NEIGHBOUR\n"
        "|1|hashed= ssh-ed25519 HASHED\n"
    )
    merged = sim.merge_known_hosts(text, {"10.239.7.11": "ssh-ed25519 NEW root@h1"})
    assert merged == (
        "# mine\n"
        "10.239.7.111 ssh-ed25519 NEIGHBOUR\n"
        "|1|hashed= ssh-ed25519 HASHED\n"
        "10.239.7.11 ssh-ed25519 NEW\n"
    )
    assert sim.merge_known_hosts(merged, {"10.239.7.11": "ssh-ed25519 NEW"}) == merged
    assert sim.merge_known_hosts("", {"b": "k B", "a": "k A"}) == "a k A\nb k B\n"
    assert sim.drop_known_hosts(merged, ["10.239.7.11"]) == (
        "# mine\n10.239.7.111 ssh-ed25519 NEIGHBOUR\n|1|hashed= ssh-ed25519 HASHED\n"
    )


def test_the_probe_checks_the_host_key_and_asks_libvirt():
    argv = sim.probe_argv(
        user="root",
        address="10.239.7.11",
        identity=Path("/p/.unkai/ssh/id_ed25519"),
        known_hosts=Path("/p/.unkai/ssh/known_hosts"),
    )
    text = shlex.join(argv)
    assert argv[:3] == ["ssh", "-F", "none"]
    for option in (
        "StrictHostKeyChecking=yes",
        "UserKnownHostsFile=/p/.unkai/ssh/known_hosts",
        "GlobalKnownHostsFile=/dev/null",
        "IdentitiesOnly=yes",
        "BatchMode=yes",
    ):
        assert f"-o {option}" in text
    assert "-i /p/.unkai/ssh/id_ed25519" in text
    assert text.endswith("root@10.239.7.11 virsh -c qemu:///system version")
