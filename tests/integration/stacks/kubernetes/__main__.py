"""Test stack: the local environment's cluster, images and workloads — no VMs.

Its node pool is simulated (KWOK) and its images stay on this machine.

Config: ``cluster`` (the cluster's name, unique per run, so a deployed ``apps`` is never
touched), ``port`` (its API server port), ``stateRoot`` (where clusters keep state),
``prefix`` (prepended to the image repositories, so real ``api``/``worker`` tags are
never touched), ``poolSize`` (the ``default`` pool's size), ``workerReplicas`` (``api``'s
are its HPA's),
``copies`` (extra copies of ``worker``, for the benchmark), and the secret
``db-password``.
"""

from pathlib import Path

import pulumi

from unkai.components import ContainerImage, add_kubernetes, container_image_inputs
from unkai.environments import load_environment
from unkai.model import NodePool

config = pulumi.Config()
root = Path(__file__).resolve().parents[4]
env = load_environment("local", root=root)
prefix = config.require("prefix")

source = env.clusters["apps"]
# Simulated nodes (local's own pool is a VM: tests/e2e/test_local_cloud.py checks it).
size = config.get_int("poolSize") or 1
pools = [NodePool(name="default", machine_type="e2-small", size=size)]
cluster = source.model_copy(
    update={
        "name": config.require("cluster"),
        "control_plane": source.control_plane.model_copy(
            update={"port": config.require_int("port")}
        ),
        "node_pools": tuple(pools),
    }
)
images = {
    f"{prefix}{name}": image.model_copy(update={"name": f"{prefix}{name}", "registry": None})
    for name, image in env.container_images.items()
}
workloads = {}
for name, workload in env.workloads.items():
    update = {"cluster": cluster.name, "image": f"{prefix}{workload.image}"}
    if name == "worker" and config.get_int("workerReplicas") is not None:
        update["replicas"] = config.require_int("workerReplicas")
    workloads[name] = workload.model_copy(update=update)
for i in range(config.get_int("copies") or 0):
    workloads[f"worker-{i}"] = workloads["worker"].model_copy(update={"name": f"worker-{i}"})
env = env.model_copy(
    update={
        "clusters": {cluster.name: cluster},
        "container_images": images,
        "workloads": workloads,
        "instances": {},
        "instance_groups": {},
    }
)

built = {
    name: ContainerImage(name, container_image_inputs(image, env))
    for name, image in sorted(images.items())
}
kube = add_kubernetes("it", env, images=built, state_root=Path(config.require("stateRoot")))

pulumi.export("clusters", kube.clusters_summary)
pulumi.export("workloads", kube.workloads_summary)
pulumi.export("kubeconfig", kube.clusters[cluster.name].kubeconfig)
pulumi.export("manifests", {n: w.manifests for n, w in kube.workloads.items()})
pulumi.export("image_refs", {n: i.reference for n, i in built.items()})
