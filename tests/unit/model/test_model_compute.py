from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from unkai.model import (
    BOOT_DISK_NAME,
    Disk,
    Instance,
    InstanceGroup,
    InstanceTemplate,
    SecretRef,
    UpdatePolicy,
    expand_group,
    machine_type,
)


def instance(**fields: Any) -> Instance:
    return Instance.model_validate(
        {"name": "db", "machine_type": "e2-small", "image": "debian-12", **fields}
    )


def test_boot_disk_is_derived_from_the_image() -> None:
    inst = instance()
    assert inst.disks == (Disk(name=BOOT_DISK_NAME, backing_image="debian-12", boot=True),)
    assert inst.disks[0].size_gb is None  # resolved against the image by the environment


def test_derived_boot_disk_goes_before_data_disks() -> None:
    inst = instance(disks=[{"name": "data", "size_gb": 50, "bus": "scsi"}])
    assert [d.name for d in inst.disks] == ["boot", "data"]


def test_explicit_boot_disk_is_kept() -> None:
    inst = instance(disks=[{"name": "root", "size_gb": 30, "backing_image": "other", "boot": True}])
    assert inst.disks == (Disk(name="root", size_gb=30, backing_image="other", boot=True),)


@pytest.mark.parametrize(
    ("disks", "fragment"),
    [
        (
            [{"name": "a", "size_gb": 1, "boot": True}, {"name": "b", "size_gb": 1, "boot": True}],
            "only one boot disk is allowed",
        ),
        (
            [{"name": "a", "size_gb": 1}, {"name": "b", "size_gb": 1, "boot": True}],
            "the boot disk 'b' must come first",
        ),
        ([{"name": "boot", "size_gb": 1}], "disk names must be unique"),
        ([{"name": "data"}], "size_gb is required for a disk without backing_image"),
        ([{"name": "data", "size_gb": 1, "bus": "ide"}], "'virtio', 'sata' or 'scsi'"),
    ],
)
def test_bad_disks(disks: list[dict[str, Any]], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        instance(disks=disks)
    assert fragment in str(info.value)


def test_hostname_defaults_to_name() -> None:
    assert instance().hostname == "db"
    assert instance(hostname="db-primary").hostname == "db-primary"
    assert Instance.model_validate(instance().model_dump(mode="json")) == instance()


def test_machine_type_is_checked_against_the_catalogue() -> None:
    assert instance().machine == machine_type("e2-small")
    with pytest.raises(ValidationError) as info:
        instance(machine_type="e2-mega")
    (error,) = info.value.errors()
    assert error["loc"] == ("machine_type",)
    assert "unknown machine type (got 'e2-mega'); allowed: one of e2-medium" in error["msg"]


def test_networks_are_ordered_and_unique() -> None:
    assert instance(networks=["b", "a"]).networks == ("b", "a")
    with pytest.raises(ValidationError, match="a network may be attached once"):
        instance(networks=["a", "a"])


def test_ssh_keys(ssh_key: str) -> None:
    assert instance(ssh_keys=[ssh_key + "\n"]).ssh_keys == (ssh_key,)


def _key(kind: str, blob_kind: str) -> str:
    blob = len(blob_kind).to_bytes(4, "big") + blob_kind.encode() + b"\x00" * 36
    return f"{kind} {base64.b64encode(blob).decode()}"


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "is not an OpenSSH public key"),
        ("ssh-ed25519", "is not an OpenSSH public key"),
        ("ssh-ed25519 !!!!", "is not an OpenSSH public key"),
        ("ssh-ed25519 AAAA=A", "is not an OpenSSH public key"),
        ("ssh-ed25519 AAAAC", "is not valid base64"),
        (_key("ssh-ed25519", "ssh-rsa"), "does not match its type 'ssh-ed25519'"),
    ],
)
def test_bad_ssh_keys(key: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        instance(ssh_keys=[key])
    assert fragment in str(info.value)
    assert "allowed" in str(info.value) or "base64" in fragment or "match" in fragment


def test_private_key_is_refused_without_being_echoed_in_the_message() -> None:
    secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
    with pytest.raises(ValidationError) as info:
        instance(ssh_keys=[secret])
    (error,) = info.value.errors()
    assert error["msg"] == "Value error, an SSH private key was given where a public key belongs"


def test_secrets_are_references_and_accept_a_string_shorthand() -> None:
    inst = instance(secrets={"Z_TOKEN": "api-token", "A_PASS": {"name": "app:dbPassword"}})
    assert inst.secrets == {
        "A_PASS": SecretRef(name="app:dbPassword"),
        "Z_TOKEN": SecretRef(name="api-token"),
    }
    assert list(inst.secrets) == ["A_PASS", "Z_TOKEN"]
    with pytest.raises(ValidationError, match="is not an environment variable name"):
        instance(secrets={"1X": "a"})
    with pytest.raises(ValidationError, match="is not a Pulumi config key"):
        instance(secrets={"X": "has space"})


def test_template_has_no_identity_fields() -> None:
    fields = set(InstanceTemplate.model_fields)
    assert set(Instance.model_fields) - fields == {"hostname", "host", "group"}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        InstanceTemplate.model_validate(
            {"name": "web", "machine_type": "e2-small", "image": "i", "host": "kvm-1"}
        )


def group(**fields: Any) -> InstanceGroup:
    return InstanceGroup.model_validate({"name": "web", "template": "web", "size": 3, **fields})


def test_group_defaults() -> None:
    g = group()
    assert (g.min_size, g.max_size, g.autoscaled) == (3, 3, False)
    assert (g.spread, g.anti_affinity, g.auto_healing) == ("spread", True, True)
    assert g.update_policy == UpdatePolicy(max_surge=1, max_unavailable=0)
    assert list(g.member_names()) == ["web-0", "web-1", "web-2"]


def test_group_autoscaling_bounds() -> None:
    g = group(min_size=1, max_size=10)
    assert g.autoscaled
    assert list(group(size=0, min_size=0).member_names()) == []


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"min_size": 4}, "need min_size ≤ size ≤ max_size, got 4 ≤ 3 ≤ 3"),
        ({"max_size": 2}, "need min_size ≤ size ≤ max_size, got 3 ≤ 3 ≤ 2"),
        ({"min_size": -2}, "min_size must be ≥ 0"),
        ({"update_policy": {"max_surge": 0, "max_unavailable": 0}}, "cannot both be 0"),
        ({"update_policy": {"max_surge": -1}}, "greater than or equal to 0"),
        ({"spread": "random"}, "'spread' or 'pack'"),
        ({"name": "w" * 62, "size": 10}, "would be longer than 63 characters"),
    ],
)
def test_bad_groups(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        group(**fields)
    assert fragment in str(info.value)


def test_expand_group_copies_the_template_into_members(ssh_key: str) -> None:
    template = InstanceTemplate(
        name="web",
        machine_type="e2-medium",
        image="debian-12-web",
        networks=("default",),
        labels={"tier": "web"},
        ssh_keys=(ssh_key,),
        secrets={"TOKEN": SecretRef(name="token")},
    )
    members = expand_group(group(size=2), template)
    assert [m.name for m in members] == ["web-0", "web-1"]
    expected = Instance(
        name="web-1",
        hostname="web-1",
        group="web",
        machine_type="e2-medium",
        image="debian-12-web",
        networks=("default",),
        labels={"tier": "web"},
        ssh_keys=(ssh_key,),
        secrets={"TOKEN": SecretRef(name="token")},
    )
    assert members[1] == expected
    assert Instance.model_validate(members[1].model_dump(mode="json")) == members[1]


def test_expand_group_refuses_another_template() -> None:
    template = InstanceTemplate(name="db", machine_type="e2-small", image="i")
    with pytest.raises(ValueError, match="group 'web' uses template 'web', not 'db'"):
        expand_group(group(), template)


def test_a_group_has_a_slot_for_each_member_it_may_ever_have():
    g = group(size=2, max_size=4, update_policy={"max_surge": 2, "max_unavailable": 0})
    assert g.slots == 6
    assert list(g.slot_names()) == [f"web-{i}" for i in range(6)]
    template = InstanceTemplate(name="web", machine_type="e2-small", image="i")
    assert [m.name for m in expand_group(g, template)] == ["web-0", "web-1"]
    assert len(expand_group(g, template, slots=True)) == 6


def test_a_health_check_on_a_port_needs_the_port():
    assert group(health_check={"type": "tcp", "port": 80}).health_check.port == 80
    with pytest.raises(ValidationError, match="type http needs a port"):
        group(health_check={"type": "http"})
    with pytest.raises(ValidationError, match="takes no port"):
        group(health_check={"port": 22})
    with pytest.raises(ValidationError, match="must start with '/'"):
        group(health_check={"type": "http", "port": 80, "path": "healthz"})


def test_autoscaling_targets_a_share_of_cpu():
    assert group().autoscaling.target_cpu_utilization == 0.6
    with pytest.raises(ValidationError):
        group(autoscaling={"target_cpu_utilization": 1.5})
