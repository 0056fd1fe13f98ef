"""The environments of this cloud, declared in Python with unkai's typed model.

Every environment has one VM from an image that bakes this project's playbook
(playbooks/app.yml) and one container image from this project's Dockerfile template
(templates/docker/web.Dockerfile.j2); each adds its hosts. unkai.toml names
:func:`environments`; `unkai env show`, `plan`, `render` and `up` read it. Keep this
module free of side effects: unkai imports it whenever it needs an environment.
"""

from unkai.model import (
    ContainerImage,
    Environment,
    Host,
    HostPool,
    Instance,
    Network,
    VmImage,
    Zone,
)

APP_IMAGE = VmImage(
    name="app-image",
    version="1",
    packages=["cloud-init", "openssh-server"],
    playbook="playbooks/app.yml",
    disk_gb=4,
)
WEB = ContainerImage(
    name="web",
    dockerfile_template="web.Dockerfile.j2",
    variables={"greeting": "hello from this project"},
)


def local() -> Environment:
    """Everything on this machine: it is the only KVM host; the VM is on a port of 127.0.0.1."""
    return Environment(
        name="local",
        description="Everything on this one machine, on loopback only.",
        zones={"main": Zone(name="main")},
        host_pools={
            "local": HostPool(
                name="local", zone="main", cpu_overcommit=8.0, reserved_memory_mb=1024
            )
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
                zone="main",
            )
        },
        # QEMU user networking: nothing but a forwarded port of 127.0.0.1 reaches the VM.
        networks={"default": Network(name="default", mode="user")},
        vm_images={APP_IMAGE.name: APP_IMAGE},
        instances={
            "app": Instance(
                name="app",
                machine_type="custom-1-512",
                image=APP_IMAGE.name,
                networks=["default"],
                labels={"tier": "app"},
            )
        },
        container_images={WEB.name: WEB},
        settings={
            "domain": "app.internal",
            "ssh_port_base": 2300,
            # Secrets the stack has no value for are generated at random and kept as
            # encrypted stack config.
            "generate_secrets": True,
        },
    )


def environments() -> list[Environment]:
    """Every environment of this project (unkai.toml names this function)."""
    return [local()]
