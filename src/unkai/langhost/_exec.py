"""Runs one Pulumi program; started by the language host with the run's config on stdin."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

BAIL_STATUS = 32


def entry_file(program_directory: str, entry_point: str) -> Path:
    """The file to run: ``__main__.py`` of the program folder, or the named file."""
    target = Path(program_directory) / entry_point
    return target / "__main__.py" if target.is_dir() else target


def run(config: dict[str, Any]) -> int:
    """Connect to the monitor, run the program, and return the exit status."""
    from pulumi import log
    from pulumi.errors import RunError
    from pulumi.runtime import reset_options, run_in_stack, set_all_config

    from unkai.langhost import _debug_log, _drain, _type_cache

    _drain.install()  # the end of the run in time linear in its outputs (see _drain)
    _debug_log.install()  # no Log call for debug messages nobody is shown (see _debug_log)
    _type_cache.install()  # a resource class's property types worked out once (see _type_cache)
    # No cyclic garbage collection while the program runs. A program keeps every output,
    # future and task it makes until it ends (tens of thousands for 1,000 instances), so
    # each full collection walked all of them again: 30 % of a 1,180-resource preview
    # (benchmarks/RESULTS.md). What it frees is little: the program's peak memory was
    # the same with the collector on (259 MB) and off (263 MB). The process ends with
    # the run.
    gc.disable()

    main = entry_file(config["program_directory"], config["entry_point"])
    if not main.is_file():
        print(f"no Pulumi program at {main}", file=sys.stderr)
        return 1
    os.chdir(config["pwd"])
    sys.path.insert(0, str(main.parent))
    reset_options(
        project=config["project"],
        monitor_address=config["monitor_address"],
        engine_address=config["engine_address"],
        stack=config["stack"],
        parallel=config["parallel"],
        preview=config["dry_run"],
        organization=config["organization"],
    )
    if config["config"]:
        set_all_config(config["config"], config["config_secret_keys"] or None)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(
            run_in_stack(lambda: runpy.run_path(str(main), run_name="__main__"))
        )
    except RunError as err:
        log.error(str(err))
        return BAIL_STATUS
    except Exception:
        log.error(f"program failed:\n{traceback.format_exc()}")
        return BAIL_STATUS
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(run(json.load(sys.stdin)))
