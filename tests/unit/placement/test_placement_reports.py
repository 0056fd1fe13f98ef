from __future__ import annotations

import pytest
from placement_envs import build_env as build
from placement_envs import host

from unkai.errors import ConfigError, PlacementError
from unkai.model import Environment
from unkai.placement import (
    CONTAINER_BASE_IMAGE_MB,
    CONTAINER_MEMORY_MB,
    DEFAULT_SOURCE,
    DensityReport,
    Placement,
    capacity_report,
    density_report,
    place,
)


def eight_small_vms() -> Environment:
    # 8 VMs of 1 vCPU / 1 GiB with a 4 GiB OS disk each: the guest OS is everything.
    return build(
        {"h1": host(cpus=8, memory_mb=17408, disk_gb=200)},
        templates={"app": {"machine_type": "custom-1-1024"}},
        groups={"app": {"template": "app", "size": 8, "anti_affinity": False}},
        image_gb=4,
    )


def test_the_classic_example_eight_vms() -> None:
    density = density_report(eight_small_vms())
    # 8 VMs at 512 MiB guest OS each cost 4 GiB of RAM and 8 x 4 GiB = 32 GiB of disk
    # before any application.
    assert density.vm.overhead_memory_mb == 8 * 512 == 4096
    assert density.vm.overhead_disk_mb == 8 * 4 * 1024 == 32 * 1024
    # As containers: a few MiB each, and the base image once for the host.
    assert density.container.overhead_memory_mb == 8 * CONTAINER_MEMORY_MB
    assert density.container.overhead_disk_mb == CONTAINER_BASE_IMAGE_MB
    assert density.memory_saved_mb == 4096 - 8 * CONTAINER_MEMORY_MB
    assert density.disk_saved_mb == 32 * 1024 - CONTAINER_BASE_IMAGE_MB
    (row,) = density.hosts
    assert (row.host, row.instances) == ("h1", 8)
    # Empty, h1 (8 CPUs x 4 = 32 vCPU, 16 GiB, 200 GiB) holds 16 such VMs (memory), and
    # as containers 32: 16384 / (512 + 10) = 31.4 by memory, 32 by CPU.
    assert (row.vm_fit, row.vm_bound_by) == (16, "memory")
    assert (row.container_fit, row.container_bound_by) == (31, "memory")
    assert row.extra_fit == density.extra_fit == 15


def test_density_settings_come_from_the_environment() -> None:
    env = eight_small_vms().model_copy(
        update={"settings": {"density": {"vm_guest_memory_mb": 256, "container_base_image_mb": 0}}}
    )
    density = density_report(env)
    assert density.vm.overhead_memory_mb == 8 * 256
    assert density.container.overhead_disk_mb == 0


@pytest.mark.parametrize(
    ("density", "key_path"),
    [
        ({"vm_guest_memory_mb": -1}, "settings.density.vm_guest_memory_mb"),
        ({"swap": 1}, "settings.density.swap"),
        ("big", "settings.density"),
    ],
)
def test_bad_density_settings_name_the_key(density: object, key_path: str) -> None:
    env = eight_small_vms().model_copy(update={"settings": {"density": density}})
    with pytest.raises(ConfigError) as caught:
        density_report(env)
    assert caught.value.key_path == key_path


def test_density_report_round_trips_and_uses_a_given_placement() -> None:
    env = eight_small_vms()
    placement = place(env)
    density = density_report(env, placement=placement)
    assert DensityReport.model_validate(density.model_dump(mode="json")) == density
    assert density == density_report(env)


def test_empty_host_uses_the_fleet_average() -> None:
    env = build(
        {"h1": host(), "h2": host()},
        instances={"x": {"machine_type": "e2-standard-2", "host": "h1"}},
    )
    rows = {row.host: row for row in density_report(env).hosts}
    assert rows["h2"].instances == 0
    assert rows["h2"].vm.memory_mb == 0
    assert (rows["h2"].vm_fit, rows["h2"].container_fit) == (rows["h1"].vm_fit, 2)


def test_capacity_report_rows_and_totals() -> None:
    env = build(
        {"h1": host(), "h2": host(cpus=4, memory_mb=9216, disk_gb=100)},
        instances={"x": {"machine_type": "e2-standard-2"}, "y": {"machine_type": "e2-medium"}},
    )
    report = capacity_report(env, place(env))
    assert [row.host for row in report.hosts] == ["h1", "h2"]
    assert report.memory_mb.used == 8192 + 4096
    assert report.memory_mb.capacity == 16384 + 8192
    assert report.memory_mb.percent == 50.0
    assert report.cpus.capacity == 32 + 16
    assert sum(len(row.instances) for row in report.hosts) == 2


def test_capacity_report_rejects_a_foreign_placement() -> None:
    env = build({"h1": host()}, instances={"x": {"machine_type": "e2-small"}})
    bad = Placement(environment="test", assignments={"x": "nope"}, hosts={})
    with pytest.raises(PlacementError, match="unknown hosts \\['nope'\\]"):
        capacity_report(env, bad)


def test_measured_overheads_fill_in_what_the_environment_does_not_set() -> None:
    env = eight_small_vms().model_copy(
        update={"settings": {"density": {"container_base_image_mb": 0}}}
    )
    measured = {
        "vm_guest_memory_mb": (180, "measured today: QEMU's resident memory"),
        "container_base_image_mb": (75, "measured today: unkai/debian:12"),
    }
    density = density_report(env, measured=measured)
    assert density.vm.overhead_memory_mb == 8 * 180  # measured
    assert density.container.overhead_disk_mb == 0  # settings.density wins
    assert density.sources == {
        "vm_guest_memory_mb": "measured today: QEMU's resident memory",
        "vm_os_disk_gb": DEFAULT_SOURCE,
        "container_memory_mb": DEFAULT_SOURCE,
        "container_base_image_mb": "settings.density",
    }
    assert DensityReport.model_validate_json(density.model_dump_json()) == density
