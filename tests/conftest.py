"""Marks each test by its tier, from the folder it lives in; no deadline for property tests."""

from __future__ import annotations

import contextlib
import gc
import os

import pytest
from hypothesis import settings

# Property tests check results, not speed: on a loaded 2-core machine (CI runs VMs under
# TCG beside them) a generated case can take longer than hypothesis' default 200 ms
# deadline, which failed a correct test. Timing is measured in benchmarks/.
settings.register_profile("unkai", deadline=None)
settings.load_profile("unkai")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        elif "e2e" in parts:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _blocking_stdio():
    """Give every test blocking standard streams, whatever the one before it ran.

    OpenSSH switches the descriptors it is given to non-blocking mode, and the mode lives
    on the open file, which a test's subprocesses share with this process; Ansible then
    refuses to run ("requires blocking IO"). Tests pass ``stdin=DEVNULL`` to what they
    run over SSH; this keeps one that forgets from breaking every test after it.
    """
    yield
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            os.set_blocking(fd, True)


@pytest.fixture(scope="module", autouse=True)
def _leaks_fail_where_they_are_made():
    """Collect garbage as each module ends.

    A socket or pipe a test forgets is otherwise reported whenever the collector next
    runs, which is inside some later, unrelated test (a unit test once failed for a
    socket an integration module had left). Collected here, it fails the module that
    left it.
    """
    yield
    gc.collect()
