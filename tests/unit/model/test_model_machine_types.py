from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unkai.errors import ConfigError
from unkai.model import (
    CUSTOM_MAX_CPUS,
    CUSTOM_MAX_MB_PER_CPU,
    CUSTOM_MEMORY_STEP_MB,
    CUSTOM_MIN_MB,
    MACHINE_TYPES,
    MachineType,
    machine_type,
)

CATALOGUE = {
    "e2-micro": (2, 1024, True),
    "e2-small": (2, 2048, True),
    "e2-medium": (2, 4096, True),
    "e2-standard-2": (2, 8192, False),
    "e2-standard-4": (4, 16384, False),
    "e2-standard-8": (8, 32768, False),
    "n2-standard-2": (2, 8192, False),
    "n2-standard-4": (4, 16384, False),
    "n2-standard-8": (8, 32768, False),
    "n2-standard-16": (16, 65536, False),
    "n2-highmem-2": (2, 16384, False),
    "n2-highmem-4": (4, 32768, False),
}


def test_catalogue_holds_exactly_the_gce_like_types() -> None:
    got = {name: (mt.cpus, mt.memory_mb, mt.shared_core) for name, mt in MACHINE_TYPES.items()}
    assert got == CATALOGUE
    assert list(MACHINE_TYPES) == sorted(CATALOGUE)
    assert all(name == mt.name for name, mt in MACHINE_TYPES.items())


def test_catalogue_is_read_only() -> None:
    with pytest.raises(TypeError):
        MACHINE_TYPES["huge"] = MachineType(name="huge", cpus=1, memory_mb=1)  # type: ignore[index]


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_lookup_returns_catalogue_entry(name: str) -> None:
    assert machine_type(name) is MACHINE_TYPES[name]


@pytest.mark.parametrize(
    ("name", "cpus", "memory_mb"),
    [("custom-1-512", 1, 512), ("custom-4-8192", 4, 8192), ("custom-96-638976", 96, 638976)],
)
def test_custom_types_parse(name: str, cpus: int, memory_mb: int) -> None:
    assert machine_type(name) == MachineType(name=name, cpus=cpus, memory_mb=memory_mb)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("custom-97-8192", "97 vCPUs is more than 96"),
        ("custom-2-1000", "1000 MiB is not a multiple of 256"),
        ("custom-1-256", "256 MiB is less than 512"),
        ("custom-1-6912", "6912 MiB is more than 6656 MiB per vCPU (6656 for 1)"),
        ("custom-0-1024", "unknown machine type"),
        ("custom-02-1024", "unknown machine type"),
        ("custom-2", "unknown machine type"),
        ("e2-huge", "unknown machine type"),
        ("", "unknown machine type"),
    ],
)
def test_invalid_names_raise_config_error_listing_what_is_allowed(name: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        machine_type(name)
    err = info.value
    assert fragment in err.message
    assert err.value == name
    assert err.allowed is not None
    for known in CATALOGUE:
        assert known in err.allowed
    assert "custom-<cpus>-<memory_mb>" in err.allowed
    assert "1..96" in err.allowed
    assert f"(got {name!r})" in str(err) and "allowed:" in str(err)


@given(
    cpus=st.integers(1, CUSTOM_MAX_CPUS),
    steps=st.integers(CUSTOM_MIN_MB // CUSTOM_MEMORY_STEP_MB, 10_000),
)
def test_custom_round_trip(cpus: int, steps: int) -> None:
    memory_mb = steps * CUSTOM_MEMORY_STEP_MB
    name = f"custom-{cpus}-{memory_mb}"
    if memory_mb <= CUSTOM_MAX_MB_PER_CPU * cpus:
        mt = machine_type(name)
        assert (mt.name, mt.cpus, mt.memory_mb, mt.shared_core) == (name, cpus, memory_mb, False)
        assert MachineType.model_validate(mt.model_dump(mode="json")) == mt
    else:
        with pytest.raises(ConfigError, match="per vCPU"):
            machine_type(name)


@given(st.text(max_size=30))
def test_lookup_never_fails_with_anything_but_config_error(name: str) -> None:
    try:
        mt = machine_type(name)
    except ConfigError as err:
        assert err.allowed
    else:
        assert mt.name == name
