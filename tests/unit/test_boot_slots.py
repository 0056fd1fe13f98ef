"""Boots fitted to a host: how many at once, and the lock files that count them."""

from __future__ import annotations

import threading
import time

import pytest

from unkai._files import one_of_locks
from unkai.drivers.libvirt import boot_slots
from unkai.drivers.vms import boot_locks


@pytest.mark.parametrize(
    ("cpus", "free_mb", "memory_mb", "slots"),
    [
        (2, 20_000, 1024, 3),  # this machine: a core each, and one more
        (16, 200_000, 4096, 17),
        (16, 8192, 4096, 2),  # memory holds two
        (2, 100, 1024, 1),  # always one, so the boot proceeds
        (1, 4096, 512, 2),
    ],
)
def test_a_host_boots_a_guest_a_core_and_one_more_within_its_free_memory(
    cpus, free_mb, memory_mb, slots
):
    assert boot_slots(cpus=cpus, free_mb=free_mb, memory_mb=memory_mb) == slots


def test_each_host_has_its_own_boot_locks(tmp_path, monkeypatch):
    monkeypatch.setenv("UNKAI_CACHE_DIR", str(tmp_path))
    local = boot_locks("qemu:///system", 3)
    remote = boot_locks("qemu+ssh://root@10.0.0.1/system", 3)
    assert len(local) == 3 and len(set(local)) == 3
    assert not set(local) & set(remote)
    assert all(path.is_relative_to(tmp_path) for path in local)


def test_no_more_than_the_slots_hold_a_lock_at_once(tmp_path):
    paths = [tmp_path / f"slot-{i}.lock" for i in range(2)]
    inside, most, lock = 0, 0, threading.Lock()

    def boot() -> None:
        nonlocal inside, most
        with one_of_locks(paths, poll=0.01):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.1)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=boot) for _ in range(5)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2
    assert time.monotonic() - start >= 0.3  # five boots of 0.1 s, two at a time


def test_the_wait_for_a_slot_is_reported_and_measured(tmp_path):
    path = tmp_path / "slot.lock"
    notes: list[float] = []
    release = threading.Event()

    def holder() -> None:
        with one_of_locks([path]):
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    time.sleep(0.05)
    threading.Timer(0.3, release.set).start()
    with one_of_locks([path], poll=0.01, waiting=notes.append) as waited:
        assert waited >= 0.2
    thread.join()
    assert notes == []  # reported every 15 s of waiting: none in 0.3 s


def test_a_lock_of_no_place_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one"), one_of_locks([]):
        pass
