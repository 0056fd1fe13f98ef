"""Deterministic rendering of an environment's artifacts from Jinja templates.

Every renderer is pure: it takes model values and returns text; only
:func:`write_tree` writes, and it writes a whole tree atomically. The same model and
templates always give the same bytes (stable ordering, no timestamps, no environment
variables or clocks reach a template), and secret values never appear, only
references (:class:`unkai.model.SecretRef` names, ``secretKeyRef``).

Templates live at ``templates/<kind>/<file>.j2``, named after the file they produce::

    libvirt/domain.xml.j2      libvirt/network.xml.j2
    cloud-init/user-data.j2    cloud-init/meta-data.j2    cloud-init/network-config.j2
    docker/base.Dockerfile.j2  docker/api.Dockerfile.j2   docker/worker.Dockerfile.j2
    ansible/inventory.yml.j2   ansible/host_vars.yml.j2
    kubernetes/deployment.yaml.j2  service.yaml.j2  hpa.yaml.j2  pdb.yaml.j2

Overriding a template: a project puts a file with the same relative path in its own
``templates/`` folder (``<project>/templates/docker/api.Dockerfile.j2``) and renders
with ``Templates(project_dir=<project>)``; ``unkai render --root <project>`` does so.
The search path is the project's folder first, then unkai's built-in folder
(:data:`BUILTIN_TEMPLATES`): ``unkai/templates``, package data, which a wheel carries and
an editable install (``pip install -e .``) finds in ``src/unkai/templates``. A
container image's ``dockerfile_template`` names a file of
``docker/``; a project can add new ones the same way.

Example:
    >>> from unkai.model import Environment
    >>> from unkai.render import render_tree
    >>> env = Environment.model_validate({
    ...     "name": "lab",
    ...     "settings": {"ssh_port_base": 2222},
    ...     "networks": {"lan": {"mode": "user"}},
    ...     "vm_images": {"debian-12": {"version": "1", "disk_gb": 8}},
    ...     "instances": {"vm": {"machine_type": "e2-small", "image": "debian-12",
    ...                          "networks": ["lan"]}},
    ... })
    >>> for path in render_tree(env, accelerator="tcg"):
    ...     print(path)
    ansible/inventory.yml
    cloud-init/vm/meta-data
    cloud-init/vm/network-config
    cloud-init/vm/user-data
    index.json
    libvirt/domains/vm.xml
"""

from __future__ import annotations

from unkai.render._ansible import (
    HOSTS_GROUP,
    HostAccelerator,
    host_vars,
    inventory,
    render_host_vars,
    render_inventory,
)
from unkai.render._cloudinit import (
    CLOUD_INIT_FINISHED_MARKER,
    DEFAULT_USER,
    SECRETS_FILE,
    SEED_SECRETS_FILE,
    cloud_config,
    instance_fqdn,
    render_cloud_init,
    render_meta_data,
    render_network_config,
    render_user_data,
)
from unkai.render._docker import (
    CONTAINER_GID,
    CONTAINER_UID,
    dockerfile_hash,
    image_reference,
    image_tag,
    render_dockerfile,
)
from unkai.render._groups import (
    instance_group_file,
    instance_group_name,
    instance_group_policy,
    render_instance_group,
)
from unkai.render._images import (
    NODE_PLAYBOOK,
    PLAYBOOK_CONTENT_DIRS,
    node_playbook,
    playbook_digest,
    resolve_playbook,
)
from unkai.render._index import definition_hash
from unkai.render._jinja import (
    BUILTIN_TEMPLATES,
    Templates,
    builtin_templates_dir,
    default_templates,
    make_jinja_environment,
    template_search_path,
)
from unkai.render._kubernetes import (
    SECRET_REFS_ANNOTATION,
    kubernetes_minor,
    node_pool_file,
    render_manifests,
    render_node_pool,
    secret_name,
    secret_refs,
    workload_labels,
)
from unkai.render._libvirt import (
    BOOT_FILES_DIR,
    BOOT_POOL_PREFIX,
    BUILT_INITRD,
    BUILT_KERNEL,
    DEFAULT_CONSOLE_LOG,
    DEFAULT_DISK_PATH,
    DEFAULT_KERNEL_CMDLINE,
    DEFAULT_SEED_PATH,
    LEAN_KERNEL_CMDLINE,
    LIBVIRT_NETWORK_PREFIX,
    STORAGE_POOL,
    STORAGE_POOL_PATH,
    TCG_CPU_MODEL,
    UNKAI_XML_NAMESPACE,
    Accelerator,
    boot_files_dir,
    boot_pool_name,
    domain_name,
    instance_mac,
    libvirt_network_name,
    owned_by,
    owner,
    render_domain_xml,
    render_network_xml,
    seed_volume_name,
    ssh_port,
    volume_name,
)
from unkai.render._nodes import (
    CLUSTER_POD_CIDR,
    node_address,
    node_files,
    node_of,
    node_pod_cidrs,
    sandbox_image,
)
from unkai.render._ssh import render_ssh_config
from unkai.render._tree import INDEX_FILE, render_index, render_tree, with_keys, write_tree
from unkai.render.filters import canonical_json, content_hash

