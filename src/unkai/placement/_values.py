"""The values placement returns: where each instance runs and what each host has left."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, computed_field, model_validator

from unkai.errors import PlacementError
from unkai.model import UnkaiModel

__all__ = [
    "HostAllocation",
    "Placement",
    "PlacementFailed",
    "PlacementProblem",
    "Reason",
    "ReportModel",
    "Shortfall",
    "Usage",
    "compact_names",
]

Reason = Literal["cpu", "memory", "disk", "zone", "labels", "anti-affinity", "host"]
"""Why an instance could not be placed: a resource, or the filter that left no host
(``host``: it is pinned to a host that is unavailable)."""


class ReportModel(UnkaiModel):
    """Base of values with computed fields: their dumps validate back to equal values.

    ``model_dump`` includes computed fields (such as :attr:`Usage.percent`); validation
    drops them again, since they follow from the other fields.
    """

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and any(name in data for name in cls.model_computed_fields):
            return {k: v for k, v in data.items() if k not in cls.model_computed_fields}
        return data


class Usage(ReportModel):
    """One resource of one host (or of a whole fleet): allocated against schedulable.

    ``capacity`` is what placement may hand out: overcommit ratios and the hypervisor's
    memory reserve are already applied (see :class:`unkai.model.HostPool`).
    """

    used: int = Field(ge=0, description="Allocated to the instances placed on the host.")
    capacity: int = Field(ge=0, description="Schedulable capacity of the host.")

    @computed_field(description="``used`` as a percentage of ``capacity`` (0 when empty).")  # type: ignore[prop-decorator]
    @property
    def percent(self) -> float:
        """``used`` as a percentage of ``capacity``, rounded to 0.1; 0 for no capacity."""
        return round(100.0 * self.used / self.capacity, 1) if self.capacity else 0.0

    @property
    def free(self) -> int:
        """What is left to allocate (negative only for a hand-built, overfull value)."""
        return self.capacity - self.used


class HostAllocation(UnkaiModel):
    """What placement put on one host, and how much of the host that takes."""

    host: str = Field(description="Host name.")
    zone: str = Field(description="The host's zone.")
    pool: str = Field(description="The host's pool.")
    instances: tuple[str, ...] = Field(description="Instances placed on the host, by name.")
    cpus: Usage = Field(description="vCPUs allocated / schedulable (after CPU overcommit).")
    memory_mb: Usage = Field(
        description="MiB allocated / schedulable (after the reserve and memory overcommit)."
    )
    disk_gb: Usage = Field(description="GiB of disk allocated / schedulable (never overcommitted).")


class Placement(UnkaiModel):
    """A complete assignment of an environment's instances to its hosts.

    A frozen value, JSON-able with ``model_dump(mode="json")``; equal inputs to
    :func:`unkai.placement.place` give equal placements.
    """

    environment: str = Field(description="Name of the environment placed.")
    assignments: Mapping[str, str] = Field(
        description="Instance name → host name, sorted by instance name."
    )
    hosts: Mapping[str, HostAllocation] = Field(
        description="Host name → its allocation, for every host (empty ones too), sorted."
    )
    stranded: tuple[PlacementProblem, ...] = Field(
        default=(),
        description=(
            "Instances of an unavailable host that fit nowhere else: they stay assigned to"
            " that host, and each says why it could not move."
        ),
    )

    def host_of(self, instance: str) -> str:
        """The host ``instance`` is placed on.

        Args:
            instance: An instance name.

        Returns:
            The host name.

        Raises:
            KeyError: ``instance`` is not part of the placement.
        """
        return self.assignments[instance]


@dataclass(frozen=True)
class Shortfall:
    """One resource an instance needs more of than a host has free.

    Attributes:
        resource: ``cpu``, ``memory`` or ``disk``.
        needed: What the instance needs (vCPU, MiB or GiB).
        free: What the host has left.
        capacity: The host's schedulable capacity.
        unit: ``vCPU``, ``MiB`` or ``GiB``.
    """

    resource: Literal["cpu", "memory", "disk"]
    needed: int
    free: int
    capacity: int
    unit: str

    @property
    def short(self) -> int:
        """By how much the host falls short: ``needed - free`` (> 0)."""
        return self.needed - self.free


@dataclass(frozen=True)
class PlacementProblem:
    """Why one instance could not be placed.

    Attributes:
        instance: The instance name.
        shape: The instance's size, such as ``2 vCPU, 8192 MiB, 40 GiB``.
        reason: The resource that is short, or the filter that left no host.
        detail: What went wrong, with the numbers: the short resource and by how much on
            the best candidate host, the largest host, or the filter that left no host.
        host: The host the numbers refer to (the best candidate, or the largest host).
        shortfalls: Every short resource on ``host``; empty when a filter is the reason.
    """

    instance: str
    shape: str
    reason: Reason
    detail: str
    host: str | None = None
    shortfalls: tuple[Shortfall, ...] = ()

    @property
    def message(self) -> str:
        """One line for a user: ``cannot place <instance> (<shape>): <detail>``."""
        return f"cannot place {self.instance} ({self.shape}): {self.detail}"

    def __str__(self) -> str:
        return self.message


_MEMBER = re.compile(r"^(.*)-([0-9]+)$")


def compact_names(names: Iterable[str]) -> str:
    """Write instance names compactly: runs of group members become ``web-[0-41]``.

    Every name is still there: ``web-[0-2], web-5, db-0`` names web-0, web-1, web-2,
    web-5 and db-0.

    Args:
        names: Instance names.

    Returns:
        The names, comma-separated, runs collapsed, in the order first seen.
    """
    # Zero-padded indexes (vm-007) keep their width, so every name is written as given.
    runs: dict[tuple[str, int], list[int]] = {}
    order: list[tuple[str, int] | str] = []
    for name in names:
        match = _MEMBER.fullmatch(name)
        if match is None:
            order.append(name)
            continue
        digits = match[2]
        key = (match[1], len(digits) if digits.startswith("0") and len(digits) > 1 else 0)
        if key not in runs:
            runs[key] = []
            order.append(key)
        runs[key].append(int(digits))
    parts: list[str] = []
    for item in order:
        if isinstance(item, str):
            parts.append(item)
            continue
        stem, width = item
        indexes = sorted(set(runs[item]))
        start = previous = indexes[0]
        for index in [*indexes[1:], None]:
            if index is not None and index == previous + 1:
                previous = index
                continue
            first, last = f"{start:0{width}d}", f"{previous:0{width}d}"
            parts.append(f"{stem}-{first}" if start == previous else f"{stem}-[{first}-{last}]")
            if index is not None:
                start = previous = index
    return ", ".join(parts)


class PlacementFailed(PlacementError):
    """Some instances fit on no host; :attr:`problems` lists every one of them.

    The message has a headline, then one line per distinct problem naming every instance
    it applies to (runs of group members written as ``web-[3-9]``), so a thousand
    members short of the same memory read as one line, not a thousand.

    Args:
        environment: The environment being placed.
        total: How many instances the environment has.
        problems: One problem per unplaceable instance.
    """

    def __init__(self, environment: str, total: int, problems: tuple[PlacementProblem, ...]):
        self.environment = environment
        self.problems = tuple(sorted(problems, key=lambda problem: problem.instance))
        same: dict[tuple[str, str], list[str]] = {}
        for problem in self.problems:
            same.setdefault((problem.shape, problem.detail), []).append(problem.instance)
        lines = [
            f"{len(self.problems)} of {total} instances of environment {environment!r}"
            " cannot be placed:"
        ]
        for (shape, detail), names in same.items():
            many = f"{len(names)} instances of " if len(names) > 1 else ""
            lines.append(f"  cannot place {compact_names(names)} ({many}{shape}): {detail}")
        super().__init__("\n".join(lines))


Placement.model_rebuild()  # ``stranded`` refers to PlacementProblem, defined after it
