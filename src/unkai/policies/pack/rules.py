"""The rules of unkai's built-in policy pack: plain functions of a resource's properties.

This file runs in the policy packs' own virtualenv (the engine's SDK, CrossGuard and
PyYAML; no unkai), started by the engine; ``__main__.py`` wires each rule into a
CrossGuard policy. unkai's tests import it from the project's venv. Each rule returns
the reasons its resource breaks it, as sentences, empty when it does not.

Properties the engine does not know yet (during a preview, a Workload's manifests wait
for its image) arrive missing or as None: a rule says nothing about them then, and
checks them when ``up`` registers the resource with its values.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[-_]?key|private[-_]?key|credential|access[-_]?key",
    re.IGNORECASE,
)
"""A name that says its value is a secret."""

NOT_SECRET_NAME = re.compile(r"^(ssh_pwauth|lock_passwd|chpasswd\.expire)$|_file$|_path$|_ref$")
"""Names that match :data:`SECRET_NAME` and hold no secret (a flag, where one is kept)."""

PUBLIC = ("ssh-", "ecdsa-", "sk-ssh-", "-----BEGIN CERTIFICATE", "-----BEGIN PUBLIC KEY")
"""Values that look random and are public: SSH public keys and certificates."""

MIN_TOKEN = 20
"""The shortest value the entropy test looks at."""

MAX_TOKEN = 512
"""The longest: a longer value is a document, not a token."""

ENTROPY = 4.2
"""Bits per character above which a token is taken for a secret. A hex digest has at most
4.0; random base64 of 24 bytes or more has about 4.5 to 5.2."""


def entropy(text: str) -> float:
    """Shannon entropy of ``text``, in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def secret_reason(name: str, value: Any) -> str | None:
    """Why the plain value ``value`` of ``name`` looks like a secret (``has …``), or None."""
    if not isinstance(value, str) or not value.strip() or value.startswith("$"):
        return None
    if SECRET_NAME.search(name) and not NOT_SECRET_NAME.search(name):
        return "has a secret's name and a plain value"
    token = value.strip()
    if "-----BEGIN" in token and "PRIVATE KEY" in token:
        return "holds a private key"
    if (
        MIN_TOKEN <= len(token) <= MAX_TOKEN
        and not any(c.isspace() for c in token)
        and not token.startswith(PUBLIC)
        and entropy(token) > ENTROPY
    ):
        return f"has a random-looking plain value ({entropy(token):.1f} bits a character)"
    return None


