"""``unkai:compute:Instance``: a VM from the rendered domain XML and a NoCloud seed.

Create: a copy-on-write disk over the image's volume, the seed ISO (user-data,
meta-data, network-config, exactly as ``unkai render`` writes them), the domain
defined and started, then a wait until cloud-init has finished — read on the serial
console, not a fixed sleep. Memory and vCPU changes are applied in place with a
restart; a change of image or cloud-init data replaces the VM, because cloud-init
runs its first-boot work only once per instance.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar

from unkai.drivers import libvirt
from unkai.drivers._run import run
from unkai.errors import ConfigError, DriverError
from unkai.provider._resource import Resource
from unkai.provider._values import UNKNOWN, Props

_FIRST_BOOT = "cloud-init applies it only on an instance's first boot: the VM is recreated"


class Instance(Resource):
    """A VM on one host."""

    token = "unkai:compute:Instance"
    inputs = (
        "name",
        "host",
        "libvirt_uri",
        "pool",
        "domain_xml",
        "user_data",
        "meta_data",
        "network_config",
        "image_volume_path",
        "disks",
        "seed_volume",
        "console_log",
        "ssh_port",
        "memory_mb",
        "vcpus",
        "running",
        "boot_timeout",
    )
    # Every other input (domain_xml, memory_mb, vcpus, running, ...) changes in place:
    # the domain is redefined and restarted.
    replace_on: ClassVar = {
        "name": "a domain cannot be renamed",
        "host": "the VM moves to another host",
        "libvirt_uri": "the VM moves to another host",
        "pool": "the VM's disks move to another pool",
        "user_data": _FIRST_BOOT,
        "meta_data": _FIRST_BOOT,
        "network_config": _FIRST_BOOT,
        "image_volume_path": "the boot disk is a copy-on-write layer over the old image",
        "disks": "disks are created with the VM (size, bus and backing are fixed then)",
        "seed_volume": "the seed ISO is another volume",
    }

    def check(self, news: Props) -> dict[str, Any]:
        """Sizes positive, the domain XML names the instance."""
        values = dict(news.values)
        for key in ("memory_mb", "vcpus"):
            value = values.get(key)
            if value is not UNKNOWN and not (isinstance(value, int | float) and value > 0):
                raise ConfigError("must be a positive number", key_path=key, value=value)
        disks = values.get("disks")
        if disks is not UNKNOWN and (not isinstance(disks, list) or not disks):
            raise ConfigError("must list the boot disk first", key_path="disks")
        xml, name = values.get("domain_xml"), values.get("name")
        if xml is not UNKNOWN and f"<name>{name}</name>" not in str(xml):
            raise ConfigError(f"must define the domain {name!r}", key_path="domain_xml")
        values.setdefault("running", True)
        values.setdefault("boot_timeout", 900)
        return values

    def _seed(self, inputs: Props) -> Path:
        uri, pool = inputs.get("libvirt_uri"), inputs.get("pool")
        with tempfile.TemporaryDirectory(prefix="unkai-seed-") as tmp:
            folder = Path(tmp)
            for name in ("user-data", "meta-data", "network-config"):
                text = inputs.get(name.replace("-", "_"))
                if text:
                    (folder / name).write_text(text, encoding="utf-8")
            iso = folder / "seed.iso"
            run(libvirt.seed_iso_argv(folder, iso))
            libvirt.delete_volume(uri, pool, inputs.get("seed_volume"))
            volume = libvirt.upload_volume(uri, pool, inputs.get("seed_volume"), iso, fmt="raw")
        return Path(volume.path)

    def _boot(self, inputs: Props) -> dict[str, Any]:
        uri, name = inputs.get("libvirt_uri"), inputs.get("name")
        log = Path(inputs.get("console_log"))
        log.unlink(missing_ok=True)
        libvirt.start_domain(uri, name)
        ready = libvirt.wait_for_console(
            log,
            "unkai: cloud-init finished",
            timeout=float(inputs.get("boot_timeout")),
            alive=lambda: (libvirt.domain(uri, name) or _GONE).state == "running",
        )
        info = libvirt.domain(uri, name)
        assert info is not None
        return {
            **inputs.values,
            "state": info.state,
            "running": info.state == "running",
            "uuid": info.uuid,
            "accelerator": "kvm" if info.domain_type == "kvm" else "tcg",
            "ip_addresses": list(ready.addresses),
            "ssh_host": "127.0.0.1",
            "boot_seconds": ready.seconds,
        }

    def create(self, inputs: Props) -> tuple[str, dict[str, Any]]:
        """Disk, seed, domain, boot, and wait for cloud-init.

        Raises:
            DriverError: a domain of that name already exists on the host (unkai never
                takes over or deletes what it did not create), or the VM did not come
                up; in that case everything this call created is removed again.
        """
        uri, pool, name = inputs.get("libvirt_uri"), inputs.get("pool"), inputs.get("name")
        if libvirt.domain(uri, name) is not None:
            raise DriverError(
                f"a domain named {name!r} already exists on {uri} and this stack did not "
                "create it; remove it (virsh undefine) or rename the instance"
            )
        try:
            for index, disk in enumerate(inputs.get("disks")):
                # The first disk boots: a copy-on-write layer over the image; others empty.
                libvirt.create_overlay(
                    uri,
                    pool,
                    disk["volume"],
                    backing=inputs.get("image_volume_path") if index == 0 else None,
                    size_gb=int(disk["size_gb"]),
                )
            self._seed(inputs)
            libvirt.define_domain(uri, name, inputs.get("domain_xml"))
            return name, self._boot(inputs)
        except Exception:
            # Nothing half-created: a VM that did not come up goes with its disks.
            self.delete(name, inputs)
            raise

    def read(self, resource_id: str, state: Props) -> dict[str, Any] | None:
        """The domain as libvirt has it; None when it was undefined."""
        info = libvirt.domain(state.get("libvirt_uri"), resource_id)
        if info is None:
            return None
        return {
            **state.values,
            "state": info.state,
            "running": info.state == "running",
            "memory_mb": info.memory_mb,
            "vcpus": info.vcpus,
            "uuid": info.uuid,
        }

    def update(self, resource_id: str, olds: Props, news: Props) -> dict[str, Any]:
        """Redefine the domain and restart it so the new definition applies."""
        uri = news.get("libvirt_uri")
        libvirt.define_domain(uri, resource_id, news.get("domain_xml"))
        libvirt.stop_domain(uri, resource_id, timeout=60)
        return self._boot(news)

    def delete(self, resource_id: str, state: Props) -> None:
        """Domain, boot disk and seed ISO."""
        uri, pool = state.get("libvirt_uri"), state.get("pool")
        libvirt.delete_domain(uri, resource_id)
        for disk in state.get("disks") or []:
            libvirt.delete_volume(uri, pool, disk["volume"])
        libvirt.delete_volume(uri, pool, state.get("seed_volume"))


class _Gone:
    state = "gone"


_GONE = _Gone()
