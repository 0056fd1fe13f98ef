"""Shared fixtures of the model tests: a small, valid environment document."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

_BLOB = b"\x00\x00\x00\x0bssh-ed25519" + b"\x00\x00\x00\x20" + bytes(range(32))
ED25519_KEY = f"ssh-ed25519 {base64.b64encode(_BLOB).decode()} ops@example"

_ENV: dict[str, Any] = {
    "name": "dev",
    "description": "a small cloud",
    "zones": {"zone-a": {"region": "eu"}, "zone-b": {}},
    "host_pools": {"general": {"zone": "zone-a", "cpu_overcommit": 2.0}},
    "hosts": {
        "kvm-1": {
            "address": "10.0.0.11",
            "ssh_user": "ops",
            "cpus": 16,
            "memory_mb": 65536,
            "disk_gb": 500,
            "cpu_vendor": "amd",
            "pool": "general",
            "zone": "zone-a",
        },
        "kvm-2": {
            "address": "kvm-2.example",
            "ssh_user": "ops",
            "cpus": 8,
            "memory_mb": 32768,
            "disk_gb": 250,
            "cpu_vendor": "intel",
            "pool": "general",
            "zone": "zone-a",
        },
    },
    "networks": {"default": {"cidr": "10.10.0.0/24", "dns_domain": "dev.internal"}},
    "vm_images": {
        "debian-12-web": {"version": "2024.06.1", "packages": ["nginx"], "disk_gb": 8},
        "debian-12-db": {"version": "1", "packages": ["postgresql"], "disk_gb": 20},
    },
    "container_images": {
        "api": {"dockerfile_template": "app.Dockerfile.j2", "variables": {"port": "8080"}}
    },
    "instances": {
        "db": {
            "machine_type": "n2-highmem-4",
            "image": "debian-12-db",
            "networks": ["default"],
            "disks": [{"name": "data", "size_gb": 100}],
            "ssh_keys": [ED25519_KEY],
            "secrets": {"DB_PASSWORD": "db-password"},
            "host": "kvm-1",
        }
    },
    "instance_templates": {
        "web": {
            "machine_type": "e2-medium",
            "image": "debian-12-web",
            "networks": ["default"],
            "labels": {"tier": "web"},
            "user_data": {"packages": ["curl"]},
        }
    },
    "instance_groups": {"web": {"template": "web", "size": 3, "max_size": 5}},
    "clusters": {
        "main": {
            "kubernetes_version": "1.31.2",
            "node_pools": [{"name": "default", "machine_type": "e2-standard-4", "size": 2}],
        }
    },
    "workloads": {
        "api": {
            "cluster": "main",
            "image": "api",
            "replicas": 2,
            "resources": {
                "requests": {"cpu": "250m", "memory": "256Mi"},
                "limits": {"cpu": "1", "memory": "512Mi"},
            },
            "ports": [{"name": "http", "port": 8080}],
            "readiness_probe": {"type": "http", "port": "http", "path": "/healthz"},
            "service": {"ports": [{"name": "http", "port": 80, "target_port": "http"}]},
            "pdb_min_available": 1,
        }
    },
    "settings": {"domain": "dev.example.com"},
}


@pytest.fixture
def env_data() -> dict[str, Any]:
    """A fresh copy of a valid environment document, for a test to modify."""
    return copy.deepcopy(_ENV)


@pytest.fixture
def ssh_key() -> str:
    """A syntactically valid OpenSSH ed25519 public key."""
    return ED25519_KEY
