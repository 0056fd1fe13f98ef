"""Environments the render tests use until (and beside) the example environments.

``sample_environment()`` is a small 3-tier cloud with every kind of artifact: a ``user``
network (the local case) and a ``nat`` network, a bridged network, a web group, a db VM
with a data disk and a secret, container images ``api``/``worker`` and a cluster with
two workloads, one with secret env, autoscaling and a PDB.
"""

from __future__ import annotations

import base64
from typing import Any

from unkai._pins import pinned_version
from unkai.model import Environment

_BLOB = b"\x00\x00\x00\x0bssh-ed25519" + b"\x00\x00\x00\x20" + bytes(range(32))
ED25519_KEY = f"ssh-ed25519 {base64.b64encode(_BLOB).decode()} ops@example"

SAMPLE: dict[str, Any] = {
    "name": "dev",
    "description": "render fixture",
    "settings": {"domain": "dev.unkai.internal", "ssh_port_base": 2200},
    "zones": {"zone-a": {}, "zone-b": {}},
    "host_pools": {
        "general": {"zone": "zone-a"},
        "edge": {"zone": "zone-b", "cpu_overcommit": 2.0},
    },
    "hosts": {
        "local": {
            "address": "127.0.0.1",
            "connection": "local",
            "cpus": 8,
            "memory_mb": 32768,
            "disk_gb": 200,
            "cpu_vendor": "intel",
            "pool": "general",
            "zone": "zone-a",
        },
        "kvm-2": {
            "address": "10.0.0.12",
            "ssh_user": "ops",
            "cpus": 16,
            "memory_mb": 65536,
            "disk_gb": 500,
            "cpu_vendor": "amd",
            "pool": "edge",
            "zone": "zone-b",
            "labels": {"rack": "r2"},
        },
    },
    "networks": {
        "lan": {"mode": "user", "dns_domain": "dev.unkai.internal"},
        "backend": {"mode": "nat", "cidr": "10.20.0.0/24", "dns_domain": "backend.internal"},
        "storage": {"mode": "isolated", "cidr": "10.30.0.0/24"},
        "uplink": {"mode": "bridged", "bridge": "br0"},
    },
    "vm_images": {
        "debian-12": {"version": "2024.06.1", "disk_gb": 8},
        "debian-12-db": {"version": "1", "packages": ["postgresql"], "disk_gb": 20},
    },
    "container_images": {
        "api": {"dockerfile_template": "api.Dockerfile.j2", "variables": {"port": "8080"}},
        "worker": {"dockerfile_template": "worker.Dockerfile.j2"},
        "plain": {"dockerfile_template": "base.Dockerfile.j2"},
    },
    "instances": {
        "db": {
            "machine_type": "n2-highmem-2",
            "image": "debian-12-db",
            "networks": ["lan", "backend"],
            "disks": [{"name": "data", "size_gb": 50}],
            "ssh_keys": [ED25519_KEY],
            "labels": {"tier": "db"},
            "metadata": {"owner": "data-team"},
            "secrets": {"DB_PASSWORD": "db-password"},
            "user_data": {
                "packages": ["postgresql"],
                "runcmd": [["systemctl", "enable", "--now", "postgresql"]],
                "write_files": [
                    {
                        "path": "/etc/motd",
                        "content": "database host\nmanaged by unkai\n",
                        "permissions": "0644",
                    }
                ],
            },
        },
        "gw": {
            "machine_type": "e2-micro",
            "image": "debian-12",
            "networks": ["uplink", "storage"],
            "disks": [{"name": "scratch", "size_gb": 5, "bus": "scsi"}],
            "zone": "zone-b",
        },
    },
    "instance_templates": {
        "web": {
            "machine_type": "e2-small",
            "image": "debian-12",
            "networks": ["lan"],
            "ssh_keys": [ED25519_KEY],
            "labels": {"tier": "web"},
        }
    },
    "instance_groups": {"web": {"template": "web", "size": 2, "max_size": 4}},
    "clusters": {
        "apps": {
            "kubernetes_version": pinned_version("kubernetes"),  # the one the toolchain builds
            "node_pools": [{"name": "default", "machine_type": "e2-standard-4", "size": 3}],
        }
    },
    "workloads": {
        "api": {
            "cluster": "apps",
            "image": "api",
            "replicas": 2,
            "resources": {
                "requests": {"cpu": "250m", "memory": "128Mi"},
                "limits": {"cpu": "1", "memory": "256Mi"},
            },
            "ports": [{"name": "http", "port": 8080}],
            "env": {"LOG_LEVEL": "info", "FEATURE_FLAG": "true"},
            "secret_env": {"DATABASE_PASSWORD": "db-password"},
            "readiness_probe": {"type": "http", "port": "http", "path": "/healthz"},
            "liveness_probe": {"type": "tcp", "port": 8080, "period_seconds": 20},
            "autoscaling": {"min_replicas": 2, "max_replicas": 6, "target_cpu_utilization": 70},
            "service": {
                "type": "ClusterIP",
                "ports": [{"name": "http", "port": 80, "target_port": "http"}],
            },
            "pdb_min_available": 1,
        },
        "worker": {
            "cluster": "apps",
            "image": "worker",
            "replicas": 1,
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
        },
    },
}


def sample_environment() -> Environment:
    """The sample environment, validated."""
    return Environment.model_validate(SAMPLE)
