"""A node pool of VMs for real: a VM joined by kubeadm runs unkai's own image.

A project made by ``unkai init`` deploys an environment of its own (``nodes``): a
cluster whose only node pool is one VM of a node image (containerd 2, kubelet, kubeadm
and kube-proxy built from their Go modules), and the ``api`` workload, whose image is
built from unkai's Debian base and pushed to unkai's registry. Everything goes through
``unkai up``: the image build, the VM's boot, its join over SSH with Ansible, the push,
the pull by digest on the node. The node is then looked at from the API server and from
inside the VM, and destroy leaves nothing of it.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lightkube import Client
from lightkube.models.core_v1 import Container, PodSpec, SecurityContext
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.core_v1 import Node, Pod, Service

from unkai.drivers.kubernetes import kube_client
from unkai.drivers.kubernetes._process import free_ports, listening
from unkai.toolchain import containerd_version, kubernetes_bin, kubernetes_version

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from commands import ok, run

BIN = Path(sys.executable).parent
ENV = "nodes"
NODE = "apps-vms-0"

ENVIRONMENT = """\
description: A cluster whose node pool is one VM, joined with kubeadm.
zones:
  main: {{}}
host_pools:
  local: {{zone: main, cpu_overcommit: 8.0, reserved_memory_mb: 1024}}
hosts:
  localhost:
    address: 127.0.0.1
    connection: local
    cpus: 2
    memory_mb: 8192
    disk_gb: 40
    cpu_vendor: amd
    pool: local
    zone: main
networks:
  default: {{mode: user, cidr: null}}
  nodes: {{mode: isolated, cidr: 10.218.0.0/24}}
vm_images:
  node: {{version: "1", kubernetes: "{version}", profile: lean, disk_gb: 6}}
instance_templates:
  node: {{machine_type: custom-1-2048, image: node, zone: main, networks: [default, nodes]}}
clusters:
  apps:
    kubernetes_version: "{version}"
    control_plane: {{port: {port}}}
    node_pools:
      - {{name: vms, kind: vm, template: node, machine_type: custom-1-2048, size: 1}}
container_images:
  api:
    dockerfile_template: api.Dockerfile.j2
    registry: 127.0.0.1:5000
  worker:
    dockerfile_template: worker.Dockerfile.j2
    registry: 127.0.0.1:5000
    variables: {{interval: "5"}}
workloads:
  api:
    cluster: apps
    image: api
    resources:
      requests: {{cpu: 100m, memory: 64Mi}}
      limits: {{cpu: 500m, memory: 256Mi}}
    ports: [{{name: http, port: 8080}}]
    readiness_probe: {{type: http, port: http, path: /healthz}}
    autoscaling:
      min_replicas: 1
      max_replicas: 2
      target_cpu_utilization: 50
      scale_down_stabilization_s: 30
    service:
      ports: [{{name: http, port: 80, target_port: http}}]
  worker:
    cluster: apps
    image: worker
    resources:
      requests: {{cpu: 50m, memory: 32Mi}}
      limits: {{cpu: 100m, memory: 64Mi}}
settings:
  ssh_port_base: {ssh_port}
"""

MEMORY_LIMIT = 256 * 1024 * 1024


def unkai(project: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return run(BIN / "unkai", *args, cwd=project, timeout=timeout)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("vm-nodes")
    folder = base / "nodes-it"
    ok(run(BIN / "unkai", "init", folder, cwd=base))
    port, ssh_port = free_ports(2)
    text = ENVIRONMENT.format(version=kubernetes_version(), port=port, ssh_port=ssh_port)
    (folder / "environments" / f"{ENV}.yaml").write_text(text)
    return folder


def domains() -> set[str]:
    listed = ok(run("virsh", "-c", "qemu:///system", "list", "--all", "--name", cwd=Path("/")))
    return set(listed.split())


@pytest.fixture(scope="module")
def deployed(project: Path) -> Iterator[tuple[Path, str]]:
    """The environment deployed; destroyed after the module, and nothing of it left."""
    try:
        yield project, ok(unkai(project, "up", ENV))
    finally:
        destroyed = unkai(project, "destroy", ENV)
    ok(destroyed)
    assert not {d for d in domains() if d.startswith(f"nodes-it-{ENV}-")}


@pytest.fixture(scope="module")
def client(deployed: tuple[Path, str]) -> Iterator[Client]:
    project, _ = deployed
    kube = kube_client(project / ".unkai" / "clusters" / "apps" / "kubeconfig" / "admin.kubeconfig")
    try:
        yield kube
    finally:
        kube.close()


def on_node(project: Path, command: str) -> str:
    """``command`` run on the node VM through ``unkai ssh`` (its printed host key pinned)."""
    return ok(unkai(project, "ssh", ENV, NODE, "sh", "-c", shlex.quote(command), timeout=300))


def api_pods(client: Client) -> list[Pod]:
    return list(client.list(Pod, namespace="default", labels={"app.kubernetes.io/name": "api"}))


def api_pod(client: Client) -> Pod:
    (pod,) = api_pods(client)
    return pod


def wait_for(what: str, check: Callable[[], bool], *, timeout: float) -> float:
    """Seconds until ``check()`` held, polled every second; fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout:.0f} s"
        time.sleep(1)
    return time.monotonic() - start


