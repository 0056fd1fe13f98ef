"""The environments of this project: values from environments/*.yaml, structure in Python.

Each YAML file holds what differs per environment (hosts, how many workers and how big);
this module turns those values into instances, here a numbered worker per count, spread
over the environment's zone. unkai.toml names :func:`environments`; `unkai env show`,
`plan`, `render` and `up` read the result.
"""

from pathlib import Path

from unkai.environments import load_yaml_environment
from unkai.model import Environment, Instance

ROOT = Path(__file__).resolve().parent


def names() -> list[str]:
    """One environment per file of environments/, but base.yaml, which is only extended."""
    files = (ROOT / "environments").glob("*.yaml")
    return sorted(path.stem for path in files if path.stem != "base")


def with_workers(env: Environment) -> Environment:
    """``env`` with ``settings.workers`` worker VMs of ``settings.worker_machine_type``."""
    count = int(env.settings["workers"])  # type: ignore[arg-type]
    machine_type = str(env.settings["worker_machine_type"])
    (zone,) = env.zones  # one zone per environment here
    workers = {
        f"worker-{n}": Instance(
            name=f"worker-{n}",
            machine_type=machine_type,
            image="debian-12",
            zone=zone,
            networks=["default"],
            labels={"tier": "worker"},
        )
        for n in range(1, count + 1)
    }
    return env.model_copy(update={"instances": {**env.instances, **workers}})


def environments() -> list[Environment]:
    """Every environment of this project (unkai.toml names this function)."""
    return [with_workers(load_yaml_environment(name, root=ROOT)) for name in names()]