__all__ = [
    "BOOT_FILES_DIR",
    "BOOT_POOL_PREFIX",
    "BUILTIN_TEMPLATES",
    "BUILT_INITRD",
    "BUILT_KERNEL",
    "CLOUD_INIT_FINISHED_MARKER",
    "CLUSTER_POD_CIDR",
    "CONTAINER_GID",
    "CONTAINER_UID",
    "DEFAULT_CONSOLE_LOG",
    "DEFAULT_DISK_PATH",
    "DEFAULT_KERNEL_CMDLINE",
    "DEFAULT_SEED_PATH",
    "DEFAULT_USER",
    "HOSTS_GROUP",
    "INDEX_FILE",
    "LEAN_KERNEL_CMDLINE",
    "LIBVIRT_NETWORK_PREFIX",
    "NODE_PLAYBOOK",
    "PLAYBOOK_CONTENT_DIRS",
    "SECRETS_FILE",
    "SECRET_REFS_ANNOTATION",
    "SEED_SECRETS_FILE",
    "STORAGE_POOL",
    "STORAGE_POOL_PATH",
    "TCG_CPU_MODEL",
    "UNKAI_XML_NAMESPACE",
    "Accelerator",
    "HostAccelerator",
    "Templates",
    "boot_files_dir",
    "boot_pool_name",
    "builtin_templates_dir",
    "canonical_json",
    "cloud_config",
    "content_hash",
    "default_templates",
    "definition_hash",
    "dockerfile_hash",
    "domain_name",
    "host_vars",
    "image_reference",
    "image_tag",
    "instance_fqdn",
    "instance_group_file",
    "instance_group_name",
    "instance_group_policy",
    "instance_mac",
    "inventory",
    "kubernetes_minor",
    "libvirt_network_name",
    "make_jinja_environment",
    "node_address",
    "node_files",
    "node_of",
    "node_playbook",
    "node_pod_cidrs",
    "node_pool_file",
    "owned_by",
    "owner",
    "playbook_digest",
    "render_cloud_init",
    "render_dockerfile",
    "render_domain_xml",
    "render_host_vars",
    "render_index",
    "render_instance_group",
    "render_inventory",
    "render_manifests",
    "render_meta_data",
    "render_network_config",
    "render_network_xml",
    "render_node_pool",
    "render_ssh_config",
    "render_tree",
    "render_user_data",
    "resolve_playbook",
    "sandbox_image",
    "secret_name",
    "secret_refs",
    "seed_volume_name",
    "ssh_port",
    "template_search_path",
    "volume_name",
    "with_keys",
    "workload_labels",
    "write_tree",
]
