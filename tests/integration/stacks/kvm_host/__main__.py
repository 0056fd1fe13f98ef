"""The local environment's KVM host, with a storage pool of its own for the tests.

Config: ``pool_name`` and ``pool_path`` (a pool apart from the shared ``unkai`` pool,
so deleting it behind unkai's back disturbs nobody), ``accelerator`` (what the KVM
probe found).
"""

from pathlib import Path

import pulumi

from unkai.components import KvmHost, kvm_host_inputs
from unkai.environments import load_environment

config = pulumi.Config()
root = Path(__file__).resolve().parents[4]
env = load_environment("local", root=root)

host = KvmHost(
    "localhost",
    kvm_host_inputs(
        env.hosts["localhost"],
        env=env,
        pool_name=config.require("pool_name"),
        pool_path=config.require("pool_path"),
        accelerator=config.get("accelerator") or "auto",
    ),
)

for key in (
    "cpus",
    "memory_mb",
    "accelerator",
    "accelerator_reason",
    "libvirt_version",
    "qemu_version",
    "pool_path",
    "changed",
):
    pulumi.export(key, getattr(host, key))