def test_the_vm_joins_and_runs_unkais_image_pulled_by_digest(client: Client):
    node = client.get(Node, NODE)
    assert node.status is not None and node.status.nodeInfo is not None
    info = node.status.nodeInfo
    assert info.kubeletVersion == f"v{kubernetes_version()}"
    assert info.containerRuntimeVersion == f"containerd://{containerd_version()}"
    ready = {c.type: c.status for c in node.status.conditions or ()}
    assert ready["Ready"] == "True"
    assert node.metadata is not None and node.metadata.labels is not None
    assert node.metadata.labels["unkai.dev/node-pool"] == "vms"
    assert "kwok.x-k8s.io/node" not in (node.metadata.annotations or {})  # a real kubelet

    pod = api_pod(client)
    assert pod.spec is not None and pod.spec.nodeName == NODE
    (container,) = pod.spec.containers
    assert container.image is not None and container.image.startswith("127.0.0.1:5000/api@sha256:")
    assert pod.status is not None and pod.status.phase == "Running"
    (status,) = pod.status.containerStatuses or ()
    assert status.ready, "the readiness probe never passed"  # run by the kubelet, for real
    assert status.imageID.endswith(container.image.rpartition("@")[2])


def test_the_memory_limit_is_the_containers_cgroup_and_it_runs_unprivileged(
    deployed: tuple[Path, str], client: Client
):
    project, _ = deployed
    pod = api_pod(client)
    assert pod.metadata is not None and pod.status is not None
    uid = str(pod.metadata.uid).replace("-", "_")
    (status,) = pod.status.containerStatuses or ()
    container_id = str(status.containerID).rpartition("://")[2]
    found = on_node(
        project,
        f"sudo cat /sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/"
        f"kubepods-burstable-pod{uid}.slice/cri-containerd-{container_id}.scope/memory.max",
    )
    assert int(found) == MEMORY_LIMIT
    users = on_node(project, "ps -o uid= -C perl").split()
    assert users and "0" not in users, users  # the restricted security context held


def test_the_worker_runs_beside_it_and_says_so(deployed: tuple[Path, str], client: Client):
    project, _ = deployed
    (pod,) = client.list(Pod, namespace="default", labels={"app.kubernetes.io/name": "worker"})
    assert pod.spec is not None and pod.spec.nodeName == NODE
    assert pod.status is not None and pod.status.phase == "Running"
    assert pod.metadata is not None and pod.metadata.name
    assert "worker alive on queue jobs" in kubectl(project, "logs", pod.metadata.name)


def kubectl(project: Path, *args: str) -> str:
    kubeconfig = project / ".unkai" / "clusters" / "apps" / "kubeconfig" / "admin.kubeconfig"
    argv = [kubernetes_bin() / "kubectl", f"--kubeconfig={kubeconfig}", "--request-timeout=60s"]
    return ok(run(*argv, *args, cwd=project, timeout=120))


def test_the_api_server_reaches_the_kubelet_for_exec_and_logs(
    deployed: tuple[Path, str], client: Client
):
    project, _ = deployed
    node = client.get(Node, NODE)
    addresses = {a.type: a.address for a in node.status.addresses or ()}  # type: ignore[union-attr]
    assert addresses["InternalIP"] == "10.218.0.2"  # its static address on the node network
    pod = api_pod(client).metadata.name  # type: ignore[union-attr]
    assert kubectl(project, "exec", pod, "--", "id", "-u").strip() == "10001"
    assert kubectl(project, "exec", pod, "--", "cat", "/proc/1/cgroup").strip() == "0::/"
    assert "api listening on 8080" in kubectl(project, "logs", pod, "--tail=50")


PROBE = r"""
use IO::Socket::INET;
sub ask {
    my ($to, $want, $code) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $to, Timeout => 10) or exit $code;
    print $s "GET / HTTP/1.0\r\n\r\n";
    my $r = join('', <$s>);
    exit $code + 1 unless $r =~ $want;
}
ask("@API_SERVICE@:80", qr{^HTTP/1.0 200.*ok}s, 2);
# The API server's TLS port answers plain HTTP with a 400 of its own.
ask("$ENV{KUBERNETES_SERVICE_HOST}:$ENV{KUBERNETES_SERVICE_PORT}",
    qr{HTTP request to an HTTPS server}, 4);
"""
"""Exit 0: ``api``'s Service answered; 2/3: it did not connect/answer; 4/5: the same
for the ``kubernetes`` Service (the API server, through the node's user network)."""


