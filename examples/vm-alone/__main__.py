"""One VM, its image and its host, declared alone: no environment, no YAML.

``VirtualMachine`` configures the host with Ansible (packages, libvirtd, the storage
pool), builds the image and uploads it there, and boots the VM to "cloud-init finished".
Everything it makes is named ``vmalone-<stack>-…``: this project's, this stack's.

Config (``pulumi config set``): ``sshKey``, a public key to log in with (optional);
``profile``, ``default`` or ``lean`` (how the image boots; default: ``default``).
"""

import pulumi

from unkai.components import VirtualMachine, VirtualMachineArgs
from unkai.model import Host, Instance, VmImage

config = pulumi.Config()

image = VmImage(
    name="debian-12",
    version="12.0.1",
    packages=["cloud-init", "openssh-server"],
    disk_gb=4,
    profile=config.get("profile") or "default",
)
# This machine: libvirt's system daemon, reached without SSH.
host = Host(
    name="localhost",
    address="127.0.0.1",
    connection="local",
    cpus=2,
    memory_mb=8192,
    disk_gb=40,
    cpu_vendor="amd",
    pool="local",
    zone="local",
)
vm = VirtualMachine(
    "hello",
    VirtualMachineArgs(
        instance=Instance(
            name="hello",
            machine_type="custom-1-1024",
            image=image.name,
            zone=host.zone,
            user_data={"write_files": [{"path": "/etc/motd", "content": "hello, alone\n"}]},
        ),
        image=image,
        host=host,
        ssh_keys=tuple(k for k in [config.get("sshKey")] if k),
        settings={"ssh_port_base": 2600},
    ),
)

pulumi.export(
    "ssh", pulumi.Output.format("ssh -p {0} unkai@{1}", vm.instance.ssh_port, vm.instance.ssh_host)
)
pulumi.export("state", vm.instance.state)
pulumi.export("boot_seconds", vm.instance.boot_seconds)