def _named_values(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(key path, value) of every scalar in a YAML or JSON tree."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _named_values(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _named_values(value, f"{path}[{index}]")
    else:
        yield path, node


def _documents(text: Any) -> list[Any]:
    if not isinstance(text, str):
        return []
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError:
        return []


def _containers(manifests: Any) -> Iterator[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    """(file, pod spec, container) of every container in a Workload's manifests."""
    if not isinstance(manifests, Mapping):
        return
    for file, text in sorted(manifests.items()):
        for doc in _documents(text):
            spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
            for container in spec.get("containers") or []:
                yield file, spec, container


def secret_values(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Secret-looking values in plain fields, where secrets belong in secret fields.

    Looked at: the env of a Workload's containers and its ConfigMaps, ENV and ARG of a
    Dockerfile, an instance's cloud-init data.
    """
    found: list[tuple[str, Any]] = []
    if resource_type == "unkai:kubernetes:Workload":
        for file, _, container in _containers(props.get("manifests")):
            for env in container.get("env") or []:
                if "value" in env:
                    found.append((f"{file}: env {env.get('name')}", env["value"]))
        for file, text in sorted((props.get("manifests") or {}).items()):
            for doc in _documents(text):
                if doc.get("kind") == "ConfigMap":
                    for key, value in sorted((doc.get("data") or {}).items()):
                        found.append((f"{file}: data {key}", value))
    elif resource_type == "unkai:containers:ContainerImage":
        for line in str(props.get("dockerfile") or "").splitlines():
            match = re.match(r"\s*(ENV|ARG)\s+(\S+?)(?:=|\s+)(.*)$", line)
            if match:
                found.append((f"Dockerfile {match[1]} {match[2]}", match[3].strip().strip('"')))
    elif resource_type == "unkai:compute:Instance":
        for field in ("user_data", "meta_data"):
            for doc in _documents(props.get(field)):
                found.extend((f"{field} {path}", value) for path, value in _named_values(doc))
    reasons = []
    for where, value in found:
        name = re.split(r"[ .]", where)[-1]
        why = secret_reason(name, value)
        if why is not None:
            reasons.append(f"{where} {why}; make it a secret (secret_env, secrets)")
    return reasons


def non_root_with_limits(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Each container of a Workload runs as a non-root user, with CPU and memory limits."""
    if resource_type != "unkai:kubernetes:Workload":
        return []
    reasons = []
    for file, spec, container in _containers(props.get("manifests")):
        name = f"{file}: container {container.get('name')}"
        pod, own = spec.get("securityContext") or {}, container.get("securityContext") or {}
        user = own.get("runAsUser", pod.get("runAsUser"))
        non_root = own.get("runAsNonRoot", pod.get("runAsNonRoot"))
        if user == 0 or (non_root is not True and user is None):
            reasons.append(f"{name} may run as root (set runAsNonRoot or a runAsUser other than 0)")
        limits = (container.get("resources") or {}).get("limits") or {}
        missing = [kind for kind in ("cpu", "memory") if kind not in limits]
        if missing:
            reasons.append(f"{name} has no {' and no '.join(missing)} limit")
    return reasons


def pinned_images(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Each container image of a Workload is named by its digest (``…@sha256:…``)."""
    if resource_type != "unkai:kubernetes:Workload":
        return []
    return [
        f"{file}: container {container.get('name')} runs {container.get('image')}, not pinned"
        " by digest (name@sha256:…)"
        for file, _, container in _containers(props.get("manifests"))
        if "@sha256:" not in str(container.get("image") or "")
    ]


def no_bridged_nic(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """No instance has a NIC bridged onto a host's network."""
    if resource_type != "unkai:compute:Instance":
        return []
    xml = props.get("domain_xml")
    if not isinstance(xml, str) or not re.search(r"<interface\s+type=['\"]bridge['\"]", xml):
        return []
    return ["a NIC is bridged onto the host's network (mode: bridged)"]


def group_anti_affinity(members: Mapping[str, Mapping[str, str]]) -> list[tuple[str, str]]:
    """Members of one instance group that share a host: (member, reason) each.

    Args:
        members: Group → member name → the host it is placed on.
    """
    found = []
    for group, hosts in sorted(members.items()):
        by_host: dict[str, list[str]] = {}
        for member, host in sorted(hosts.items()):
            by_host.setdefault(host, []).append(member)
        for host, names in sorted(by_host.items()):
            for member in names[1:]:
                found.append((member, f"shares host {host} with {names[0]} of group {group}"))
    return found


def zone_headroom(
    hosts: Mapping[str, Mapping[str, Any]],
    instances: Mapping[str, Mapping[str, Any]],
    percent: float,
) -> list[tuple[str, str]]:
    """Zones left with less than ``percent`` of their vCPUs or memory free: (zone, reason).

    A zone's headroom is what its hosts could still take, so that a host of the zone can
    fail, or a group grow, without the zone running out.

    Args:
        hosts: Host → ``{"zone", "cpus", "memory_mb"}``, the schedulable capacity.
        instances: Instance → ``{"host", "vcpus", "memory_mb"}``, as the stack places them
            (an instance whose host is not known yet counts nowhere).
        percent: The share of each zone that must stay free, 0 to 100.
    """
    capacity: dict[str, dict[str, float]] = {}
    for host in hosts.values():
        zone = capacity.setdefault(str(host["zone"]), {"cpus": 0, "memory_mb": 0})
        zone["cpus"] += host["cpus"]
        zone["memory_mb"] += host["memory_mb"]
    used: dict[str, dict[str, float]] = {zone: {"cpus": 0, "memory_mb": 0} for zone in capacity}
    for instance in instances.values():
        host = hosts.get(str(instance.get("host")))
        if host is None:
            continue
        zone_used = used[str(host["zone"])]
        zone_used["cpus"] += instance.get("vcpus") or 0
        zone_used["memory_mb"] += instance.get("memory_mb") or 0
    found = []
    for zone, total in sorted(capacity.items()):
        for resource, unit in (("cpus", "vCPUs"), ("memory_mb", "MiB of memory")):
            if not total[resource]:
                continue
            free = 100.0 * (total[resource] - used[zone][resource]) / total[resource]
            if free < percent:
                found.append((
                    zone,
                    f"zone {zone} keeps {free:.0f} % of its {total[resource]:,.0f}"
                    f" schedulable {unit} free, under the {percent:g} % headroom asked for",
                ))  # fmt: skip
    return found


RESOURCE_RULES = {
    "secret-values": secret_values,
    "non-root-with-limits": non_root_with_limits,
    "pinned-images": pinned_images,
    "no-bridged-nic": no_bridged_nic,
}
"""Name → rule of each policy that looks at one resource at a time."""

STACK_RULES = ("group-anti-affinity", "zone-headroom")
"""The policies that look at the whole stack."""