def test_services_answer_a_pod_through_kube_proxy_the_api_server_too(client: Client):
    service = client.get(Service, "api", namespace="default")
    assert service.spec is not None and service.spec.clusterIP
    image = api_pod(client).spec.containers[0].image  # type: ignore[union-attr]
    client.create(
        Pod(
            metadata=ObjectMeta(name="asks-api", namespace="default"),
            spec=PodSpec(
                restartPolicy="Never",
                containers=[
                    Container(
                        name="ask",
                        image=image,
                        command=[
                            "perl",
                            "-e",
                            PROBE.replace("@API_SERVICE@", service.spec.clusterIP),
                        ],
                        securityContext=SecurityContext(
                            runAsNonRoot=True, runAsUser=10001, allowPrivilegeEscalation=False
                        ),
                    )
                ],
            ),
        )
    )

    def ended() -> bool:
        status = client.get(Pod, "asks-api", namespace="default").status
        return status is not None and status.phase in ("Succeeded", "Failed")

    wait_for("the asking pod's end", ended, timeout=180)
    (status,) = client.get(Pod, "asks-api", namespace="default").status.containerStatuses or ()  # type: ignore[union-attr]
    client.delete(Pod, "asks-api", namespace="default")
    assert status.state is not None and status.state.terminated is not None
    assert status.state.terminated.exitCode == 0, PROBE


def test_a_second_up_changes_nothing_and_the_node_stays(deployed: tuple[Path, str], client: Client):
    project, first = deployed
    assert "vms: 1" in first  # the summary's Ready nodes per pool
    again = ok(unkai(project, "up", ENV, "--expect-no-changes"))
    assert "'same'" in again
    node = client.get(Node, NODE)
    assert node.metadata is not None and node.metadata.creationTimestamp is not None


def test_the_api_server_is_only_on_loopback(deployed: tuple[Path, str]):
    project, _ = deployed
    env_text = (project / "environments" / f"{ENV}.yaml").read_text()
    port = int(env_text.split("port: ")[1].split("}")[0])
    assert listening(port)
    listeners = ok(run("ss", "-Hltn", f"sport = :{port}", cwd=project)).split("\n")
    locals_ = {line.split()[3] for line in listeners if line.strip()}
    assert locals_ == {f"127.0.0.1:{port}"}, locals_


LOAD_SECONDS = 90


def test_the_hpa_scales_api_out_under_cpu_load_and_back_in(
    deployed: tuple[Path, str], client: Client
):
    """metrics-server scrapes the kubelet; the HPA reads metrics.k8s.io through the API
    server, adds a replica while a pod burns CPU, and removes it once the load stopped."""
    project, _ = deployed

    def hpa() -> HorizontalPodAutoscaler:
        return client.get(HorizontalPodAutoscaler, "api", namespace="default")

    def measured() -> bool:
        metrics = hpa().status.currentMetrics or ()  # type: ignore[union-attr]
        return any(
            m.resource and m.resource.current.averageUtilization is not None for m in metrics
        )

    wait_for("the HPA's first CPU reading", measured, timeout=180)
    assert hpa().status.currentReplicas == 1  # type: ignore[union-attr]
    pod = api_pod(client).metadata.name  # type: ignore[union-attr]
    # In the background, its streams closed: kubectl exec returns at once.
    burn = (
        "fork and exit; close STDIN; close STDOUT; close STDERR;"
        f" my $t = time + {LOAD_SECONDS}; 1 while time < $t"
    )
    loaded = time.monotonic()
    kubectl(project, "exec", pod, "--", "perl", "-e", burn)
    assert time.monotonic() - loaded < LOAD_SECONDS / 2, "kubectl exec waited for the load"

    def two_ready() -> bool:
        ready = [
            p for p in api_pods(client)
            for c in (p.status.conditions or ()) if c.type == "Ready" and c.status == "True"
        ]  # fmt: skip
        return len(ready) == 2

    wait_for("a second ready replica", two_ready, timeout=LOAD_SECONDS + 60)
    out = time.monotonic() - loaded
    assert hpa().status.desiredReplicas == 2  # type: ignore[union-attr]  # max_replicas
    ended = loaded + LOAD_SECONDS
    left = max(0.0, ended - time.monotonic())
    wait_for("back to one replica", lambda: len(api_pods(client)) == 1, timeout=left + 300)
    back = time.monotonic() - ended
    print(f"\nHPA: 2 replicas ready {out:.0f} s after the load began; 1 again"
          f" {back:.0f} s after it ended")  # fmt: skip
    assert hpa().status.desiredReplicas == 1  # type: ignore[union-attr]  # its status may lag
