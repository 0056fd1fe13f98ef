"""Kubernetes Secrets encrypted at rest: the API server's encryption configuration.

Without one, the API server stores Secrets in etcd as they are, and a workload's
password can be read from the etcd files under ``.unkai/clusters/``. Each cluster gets a
``secretbox`` key (XSalsa20-Poly1305, 32 random bytes) made once, the first time its
control plane starts, and kept with its certificates. ``identity`` follows as a reader
only, so Secrets a cluster stored before it had the key still read.

:func:`render_encryption_config` is pure; :func:`ensure_encryption_config` alone touches
the disk, and never replaces a key it finds: Secrets written with it would no longer read.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

from unkai._files import atomic_write
from unkai.errors import DriverError

KEY_BYTES = 32
"""The size of a secretbox key."""

KEY_NAME = "unkai-1"
"""The key's name; etcd values it encrypted start ``k8s:enc:secretbox:v1:unkai-1:``."""

ENCRYPTED_RESOURCES = ("secrets",)
"""What is encrypted: Secrets (ConfigMaps are not meant for secrets)."""


def render_encryption_config(key: bytes) -> str:
    """The EncryptionConfiguration that encrypts Secrets with ``key``.

    Args:
        key: A secretbox key, :data:`KEY_BYTES` long.

    Returns:
        YAML text; it holds the key, so it is written ``0600``.

    Raises:
        ValueError: ``key`` has the wrong length.
    """
    if len(key) != KEY_BYTES:
        raise ValueError(f"a secretbox key is {KEY_BYTES} bytes, not {len(key)}")
    doc = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [
            {
                "resources": list(ENCRYPTED_RESOURCES),
                "providers": [
                    {
                        "secretbox": {
                            "keys": [{"name": KEY_NAME, "secret": base64.b64encode(key).decode()}]
                        }
                    },
                    {"identity": {}},
                ],
            }
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def encryption_key(text: str) -> bytes:
    """The secretbox key that writes Secrets in an encryption configuration's ``text``.

    Raises:
        ValueError: ``text`` is not such a configuration (what is wrong, in a sentence).
    """
    try:
        doc: Any = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"not YAML: {err}") from err
    if not isinstance(doc, dict) or doc.get("kind") != "EncryptionConfiguration":
        raise ValueError("not an EncryptionConfiguration")
    entries = [e for e in doc.get("resources") or [] if isinstance(e, dict)]
    for entry in entries:
        if not set(ENCRYPTED_RESOURCES) <= set(entry.get("resources") or []):
            continue
        providers = entry.get("providers") or [{}]
        first = providers[0] if isinstance(providers[0], dict) else {}
        keys = (first.get("secretbox") or {}).get("keys") or []
        if not keys or not isinstance(keys[0], dict):
            raise ValueError("Secrets are not written with a secretbox key")
        try:
            key = base64.b64decode(str(keys[0].get("secret", "")), validate=True)
        except binascii.Error as err:
            raise ValueError(f"the key is not base64: {err}") from err
        if len(key) != KEY_BYTES:
            raise ValueError(f"the key is {len(key)} bytes, not {KEY_BYTES}")
        return key
    raise ValueError("it does not encrypt secrets")


def ensure_encryption_config(path: Path) -> bool:
    """Make the cluster's key and configuration at ``path`` once; afterwards, check them.

    The file is written ``0600`` in a ``0700`` folder; one found with looser bits is
    tightened. A file found is never replaced.

    Returns:
        Whether a key was made now (a file found is checked and kept).

    Raises:
        DriverError: the file exists but is not a configuration the API server can use
            (replacing it would lose every Secret its key encrypted), or it cannot be
            read or written.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = None
    except OSError as err:
        raise DriverError(f"cannot read the Secrets' encryption key {path}: {err}") from err
    if text is not None:
        try:
            encryption_key(text)
        except ValueError as err:
            raise DriverError(
                f"{path} is not the encryption configuration of this cluster's Secrets:"
                f" {err}. The Secrets in etcd can only be read with the key it held:"
                " restore it, or remove the cluster to start afresh"
            ) from err
        try:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
        except OSError as err:
            raise DriverError(f"cannot make {path} private: {err}") from err
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, render_encryption_config(secrets.token_bytes(KEY_BYTES)), mode=0o600)
    except OSError as err:
        raise DriverError(f"cannot write the Secrets' encryption key {path}: {err}") from err
    return True
