"""Machine types: a built-in GCE-like catalogue plus ``custom-<cpus>-<memory_mb>``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated

from pydantic import AfterValidator, Field

from unkai.errors import ConfigError
from unkai.model._base import DnsLabel, UnkaiModel

__all__ = [
    "CUSTOM_MAX_CPUS",
    "CUSTOM_MAX_MB_PER_CPU",
    "CUSTOM_MEMORY_STEP_MB",
    "CUSTOM_MIN_MB",
    "MACHINE_TYPES",
    "MachineType",
    "MachineTypeName",
    "machine_type",
]

CUSTOM_MAX_CPUS = 96
"""Largest vCPU count of a custom machine type."""
CUSTOM_MEMORY_STEP_MB = 256
"""Memory of a custom machine type is a multiple of this many MiB (as on GCE)."""
CUSTOM_MIN_MB = 512
"""Smallest memory of a custom machine type, in MiB: what a Debian guest needs to boot."""
CUSTOM_MAX_MB_PER_CPU = 6656
"""Largest memory per vCPU of a custom machine type, in MiB (6.5 GiB, as on GCE)."""

_CUSTOM = re.compile(r"^custom-([1-9][0-9]*)-([1-9][0-9]*)$")


class MachineType(UnkaiModel):
    """The shape of a VM: how many vCPUs and how much memory it gets.

    Shared-core types (``e2-micro``, ``e2-small``, ``e2-medium``) get their vCPUs as
    bursts of a shared physical core; placement may count them at a fraction.
    """

    name: DnsLabel = Field(description="Catalogue name or ``custom-<cpus>-<memory_mb>``.")
    cpus: int = Field(ge=1, description="Number of vCPUs.")
    memory_mb: int = Field(ge=1, description="Memory in MiB.")
    shared_core: bool = Field(default=False, description="Whether the vCPUs share a core.")


def _standard(family: str, cpus: int, mb_per_cpu: int) -> MachineType:
    return MachineType(name=f"{family}-{cpus}", cpus=cpus, memory_mb=cpus * mb_per_cpu)


MACHINE_TYPES: Mapping[str, MachineType] = MappingProxyType(
    {
        mt.name: mt
        for mt in sorted(
            (
                MachineType(name="e2-micro", cpus=2, memory_mb=1024, shared_core=True),
                MachineType(name="e2-small", cpus=2, memory_mb=2048, shared_core=True),
                MachineType(name="e2-medium", cpus=2, memory_mb=4096, shared_core=True),
                *(_standard("e2-standard", n, 4096) for n in (2, 4, 8)),
                *(_standard("n2-standard", n, 4096) for n in (2, 4, 8, 16)),
                *(_standard("n2-highmem", n, 8192) for n in (2, 4)),
            ),
            key=lambda mt: mt.name,
        )
    }
)
"""The built-in catalogue, by name (read-only). Standard types have 4 GiB per vCPU,
highmem types 8 GiB per vCPU."""

_ALLOWED = (
    f"one of {', '.join(MACHINE_TYPES)}, or custom-<cpus>-<memory_mb> with cpus in"
    f" 1..{CUSTOM_MAX_CPUS} and memory_mb a multiple of {CUSTOM_MEMORY_STEP_MB} in"
    f" {CUSTOM_MIN_MB}..{CUSTOM_MAX_MB_PER_CPU}*cpus"
)


def machine_type(name: str) -> MachineType:
    """Look up a machine type by name: the catalogue, or a ``custom-<cpus>-<mb>`` type.

    Custom types are parsed on demand: ``custom-4-8192`` is 4 vCPUs and 8192 MiB. Bounds:
    ``cpus`` in 1..96; ``memory_mb`` a multiple of 256, at least 512 and at most
    6656 (6.5 GiB) per vCPU. Numbers are written without leading zeros, so a custom
    type's name is always the canonical spelling of its shape.

    Args:
        name: A machine type name.

    Returns:
        The machine type.

    Raises:
        ConfigError: The name is neither in the catalogue nor a valid custom type; its
            ``allowed`` lists the catalogue and the custom pattern with its bounds.
    """
    known = MACHINE_TYPES.get(name)
    if known is not None:
        return known
    match = _CUSTOM.fullmatch(name)
    if match is None:
        raise ConfigError("unknown machine type", value=name, allowed=_ALLOWED)
    cpus, memory_mb = int(match[1]), int(match[2])
    problems = []
    if cpus > CUSTOM_MAX_CPUS:
        problems.append(f"{cpus} vCPUs is more than {CUSTOM_MAX_CPUS}")
    if memory_mb % CUSTOM_MEMORY_STEP_MB:
        problems.append(f"{memory_mb} MiB is not a multiple of {CUSTOM_MEMORY_STEP_MB}")
    if memory_mb < CUSTOM_MIN_MB:
        problems.append(f"{memory_mb} MiB is less than {CUSTOM_MIN_MB}")
    if memory_mb > CUSTOM_MAX_MB_PER_CPU * cpus:
        problems.append(
            f"{memory_mb} MiB is more than {CUSTOM_MAX_MB_PER_CPU} MiB per vCPU"
            f" ({CUSTOM_MAX_MB_PER_CPU * cpus} for {cpus})"
        )
    if problems:
        raise ConfigError(
            f"invalid custom machine type: {'; '.join(problems)}", value=name, allowed=_ALLOWED
        )
    return MachineType(name=name, cpus=cpus, memory_mb=memory_mb)


def _known_machine_type(name: str) -> str:
    try:
        machine_type(name)
    except ConfigError as err:
        raise ValueError(str(err)) from err
    return name


MachineTypeName = Annotated[str, AfterValidator(_known_machine_type)]
"""A field holding the name of an existing machine type (checked against
:func:`machine_type`)."""
