"""Benchmark of managed instance groups: real VMs made, healed and rolled by the operator.

Run:  .venv/bin/python benchmarks/bench_instance_group.py [--members 4]

On a real control plane (its own operator, default 5 s rounds) and this machine's libvirt
(every guest under TCG here), an environment's group of ``--members`` members of 512 MiB
(``local``'s image and network; surge 1, unavailable 0), each phase timed from the change
to the state it waits for:

- create: the group's object applied by the InstanceGroupManager kind → every member
  healthy (the kind's own wait);
- heal: one member's domain destroyed (``virsh destroy``) → the group healthy again;
- rollout: a new template (its metadata) → every member made from it and healthy.

Prints one line per phase and a JSON summary. The group, its image and the control plane
are removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from unkai import model, render
from unkai.components import instance_group_object, slot_values, vm_image_inputs
from unkai.drivers import libvirt
from unkai.drivers.kubernetes import ControlPlane, read_instance_group
from unkai.drivers.kubernetes._process import free_ports
from unkai.environments import load_environment
from unkai.kinds import InstanceGroupManagerInputs
from unkai.provider.resources.instance_group import InstanceGroupManager
from unkai.provider.resources.vm_image import VmImage
from unkai.toolchain import cached_probe

ROOT = Path(__file__).resolve().parents[1]


def bench_env(members: int, rollout: str = "1") -> model.Environment:
    data = load_environment("local", root=ROOT).model_dump(mode="json")
    data.update(
        name="igbench",
        instances={},
        workloads={},
        container_images={},
        settings={**data["settings"], "ssh_port_base": 2340, "management_cluster": "apps"},
    )
    # The cluster only hosts the operator: a simulated pool, not local's VM node.
    data["clusters"]["apps"]["node_pools"] = [
        {"name": "default", "machine_type": "e2-small", "size": 1}
    ]
    data["instance_templates"]["web"].update(
        machine_type="custom-1-512", metadata={"rollout": rollout}
    )
    data["instance_groups"] = {
        "ig": {
            "name": "ig", "template": "web", "size": members, "anti_affinity": False,
            "update_policy": {"max_surge": 1, "max_unavailable": 0},
            "health_check": {"initial_delay_s": 60},
        }
    }  # fmt: skip
    return model.Environment.model_validate(data)


def manager_inputs(
    cp: ControlPlane, env: model.Environment, image: str
) -> InstanceGroupManagerInputs:
    group = env.instance_groups["ig"]
    host = env.hosts["localhost"]
    accelerator = cached_probe().accelerator
    members = {i.name: i for i in env.all_instances()}
    slots = [
        (name, slot_values(members[name], env=env, host=host, accelerator=accelerator))
        for name in group.slot_names()
    ]
    obj = instance_group_object(env, group, slots)
    return InstanceGroupManagerInputs(
        cluster="bench", kubeconfig=str(cp.kubeconfig_path), cluster_ca="sha256:bench",
        name=obj["metadata"]["name"], size=group.size, min_size=group.min_size,
        max_size=group.max_size, manifest=yaml.safe_dump(obj, sort_keys=False),
        image_volumes={host.name: image}, timeout=1800,
    )  # fmt: skip


def timed(what: str, action: Callable[[], Any]) -> float:
    start = time.monotonic()
    action()
    seconds = time.monotonic() - start
    print(f"{what}: {seconds:.1f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=4)
    args = parser.parse_args()
    env = bench_env(args.members)
    host = env.hosts["localhost"]
    manager = InstanceGroupManager()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="unkai-bench-ig-") as tmp:
        cp = ControlPlane(
            name="igbench", state_dir=Path(tmp) / "cp", port=free_ports(1)[0], version="1.36.3"
        )
        with libvirt.session(host.libvirt_uri) as conn:
            conn.ensure_pool(render.STORAGE_POOL, render.STORAGE_POOL_PATH)
        images = VmImage()
        image_inputs = vm_image_inputs(
            env.vm_images["debian-12"], host, environment=render.owner(env), root=ROOT
        )
        image, image_state = images.create(image_inputs)
        state = None
        try:
            cp.start()
            inputs = manager_inputs(cp, env, image)
            start = time.monotonic()
            _, state = manager.create(inputs)
            results["create"] = time.monotonic() - start
            print(f"create ({args.members} members): {results['create']:.1f} s", flush=True)

            domain = render.domain_name(render.owner(env), "ig-0")

            def healed() -> None:
                subprocess.run(["virsh", "-c", host.libvirt_uri, "destroy", domain], check=True)
                time.sleep(6)  # a round sees it stopped
                deadline = time.monotonic() + 900
                while time.monotonic() < deadline:
                    found = read_instance_group(kubeconfig=cp.kubeconfig_path, name=inputs.name)
                    if found is not None and found.settled and found.repairs:
                        return
                    time.sleep(0.5)
                raise SystemExit("the destroyed member was not made again within 900 s")

            results["heal"] = timed("heal (destroy → healthy again)", healed)
            rolled = manager_inputs(cp, bench_env(args.members, rollout="2"), image)

            def roll() -> None:
                nonlocal state
                assert state is not None
                state = manager.update(f"bench/{inputs.name}", state, rolled)

            results["rollout"] = timed(f"rollout ({args.members} members, surge 1)", roll)
        finally:
            if state is not None:
                manager.delete(f"bench/{inputs.name}", state)
            cp.remove()
            images.delete(image, image_state)
    print(json.dumps({"members": args.members, **{k: round(v, 1) for k, v in results.items()}}))


if __name__ == "__main__":
    main()
