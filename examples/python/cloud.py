"""The environments of this project, declared in Python with unkai's typed model.

`unkai env show local`, `plan`, `render` and `up` read them from here (unkai.toml's
``environments = "cloud:environments"``). The module declares and deploys nothing: unkai
imports it whenever it needs an environment, so keep it free of side effects.
"""

from unkai.model import (
    Disk,
    Environment,
    Host,
    HostPool,
    Instance,
    InstanceGroup,
    InstanceTemplate,
    Network,
    VmImage,
    Zone,
)

DEBIAN = VmImage(
    name="debian-12",
    version="12.0.1",
    packages=["cloud-init", "openssh-server"],
    disk_gb=4,
    # Only the cloud-init modules unkai needs, in one stage: about 30 s to boot under TCG.
    profile="lean",
)


def local() -> Environment:
    """Everything on this machine: one KVM host, a web group of one VM, a database VM."""
    return Environment(
        name="local",
        description="The shop on this one machine, on loopback only.",
        zones={"local": Zone(name="local")},
        host_pools={
            "local": HostPool(
                name="local", zone="local", cpu_overcommit=8.0, reserved_memory_mb=1024
            ),
        },
        hosts={
            "localhost": Host(
                name="localhost",
                address="127.0.0.1",
                connection="local",
                cpus=2,
                memory_mb=8192,
                disk_gb=40,
                cpu_vendor="amd",
                pool="local",
                zone="local",
            ),
        },
        # QEMU user networking: a VM is reached on a port of 127.0.0.1, nothing else.
        networks={"default": Network(name="default", mode="user")},
        vm_images={DEBIAN.name: DEBIAN},
        instance_templates={
            "web": InstanceTemplate(
                name="web",
                machine_type="custom-1-1024",
                image=DEBIAN.name,
                zone="local",
                networks=["default"],
                labels={"tier": "web"},
            ),
        },
        instance_groups={
            "web": InstanceGroup(name="web", template="web", size=1, anti_affinity=False),
        },
        instances={
            "db": Instance(
                name="db",
                machine_type="custom-1-1024",
                image=DEBIAN.name,
                zone="local",
                disks=[Disk(name="data", size_gb=1)],
                networks=["default"],
                labels={"tier": "db"},
            ),
        },
        settings={"ssh_port_base": 2400},
    )


def environments() -> list[Environment]:
    """Every environment of this project (unkai.toml names this function)."""
    return [local()]
