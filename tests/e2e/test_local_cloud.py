"""The README's main job: the `local` environment deployed for real, then changed.

One deployment serves the whole module (VMs boot under TCG here, about a minute or
two each); the tests run in order and the last one destroys everything and checks that
nothing is left. Real pulumi, libvirt/QEMU, cloud-init; nothing is mocked.

The deployment is made the hard way, as the kill harness: ``unkai up local`` is killed
(SIGKILL to its whole process group) inside host configuration, image build, VM boot,
cluster start and workload apply, one ``up`` after another, each starting from what the
killed one left, with no manual step; then one ``up`` converges, and the tests that
follow show a second changes nothing and destroy leaves nothing.

``local``'s management cluster is ``apps``: its operator makes, heals and rolls the
members of the ``web`` group, so ``db`` is the VM the tests change through Pulumi.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest
import yaml
from lightkube import Client
from lightkube.models.core_v1 import Container, PodSpec, SecurityContext
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.core_v1 import Node, Pod, Service
from lightkube.types import PatchType
from pulumi import automation as auto

from unkai import render
from unkai.cli.cloud import cloud_stack
from unkai.console._app import REFRESH_SECONDS
from unkai.drivers import docker as engine
from unkai.drivers.kubernetes import (
    kube_client,
    plan_objects,
    read_instance_group,
    read_node_pool,
    read_objects,
    ref_of,
)
from unkai.drivers.libvirt import domain_fingerprint
from unkai.environments import load_environment
from unkai.kinds import KvmHostInputs
from unkai.kinds.containers import CONTENT_HASH_LABEL, HASH_LABEL
from unkai.model import REGISTRY
from unkai.provider.resources import ALL
from unkai.render import STORAGE_POOL
from unkai.toolchain import (
    LIBVIRTD,
    containerd_version,
    ensure_running,
    kubernetes_bin,
    kubernetes_version,
    leftovers,
    operator_key,
    state_dir,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from browser import Browser, browser, rows
from browser import console as serve_console
from commands import Killed, fault_when, kill_when, ok, run

ROOT = Path(__file__).resolve().parents[2]
UNKAI = [sys.executable, "-m", "unkai.cli"]
URI = "qemu:///system"
ENV = "local"


def domain(instance: str) -> str:
    """The libvirt name of an instance's domain: its project's and environment's first."""
    return f"unkai-{ENV}-{instance}"


UNKAI_BIN = Path(sys.executable).parent / "unkai"


def unkai(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return run(UNKAI_BIN, *args, cwd=ROOT, timeout=timeout)


def ssh(port: int, command: str) -> str:
    proc = subprocess.run(
        [
            "ssh", "-i", str(operator_key(ROOT)), "-p", str(port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
            "unkai@127.0.0.1", command,
        ],
        capture_output=True, text=True, timeout=120, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def domains() -> dict[str, int]:
    conn = libvirt.open(URI)
    try:
        return {d.name(): d.info()[0] for d in conn.listAllDomains()}
    finally:
        conn.close()


def pool_volumes() -> set[str]:
    """Volumes of unkai's pool; none when destroy removed the (empty) pool itself."""
    conn = libvirt.open(URI)
    try:
        try:
            pool = conn.storagePoolLookupByName(STORAGE_POOL)
        except libvirt.libvirtError:
            return set()
        pool.refresh(0)
        return set(pool.listVolumes())
    finally:
        conn.close()


KILL_POINTS = {
    # 1.5 s: Ansible is at its first tasks, the control plane (4 s in all) still starting.
    "host configuration": (re.compile(r"unkai:compute:KvmHost \S+ creating"), 1.5),
    # The build (ImageBuild) runs beside the host's configuration; the upload follows it.
    "image upload": (re.compile(r"unkai:compute:VmImage \S+ creating"), 0.2),
    "VM boot": (re.compile(r"unkai:compute:Instance \S+ creating"), 25.0),
    "cluster start": (re.compile(r"unkai:kubernetes:Cluster \S+ creating"), 1.0),
    "workload apply": (re.compile(r"unkai:kubernetes:Workload \S+ creating"), 0.1),
}
"""Where ``up`` is killed: the first line of a phase, then a delay to be inside it."""


KVM_HOST = KvmHostInputs.token

KINDS = {resource.inputs_model.token for resource in ALL}
"""The types of the provider's resources (components make nothing of their own)."""


def phase_type(point: str) -> str:
    return KILL_POINTS[point][0].pattern.split()[0]


@pytest.fixture(scope="module")
def kills() -> list[Killed]:
    """``unkai up local`` killed inside each phase, one run after another.

    Each run is killed in the first phase not yet hit that it enters; a kill hits every
    phase that was in progress at that moment (they run side by side).
    """
    remaining = dict(KILL_POINTS)
    killed: list[Killed] = []
    while remaining and len(killed) < len(KILL_POINTS):
        run_killed = kill_when(UNKAI_BIN, "up", ENV, cwd=ROOT, points=remaining)
        if run_killed is None:
            break  # it finished: no phase left that it entered
        killed.append(run_killed)
        for point in list(remaining):
            if any(r.startswith(phase_type(point) + " ") for r in run_killed.in_progress):
                del remaining[point]
    yield killed
    assert not remaining, f"no up was killed inside: {', '.join(remaining)}"


@pytest.fixture(scope="module")
def deployed(kills):
    result = unkai("up", ENV)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    yield result
    unkai("destroy", ENV)


@pytest.fixture(scope="module")
def stack(deployed) -> auto.Stack:
    return cloud_stack(ENV, ROOT)


def instances(stack: auto.Stack) -> dict[str, dict]:
    """The VMs Pulumi made (the lone instances), as ``up`` reports them."""
    return stack.outputs()["instances"].value


def members(stack: auto.Stack) -> set[str]:
    """The members the operator keeps, of every group."""
    groups = stack.outputs()["instance_groups"].value
    return {name for group in groups.values() for name in group["members"]}


def member_port(name: str) -> int:
    """The loopback port forwarded to a member's SSH (its slot's, as rendered)."""
    env = load_environment(ENV, root=ROOT)
    slot = next(i for i in env.all_instances() if i.name == name)
    return render.ssh_port(env, slot)


def test_each_killed_up_was_finished_by_the_next_with_no_manual_step(kills, deployed):
    """Every phase was hit; what a kill interrupted, a later ``up`` finished by itself."""
    assert {phase for k in kills for phase in KILL_POINTS if any(
        r.startswith(phase_type(phase) + " ") for r in k.in_progress
    )} == set(KILL_POINTS)  # fmt: skip
    outputs = [k.output for k in kills[1:]] + [deployed.stdout]
    for index, killed in enumerate(kills):
        after = outputs[index]
        # The next run released the dead run's lock and went on, unasked.
        assert f"released the lock of an interrupted run of {ENV}" in after, after[-3000:]
        later = "".join(outputs[index:])
        for resource in killed.in_progress:
            kind, name = resource.split(" ", 1)
            if kind not in KINDS:
                continue  # a component: it makes nothing of its own
            # Whatever it was doing (a create; an update, when an earlier killed run had
            # made it and left it drifted), a later run did it to the end.
            finished = re.search(
                rf"{re.escape(kind)} {re.escape(name)} (created|updated|replaced|deleted)", later
            )
            seen = [line for line in later.splitlines() if name in line and kind in line]
            assert finished, (
                f"{resource}, interrupted at {killed.point}, was never finished; its lines"
                f" from then on:\n" + "\n".join(seen[-20:])
            )
    # Nothing of a killed run still works on the stack.
    assert leftovers(ROOT, ENV) == []


def test_up_boots_every_vm_to_cloud_init_finished(deployed, stack):
    env = load_environment(ENV, root=ROOT)
    vms = instances(stack)
    # The operator makes the groups' members and the node pool's VMs (from their slots).
    assert set(vms) == set(env.instances)
    for name, vm in vms.items():
        assert vm["state"] == "running", name
        assert vm["host"] == "localhost"
        assert vm["accelerator"] in {"kvm", "tcg"}
        assert vm["boot_seconds"] > 0
        assert vm["ips"], f"{name} reported no address on its console"
    web = stack.outputs()["instance_groups"].value["web"]
    size = env.instance_groups["web"].size
    assert (web["target"], web["healthy"], web["updated"]) == (size, size, size), web
    slots = set(env.instance_groups["web"].slot_names())
    assert len(web["members"]) == size and set(web["members"]) <= slots, web
    names = set(vms) | set(web["members"])
    running = domains()
    assert {running.get(domain(n)) for n in names | {NODE}} == {libvirt.VIR_DOMAIN_RUNNING}
    # The pool's one node, and no VM in its spare slot (a rollout's surge).
    assert stack.outputs()["clusters"].value["apps"]["pools"] == {"default": 1}
    assert domain("apps-default-1") not in running
    # What came up is shown to the user.
    assert "instances of local" in deployed.stdout
    assert "instance groups of local" in deployed.stdout
    for name in names:
        assert name in deployed.stdout


def test_container_images_are_built_from_the_debian_base(deployed, stack):
    images = stack.outputs()["container_images"].value
    env = load_environment(ENV, root=ROOT)
    assert set(images) == set(env.container_images)
    for name, image in images.items():
        inspect = subprocess.run(
            ["docker", "image", "inspect", image["reference"], "--format",
             "{{.Id}} {{.Config.User}}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        image_id, user = inspect.stdout.split()
        assert image_id == image["image_id"], name
        assert user.split(":")[0] == "10001", f"{name} runs as {user}"
    assert "container images of local" in deployed.stdout


def test_measure_reads_the_overheads_the_plan_then_uses(deployed, stack):
    """`unkai measure`: QEMU's memory and the boot disks on the host, the containers' RSS."""
    out = ok(unkai("measure", ENV))
    assert "measured overheads of local" in out
    kept = json.loads((ROOT / ".unkai" / "measurements" / f"{ENV}.json").read_text())
    assert set(kept["instances"]) == set(instances(stack))
    for name, vm in kept["instances"].items():
        # A lean guest of 1 GiB after boot: more than the kernel, less than it was given.
        assert 60 < vm["memory_mb"] < 2048, (name, vm)  # TCG adds its translation cache
        # The overlay and its image of 4 GiB, zstd-compressed (local's Debian: 170 MiB).
        assert 120 < vm["os_disk_mb"] < 4096, (name, vm)
    assert set(kept["container_images"]) == {"api", "worker"}
    for name, image in kept["container_images"].items():
        assert 0 < image["memory_mb"] < 64 and 0 < image["size_mb"] <= 80, (name, image)
    assert 0 < kept["density"]["container_base_image_mb"]["value"] <= 80
    plan = " ".join(ok(unkai("plan", ENV)).split())
    memory = kept["density"]["vm_guest_memory_mb"]["value"]
    assert f"vm_guest_memory_mb = {memory}: measured " in plan
    assert "container_memory_mb" in plan and "assumed" not in plan.split("Overheads:")[1]


def is_within(rendered: object, live: object) -> bool:
    """Whether every field of ``rendered`` is in ``live`` with the same value (pure).

    The API server adds to what is applied (status, defaults, managed fields) and leaves
    out a field whose value is empty (Go's ``omitempty``: ``0``, ``false``, ``""``), but
    keeps every other field it was given: a rendered manifest is applied when it is
    contained in the live object, an empty field counting as the absent one.
    """
    if isinstance(rendered, dict):
        return isinstance(live, dict) and all(
            is_within(v, live[k]) if k in live else v in (0, "", None, [], {})
            for k, v in rendered.items()
        )
    if isinstance(rendered, list):
        return (
            isinstance(live, list)
            and len(live) == len(rendered)
            and all(is_within(r, v) for r, v in zip(rendered, live, strict=True))
        )
    return rendered == live


def test_every_layer_applied_is_what_render_wrote(stack, tmp_path):
    """``unkai render local`` against what libvirt, the guests' seeds, Ansible, Docker and
    the API server have, layer by layer.

    Byte for byte: each VM's seed files (read out of its seed ISO in the pool) and the
    host variables Ansible ran with (the KvmHost's input, which the provider hands to
    Ansible as its ``host_vars`` file). After a documented normalisation: a domain's
    definition (``domain_fingerprint``: libvirt adds a UUID, addresses and defaults), a
    Dockerfile (the image's content-hash label is the hash the rendered text carries,
    and its tag starts with it), a manifest (every field rendered is the live object's;
    an image pushed to unkai's registry is rendered by its tag and applied by the digest
    that tag names there, which only the push makes).
    """
    out = tmp_path / "rendered"
    ok(unkai("render", ENV, "--out", str(out)))
    # The operator makes a group's members and the node pool's VM from their slots'
    # rendering; a slot it keeps free (for a surge or a scale-out) is rendered and made
    # by nobody yet.
    made = set(instances(stack)) | members(stack) | {NODE}
    compared = 0

    for rendered in sorted((out / "libvirt" / "domains").glob("*.xml")):
        if rendered.stem not in made:
            continue
        compared += 1
        live = subprocess.run(
            ["virsh", "-c", URI, "dumpxml", "--inactive", domain(rendered.stem)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        assert domain_fingerprint(live) == domain_fingerprint(rendered.read_text()), rendered

    assert compared == len(made), (compared, made)
    for seed in sorted((out / "cloud-init").iterdir()):
        if seed.name not in made:
            continue
        iso = subprocess.run(
            ["virsh", "-c", URI, "vol-path", "--pool", STORAGE_POOL,
             f"unkai-{ENV}-{seed.name}-seed.iso"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        extracted = tmp_path / "seeds" / seed.name
        subprocess.run(
            ["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", str(extracted)],
            check=True, capture_output=True,
        )  # fmt: skip
        for file in sorted(seed.iterdir()):
            assert (extracted / file.name).read_bytes() == file.read_bytes(), file

    resources = stack.export_stack().deployment["resources"]
    hosts = {r["inputs"]["name"]: r["inputs"] for r in resources if r["type"] == KVM_HOST}
    for rendered in sorted((out / "ansible" / "host_vars").glob("*.yml")):
        assert hosts[rendered.stem]["host_vars"] == rendered.read_text(), rendered

    images = stack.outputs()["container_images"].value
    for folder in sorted((out / "docker").iterdir()):
        content_hash = HASH_LABEL.search((folder / "Dockerfile").read_text())
        assert content_hash is not None, folder
        reference = images[folder.name]["reference"]
        labels = json.loads(
            subprocess.run(
                ["docker", "image", "inspect", reference, "--format", "{{json .Config.Labels}}"],
                check=True, capture_output=True, text=True,
            ).stdout
        )  # fmt: skip
        assert labels[CONTENT_HASH_LABEL] == content_hash[1], folder
        assert content_hash[1].startswith(reference.rsplit(":", 1)[1]), reference

    kubeconfig = Path(stack.outputs()["clusters"].value["apps"]["kubeconfig"])
    for folder in sorted((out / "kubernetes" / "apps").iterdir()):
        if folder.is_file():  # a NodePool or InstanceGroup object, cluster-scoped
            declared = yaml.safe_load(folder.read_text())
            read = read_instance_group if declared["kind"] == "InstanceGroup" else read_node_pool
            found = read(kubeconfig=kubeconfig, name=declared["metadata"]["name"])
            # A group's slots are the domain and cloud-init files compared above.
            spec = {k: v for k, v in declared["spec"].items() if k != "slots"}
            assert found is not None and is_within(spec, dict(found.spec)), folder
            continue
        namespace = "default"  # where unkai applies a workload (WorkloadArgs.namespace)
        manifests = {f.name: f.read_text() for f in folder.iterdir()}
        objects = plan_objects(manifests, namespace=namespace)
        live = read_objects(
            kubeconfig=kubeconfig, refs=[ref_of(o) for o in objects], namespace=namespace
        )
        for obj in objects:
            assert is_within(pinned(obj), live[ref_of(obj)]), ref_of(obj)


def pinned(manifest: dict) -> dict:
    """``manifest`` with each image in unkai's registry named by the digest of its tag there."""
    if manifest["kind"] != "Deployment":
        return manifest
    out = json.loads(json.dumps(manifest))
    with engine.session() as client:
        for container in out["spec"]["template"]["spec"]["containers"]:
            repository = container["image"].rpartition(":")[0]
            if repository.partition("/")[0] == REGISTRY:
                digest = engine.registry_digest(client, container["image"])
                container["image"] = f"{repository}@{digest}"
    return out


def test_ssh_with_the_key_from_cloud_init(stack):
    ports = {name: int(vm["ssh_port"]) for name, vm in instances(stack).items()}
    ports.update({name: member_port(name) for name in members(stack)})
    for name, port in sorted(ports.items()):
        out = ssh(port, "hostname; cloud-init status --wait --long")
        assert out.splitlines()[0] == name
        assert "status: done" in out
    # unkai ssh checks each guest's host key against those it printed at first boot: a
    # lone instance's from the stack, a member's from its group's status.
    for name in sorted(ports):
        assert ok(unkai("ssh", ENV, name, "hostname")).strip() == name


def test_instance_secret_is_in_the_guest_and_nowhere_else(deployed, stack, tmp_path):
    """db's DB_PASSWORD and the web members' WEB_TOKEN (the operator's members get it
    from the management cluster): root-only in the guests; no plaintext in state,
    render, logs (the operator's too) or on the host."""
    value = stack.get_config("db-password").value
    token = stack.get_config("web-token").value
    assert len(value) >= 16 and len(token) >= 16
    guests = {"db": (int(instances(stack)["db"]["ssh_port"]), f"DB_PASSWORD={shlex.quote(value)}")}
    for member in members(stack):
        guests[member] = (member_port(member), f"WEB_TOKEN={shlex.quote(token)}")
    for name, (port, line) in guests.items():
        installed = ssh(
            port, "sudo stat -c '%a %U' /etc/unkai/secrets.env; sudo cat /etc/unkai/secrets.env"
        )
        assert installed.splitlines()[0] == "600 root", name
        assert line in installed, name
        unprivileged = ssh(port, "cat /etc/unkai/secrets.env 2>&1 || true")
        assert line not in unprivileged, f"readable by unkai in {name}"

    rendered = tmp_path / "rendered"
    assert unkai("render", ENV, "--out", str(rendered)).returncode == 0
    places = [
        *[p for p in (ROOT / ".unkai" / "state").rglob("*") if p.is_file()],
        *[p for p in rendered.rglob("*") if p.is_file()],
        # The host outside the guest disks: the seed now in the pool, libvirt's logs.
        *[p for p in Path(pool_path()).glob("*seed*")],
        *[p for p in Path("/var/log/libvirt").rglob("*") if p.is_file()],
        # The control plane's and the operator's logs.
        *[p for p in (ROOT / ".unkai" / "clusters").rglob("*.log") if p.is_file()],
    ]
    for name in guests:
        assert any(p.name.startswith(f"{domain(name)}-seed") for p in places), name
    assert any(p.name == "unkai-operator.log" for p in places), "operator log not looked at"
    for place in places:
        data = place.read_bytes()
        for secret in (value, token):
            assert secret.encode() not in data, f"plaintext secret in {place}"
    logs = deployed.stdout + deployed.stderr
    assert value not in logs and token not in logs


def pool_path() -> str:
    conn = libvirt.open(URI)
    try:
        xml = conn.storagePoolLookupByName(STORAGE_POOL).XMLDesc(0)
    finally:
        conn.close()
    return xml.split("<path>", 1)[1].split("</path>", 1)[0]


# --- The node pool's VM: a real kubelet runs the workloads ---------------------------

NODE = "apps-default-0"
NODE_IP = "10.217.0.2"  # the first address of the `nodes` network below its DHCP range
MEMORY_LIMIT = 256 * 1024 * 1024  # api's limits.memory


@pytest.fixture(scope="module")
def kubeconfig(stack) -> Path:
    return Path(stack.outputs()["clusters"].value["apps"]["kubeconfig"])


@pytest.fixture(scope="module")
def client(kubeconfig: Path) -> Iterator[Client]:
    kube = kube_client(kubeconfig)
    try:
        yield kube
    finally:
        kube.close()


def kubectl(kubeconfig: Path, *args: str) -> str:
    argv = [kubernetes_bin() / "kubectl", f"--kubeconfig={kubeconfig}", "--request-timeout=60s"]
    return ok(run(*argv, *args, cwd=ROOT, timeout=120))


def on_node(command: str) -> str:
    """``command`` run on the node VM through ``unkai ssh`` (its printed host key pinned)."""
    return ok(unkai("ssh", ENV, NODE, "sh", "-c", shlex.quote(command), timeout=300))


def pods_of(client: Client, workload: str) -> list[Pod]:
    return list(client.list(Pod, namespace="default", labels={"app.kubernetes.io/name": workload}))


def pod_of(client: Client, workload: str) -> Pod:
    (pod,) = pods_of(client, workload)
    return pod


def wait_for(what: str, check: Callable[[], bool], *, timeout: float) -> float:
    """Seconds until ``check()`` held, polled every second; fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout:.0f} s"
        time.sleep(1)
    return time.monotonic() - start


def test_the_node_vm_joined_and_runs_the_pods_pulled_by_digest(client: Client):
    node = client.get(Node, NODE)
    assert node.status is not None and node.status.nodeInfo is not None
    info = node.status.nodeInfo
    assert info.kubeletVersion == f"v{kubernetes_version()}"
    assert info.containerRuntimeVersion == f"containerd://{containerd_version()}"
    assert {c.type: c.status for c in node.status.conditions or ()}["Ready"] == "True"
    assert node.metadata is not None and node.metadata.labels is not None
    assert node.metadata.labels["unkai.dev/node-pool"] == "default"
    assert "kwok.x-k8s.io/node" not in (node.metadata.annotations or {})  # a real kubelet
    for workload in ("api", "worker"):
        pod = pod_of(client, workload)
        assert pod.spec is not None and pod.spec.nodeName == NODE
        (container,) = pod.spec.containers
        assert container.image is not None
        assert container.image.startswith(f"127.0.0.1:5000/{workload}@sha256:"), container.image
        assert pod.status is not None and pod.status.phase == "Running", workload
        (status,) = pod.status.containerStatuses or ()
        assert status.ready, f"{workload} never became ready"  # api's probe, by the kubelet
        assert status.imageID.endswith(container.image.rpartition("@")[2])


def test_the_memory_limit_is_the_containers_cgroup_and_it_runs_unprivileged(client: Client):
    pod = pod_of(client, "api")
    assert pod.metadata is not None and pod.status is not None
    uid = str(pod.metadata.uid).replace("-", "_")
    (status,) = pod.status.containerStatuses or ()
    container_id = str(status.containerID).rpartition("://")[2]
    found = on_node(
        f"sudo cat /sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/"
        f"kubepods-burstable-pod{uid}.slice/cri-containerd-{container_id}.scope/memory.max"
    )
    assert int(found) == MEMORY_LIMIT
    users = on_node("ps -o uid= -C perl").split()
    assert users and "0" not in users, users  # the restricted security context held


def test_the_api_server_reaches_the_kubelet_for_exec_and_logs(client: Client, kubeconfig: Path):
    node = client.get(Node, NODE)
    addresses = {a.type: a.address for a in node.status.addresses or ()}  # type: ignore[union-attr]
    assert addresses["InternalIP"] == NODE_IP  # its static address on the node network
    api = pod_of(client, "api").metadata.name  # type: ignore[union-attr]
    assert kubectl(kubeconfig, "exec", api, "--", "id", "-u").strip() == "10001"
    assert kubectl(kubeconfig, "exec", api, "--", "cat", "/proc/1/cgroup").strip() == "0::/"
    assert "api listening on 8080" in kubectl(kubeconfig, "logs", api, "--tail=50")
    worker = pod_of(client, "worker").metadata.name  # type: ignore[union-attr]
    assert "worker alive on queue jobs" in kubectl(kubeconfig, "logs", worker)


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
    image = pod_of(client, "api").spec.containers[0].image  # type: ignore[union-attr]
    command = ["perl", "-e", PROBE.replace("@API_SERVICE@", service.spec.clusterIP)]
    unprivileged = SecurityContext(
        runAsNonRoot=True, runAsUser=10001, allowPrivilegeEscalation=False
    )
    client.create(
        Pod(
            metadata=ObjectMeta(name="asks-api", namespace="default"),
            spec=PodSpec(
                restartPolicy="Never",
                containers=[
                    Container(
                        name="ask", image=image, command=command, securityContext=unprivileged
                    )
                ],
            ),
        )
    )
    try:

        def ended() -> bool:
            status = client.get(Pod, "asks-api", namespace="default").status
            return status is not None and status.phase in ("Succeeded", "Failed")

        wait_for("the asking pod's end", ended, timeout=180)
        pod = client.get(Pod, "asks-api", namespace="default")
    finally:
        client.delete(Pod, "asks-api", namespace="default", grace_period=0)
    (status,) = pod.status.containerStatuses or ()  # type: ignore[union-attr]
    assert status.state is not None and status.state.terminated is not None
    assert status.state.terminated.exitCode == 0, PROBE


def test_the_api_server_listens_on_loopback_alone(kubeconfig: Path):
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    port = int(server.rsplit(":", 1)[1])
    listeners = ok(run("ss", "-Hltn", f"sport = :{port}", cwd=ROOT)).splitlines()
    assert {line.split()[3] for line in listeners if line.strip()} == {f"127.0.0.1:{port}"}


LOAD_SECONDS = 90


def test_the_hpa_scales_api_out_under_cpu_load_and_back_in(client: Client, kubeconfig: Path):
    """metrics-server scrapes the kubelet; the HPA reads metrics.k8s.io through the API
    server, adds an api pod while one burns CPU, and removes it once the load stopped."""

    def hpa() -> HorizontalPodAutoscaler:
        return client.get(HorizontalPodAutoscaler, "api", namespace="default")

    def measured() -> bool:
        metrics = hpa().status.currentMetrics or ()  # type: ignore[union-attr]
        return any(
            m.resource and m.resource.current.averageUtilization is not None for m in metrics
        )

    wait_for("the HPA's first CPU reading", measured, timeout=180)
    assert hpa().status.currentReplicas == 1  # type: ignore[union-attr]
    pod = pod_of(client, "api").metadata.name  # type: ignore[union-attr]
    # In the background, its streams closed: kubectl exec returns at once.
    burn = (
        "fork and exit; close STDIN; close STDOUT; close STDERR;"
        f" my $t = time + {LOAD_SECONDS}; 1 while time < $t"
    )
    loaded = time.monotonic()
    kubectl(kubeconfig, "exec", pod, "--", "perl", "-e", burn)
    assert time.monotonic() - loaded < LOAD_SECONDS / 2, "kubectl exec waited for the load"

    def two_ready() -> bool:
        ready = [
            p for p in pods_of(client, "api")
            for c in (p.status.conditions or ()) if c.type == "Ready" and c.status == "True"
        ]  # fmt: skip
        return len(ready) == 2

    wait_for("a second ready api pod", two_ready, timeout=LOAD_SECONDS + 60)
    out = time.monotonic() - loaded
    assert hpa().status.desiredReplicas == 2  # type: ignore[union-attr]  # max_replicas
    ended = loaded + LOAD_SECONDS
    left = max(0.0, ended - time.monotonic())
    wait_for("back to one api pod", lambda: len(pods_of(client, "api")) == 1, timeout=left + 300)
    back = time.monotonic() - ended
    print(f"\nHPA: 2 api pods ready {out:.0f} s after the load began; 1 again"
          f" {back:.0f} s after it ended")  # fmt: skip
    assert hpa().status.desiredReplicas == 1  # type: ignore[union-attr]  # its status may lag


def test_second_up_changes_nothing(stack):
    preview = stack.preview(expect_no_changes=True)
    assert set(preview.change_summary) == {"same"}
    again = unkai("up", ENV, "--expect-no-changes")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]


def test_a_second_up_of_one_environment_is_refused_with_the_holder_or_waits(stack):
    """A running ``up`` holds the stack: another is refused naming it, or waits with --wait.

    The first ``up``'s engine is paused (SIGSTOP) once it holds the lock, so the second
    surely meets it; resumed, it finishes, and the waiting one runs after it.
    """
    locks = state_dir(ROOT) / ".pulumi" / "locks"
    first = subprocess.Popen(
        [UNKAI_BIN, "up", ENV], cwd=ROOT, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    holder = None
    try:
        deadline = time.monotonic() + 120
        while holder is None and time.monotonic() < deadline and first.poll() is None:
            held = [p for p in locks.rglob("*.json") if p.parent.name == ENV]
            holder = json.loads(held[0].read_text())["pid"] if held else None
            time.sleep(0.05)
        assert holder is not None, "the first up never took the lock"
        os.kill(holder, signal.SIGSTOP)
        refused = unkai("up", ENV)
        assert refused.returncode != 0
        said = refused.stdout + refused.stderr
        assert re.search(rf"another `up` of {ENV} is running \(pid {holder} since ", said), said
        assert "Traceback" not in said
        waiting = subprocess.Popen(
            [UNKAI_BIN, "up", ENV, "--wait", "--expect-no-changes"], cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        time.sleep(8)
        assert waiting.poll() is None, "--wait did not wait"
        os.kill(holder, signal.SIGCONT)
        waited, _ = waiting.communicate(timeout=600)
        assert waiting.returncode == 0, waited[-3000:]
        assert f"another `up` of {ENV} is running (pid {holder}" in waited
        assert "waiting for it to end" in waited
    finally:
        if holder is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(holder, signal.SIGCONT)
        out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, out[-3000:]


CONSOLE_PORT = 18470
SCREENSHOTS = ROOT / ".unkai" / "console-screenshots"
"""Where the console test leaves a screenshot of each page, for review."""


@pytest.fixture(scope="module")
def console(stack) -> Iterator[tuple[str, Browser]]:
    """``unkai console local`` on its own port, and a headless Chromium to look at it."""
    with serve_console(UNKAI_BIN, ENV, root=ROOT, port=CONSOLE_PORT) as base, browser() as page:
        yield base, page


def test_the_console_shows_the_cloud_as_the_cli_does_and_never_a_secret(stack, console):
    """Each page in a real browser: the hosts' bars are ``unkai plan``'s, the VMs are
    libvirt's, the group's members are ``unkai status``'s; no page holds a secret; a
    screenshot of each is written."""
    base, chromium = console
    plan = json.loads(ok(unkai("plan", ENV, "--json")))
    status = json.loads(ok(unkai("status", ENV, "--json")))["clusters"]["apps"]
    secrets = [stack.get_config(name).value for name in ("db-password", "web-token")]
    pages = {}
    for page in ("hosts", "hosts/localhost", "instances", "groups", "clusters", "plan",
                 "history"):  # fmt: skip
        chromium.open(f"{base}/{page}")
        pages[page] = chromium.html()
        chromium.screenshot(SCREENSHOTS / f"{page.replace('/', '-')}.png")
        for secret in secrets:
            assert secret not in pages[page], f"a secret on the {page} page"
        assert "Traceback" not in pages[page] and 'class="error"' not in pages[page], page

    chromium.open(f"{base}/hosts")
    (row,) = rows(chromium, "table.hosts")
    (capacity,) = plan["capacity"]["hosts"]
    cpus = capacity["cpus"]
    assert row[0] == "localhost" and f"{cpus['used']}/{cpus['capacity']} vCPU" in row[2], row
    running = [n for n, s in domains().items() if s == libvirt.VIR_DOMAIN_RUNNING]
    assert row[5] == f"{len(running)}/{len(running)}", (row, running)

    chromium.open(f"{base}/instances")
    shown = {r[0]: r for r in rows(chromium, "table")}
    assert {domain(name) for name in shown} == {d for d in domains() if d.startswith(domain(""))}
    web = status["groups"][domain("web")]
    for member in web["members"]:
        assert shown[member["name"]][3:5] == ["web", member["phase"]], shown[member["name"]]
    assert shown["db"][1:4] == ["localhost", "running", "-"], shown["db"]

    chromium.open(f"{base}/groups")
    listed = {r[0]: r for r in rows(chromium, "table.members")}
    assert set(listed) == {m["name"] for m in web["members"]}, listed
    assert f"{web['healthy']} healthy" in str(chromium.evaluate("document.body.innerText"))

    # Nodes and workloads as unkai status reads them: the VM node, every pod Ready on it.
    chromium.open(f"{base}/clusters")
    nodes = [(n["name"], "simulated" if n["simulated"] else "real", "yes" if n["ready"] else "no")
             for n in status["nodes"]]  # fmt: skip
    assert [(r[0], r[2], r[3]) for r in rows(chromium, "table.nodes")] == nodes
    assert nodes == [("apps-default-0", "real", "yes")], nodes
    workloads = {r[0]: r for r in rows(chromium, "table.workloads")}
    assert set(workloads) == {w["name"] for w in status["workloads"]} == {"api", "worker"}
    for w in status["workloads"]:
        assert w["ready"] == w["replicas"] == len(w["pods"]), w
        assert workloads[w["name"]][2] == f"{w['ready']}/{w['replicas']}", workloads
        for pod in w["pods"]:
            assert f"{pod['name']} ({pod['node']}, Running)" in workloads[w["name"]][4], pod

    chromium.open(f"{base}/history")
    updates = [r for r in rows(chromium, "table.history") if len(r) == 7]  # not the steps
    assert updates[0][2] == "succeeded", updates[0]
    assert ["update", "succeeded"] in [u[1:3] for u in updates], updates
    print(f"console screenshots: {SCREENSHOTS}")


def test_a_member_deleted_behind_our_back_is_made_again_by_the_operator(stack, console):
    """No ``up``: the operator sees the member gone (a missing member, which the size
    brings back), makes it again in its slot, says so in an Event and in ``unkai
    status``; a refresh then finds nothing changed."""
    kubeconfig = Path(stack.outputs()["clusters"].value["apps"]["kubeconfig"])
    member = sorted(members(stack))[-1]
    before = read_instance_group(kubeconfig=kubeconfig, name=domain("web"))
    assert before is not None
    made = {m.name: m.created for m in before.members}
    # The console's instances page, open in the browser, follows without a reload.
    base, chromium = console
    chromium.open(f"{base}/instances")
    chromium.evaluate("window.notReloaded = true")
    failed = time.monotonic()
    # Undefined first (it runs on, transient), then stopped: the operator, which acts on
    # a stopped domain at once, never meets it half-deleted.
    for action in ("undefine", "destroy"):
        subprocess.run(
            ["virsh", "-c", URI, action, domain(member)], check=True, capture_output=True
        )
    seen = None
    while seen is None and time.monotonic() < failed + 30:
        vms = {r[0]: r for r in rows(chromium, "table")}
        # Gone, stopped, or made again and not healthy yet (the operator is quick).
        if member not in vms or vms[member][2] != "running" or vms[member][4] != "healthy":
            seen = time.monotonic() - failed
        time.sleep(0.5)
    assert seen is not None, f"the console still showed {member} running after 30 s"
    assert chromium.evaluate("window.notReloaded") is True
    print(f"the console showed {member} gone {seen:.1f} s after it was deleted")
    healed = None
    deadline = failed + 600
    while time.monotonic() < deadline:
        found = read_instance_group(kubeconfig=kubeconfig, name=domain("web"))
        assert found is not None
        again = {m.name: m.created for m in found.members}
        if (
            again.get(member, made[member]) != made[member]
            and found.settled
            and domains().get(domain(member)) == libvirt.VIR_DOMAIN_RUNNING
        ):
            healed = time.monotonic() - failed
            break
        time.sleep(2)
    assert healed is not None, f"{member} was not made again within 600 s"
    print(f"{member} healthy again {healed:.0f} s after it was deleted")
    # The member made again printed new host keys; its group's status has them.
    assert ok(unkai("ssh", ENV, member, "hostname")).strip() == member
    shown = json.loads(ok(unkai("status", ENV, "--json")))["clusters"]["apps"]
    web = shown["groups"][domain("web")]  # the object: named after its owner
    assert (web["healthy"], web["settled"]) == (web["size"], True), web
    assert {(m["name"], m["phase"]) for m in web["members"]} >= {(member, "healthy")}, web
    said = [e for e in shown["events"] if e["reason"] in ("MembersCreated", "MemberReady")]
    assert {e["reason"] for e in said if member in e["message"]} == {
        "MembersCreated",
        "MemberReady",
    }, shown["events"]
    stack.refresh()
    assert set(stack.preview(expect_no_changes=True).change_summary) == {"same"}


def test_a_vm_deleted_behind_our_back_is_seen_and_recreated(stack):
    for action in ("destroy", "undefine"):
        subprocess.run(["virsh", "-c", URI, action, domain("db")], check=True, capture_output=True)
    refreshed = stack.refresh()
    assert refreshed.summary.resource_changes.get("delete") == 1
    preview = stack.preview()
    assert preview.change_summary.get("create") == 1
    stack.up()
    assert domains().get(domain("db")) == libvirt.VIR_DOMAIN_RUNNING
    port = int(instances(stack)["db"]["ssh_port"])
    assert ssh(port, "hostname").strip() == "db"


def _restart_libvirtd(_group: int) -> None:
    """Stop libvirtd (SIGTERM, as a restart or an upgrade does) and start it again."""
    for pid in _pids("libvirtd"):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _pids("libvirtd") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ensure_running(LIBVIRTD) == "started"


def _pids(name: str) -> list[int]:
    found = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_libvirtd_restarted_during_an_up_is_said_and_the_next_up_converges(stack):
    """libvirtd restarted while a VM boots: the up ends with a sentence naming the VM and
    the fault, the guests already running run on, and the next up finishes the VM."""
    for action in ("destroy", "undefine"):
        subprocess.run(["virsh", "-c", URI, action, domain("db")], check=True, capture_output=True)
    stack.refresh()
    cut = fault_when(
        UNKAI_BIN, "up", ENV, cwd=ROOT, delay=5.0, fault=_restart_libvirtd,
        pattern=re.compile(r"unkai:compute:Instance local-db creating .*waiting for cloud-init"),
    )  # fmt: skip
    said = cut.stdout
    assert cut.returncode != 0, said[-3000:]
    assert "unkai:compute:Instance (local-db)" in said, said[-3000:]
    assert f"the connection to libvirtd at {URI} was lost" in said, said[-3000:]
    for leak in ("Traceback", "libvirtError", "<class"):
        assert leak not in said, said[-3000:]
    running = domains()
    for member in members(stack):  # untouched
        assert running[domain(member)] == libvirt.VIR_DOMAIN_RUNNING, member
    again = unkai("up", ENV)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert domains().get(domain("db")) == libvirt.VIR_DOMAIN_RUNNING
    port = int(instances(stack)["db"]["ssh_port"])
    assert ssh(port, "hostname").strip() == "db"
    assert set(stack.preview(expect_no_changes=True).change_summary) == {"same"}


def _kill_api_server(_group: int) -> None:
    """SIGKILL the kube-apiserver of local's cluster (found by its state folder)."""
    folder = ROOT / ".unkai" / "clusters" / "apps"
    found = subprocess.run(
        ["pgrep", "-f", f"kube-apiserver .*{folder}/"], capture_output=True, text=True
    )
    pids = [int(pid) for pid in found.stdout.split()]
    assert pids, f"no kube-apiserver of {folder} runs"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def test_the_api_server_killed_during_an_apply_is_said_and_the_next_up_restarts_it(stack):
    """The API server dies while worker's rollout is waited for (more replicas than the node
    takes, so the wait is still on): the up ends with a sentence naming the workload and
    the fault; the next up, with the old value, starts the API server again and converges."""
    overrides = {"workloads": {"worker": {"replicas": 60}}}
    stack.set_config("unkai:overrides", auto.ConfigValue(json.dumps(overrides)))
    try:
        cut = fault_when(
            UNKAI_BIN, "up", ENV, cwd=ROOT, delay=2.0, fault=_kill_api_server,
            pattern=re.compile(r"unkai:kubernetes:Workload local-worker updating"),
        )  # fmt: skip
    finally:
        stack.remove_config("unkai:overrides")
    said = cut.stdout
    assert cut.returncode != 0, said[-3000:]
    assert "unkai:kubernetes:Workload (local-worker)" in said, said[-3000:]
    assert "the API server did not answer" in said, said[-3000:]
    for leak in ("Traceback", "ConnectError", "<class"):
        assert leak not in said, said[-3000:]
    again = unkai("up", ENV)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "unkai:kubernetes:Cluster local-apps updated" in again.stdout, again.stdout[-3000:]
    # The cut apply had left 60 replicas in the cluster: the up saw it (no refresh) and
    # applied 1 again.
    assert "unkai:kubernetes:Workload local-worker updated" in again.stdout, again.stdout[-3000:]
    workloads = stack.outputs()["workloads"].value
    assert workloads["worker"]["available"] == workloads["worker"]["replicas"] == 1, workloads
    stack.refresh()  # what the cluster has is what the state says
    assert set(stack.preview(expect_no_changes=True).change_summary) == {"same"}


def test_a_definition_edited_by_hand_is_read_back_and_a_memory_change_updates_in_place(stack):
    """``virsh setmem --config`` behind unkai's back, then a larger machine type: refresh
    reads the live definition, the preview shows db's memory going from the 640 MiB set
    by hand to the 1280 declared, as an update, and ``up`` updates db in place."""
    before = instances(stack)["db"]
    uuid_before = subprocess.run(
        ["virsh", "-c", URI, "domuuid", domain("db")], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(
        ["virsh", "-c", URI, "setmem", domain("db"), str(640 * 1024), "--config"],
        check=True, capture_output=True,
    )  # fmt: skip
    stack.refresh()
    overrides = {"instances": {"db": {"machine_type": "custom-1-1280"}}}
    stack.set_config("unkai:overrides", auto.ConfigValue(json.dumps(overrides)))
    try:
        lines: list[str] = []
        preview = stack.preview(diff=True, on_output=lines.append)
        shown = re.sub(r"\x1b\[[0-9;]*m", "", "".join(lines))  # colours, if any
        assert preview.change_summary.get("update") == 1, shown
        assert "replace" not in preview.change_summary
        assert re.search(r"memory_mb\s*:\s*640\s*=>\s*1280", shown), shown
        assert "domain_xml" in shown
        result = stack.up()
        assert result.summary.resource_changes.get("update") == 1
        uuid_after = subprocess.run(
            ["virsh", "-c", URI, "domuuid", domain("db")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert uuid_after == uuid_before, "the domain was replaced, not updated"
        dumped = subprocess.run(
            ["virsh", "-c", URI, "dumpxml", "--inactive", domain("db")],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        assert "<currentMemory unit='KiB'>1310720</currentMemory>" in dumped, dumped
        mem_kib = int(ssh(int(before["ssh_port"]), "grep MemTotal /proc/meminfo").split()[1])
        assert mem_kib > 1024 * 1024, "the guest does not see the new memory"
    finally:
        stack.remove_config("unkai:overrides")


def test_an_image_volume_deleted_by_hand_is_uploaded_again(stack):
    image = next(v for v in pool_volumes() if v.startswith(f"unkai-{ENV}-debian-12-"))
    subprocess.run(
        ["virsh", "-c", URI, "vol-delete", image, "--pool", STORAGE_POOL],
        check=True, capture_output=True,
    )  # fmt: skip
    stack.refresh()
    assert stack.preview().change_summary.get("create") == 1
    stack.up()
    assert image in pool_volumes()
    assert set(stack.preview(expect_no_changes=True).change_summary) == {"same"}


def test_a_data_volume_outlives_a_replace_of_its_instance(stack):
    """db's data disk is a Volume: replacing db (new cloud-init data) re-attaches it."""
    port = int(instances(stack)["db"]["ssh_port"])
    ssh(
        port,
        "sudo mkfs.ext4 -q -F /dev/vdb && sudo mount /dev/vdb /mnt"
        " && echo kept-across-replace | sudo tee /mnt/keep >/dev/null && sudo umount /mnt",
    )
    uuid_before = subprocess.run(
        ["virsh", "-c", URI, "domuuid", domain("db")], capture_output=True, text=True, check=True
    ).stdout.strip()
    # A key the lean image acts on: it writes the file, so the instance is replaced.
    written = {"write_files": [{"path": "/etc/unkai-replaced", "content": "yes\n"}]}
    overrides = {"instances": {"db": {"user_data": written}}}
    stack.set_config("unkai:overrides", auto.ConfigValue(json.dumps(overrides)))
    try:
        events: list[auto.EngineEvent] = []
        preview = stack.preview(on_event=events.append)
        assert preview.change_summary.get("replace") == 1, preview.change_summary
        said = [e.diagnostic_event.message for e in events if e.diagnostic_event]
        assert any("replace because user_data changed" in m for m in said), said
        stack.up()
    finally:
        stack.remove_config("unkai:overrides")
    uuid_after = subprocess.run(
        ["virsh", "-c", URI, "domuuid", domain("db")], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert uuid_after != uuid_before, "db was not replaced"
    kept = ssh(port, "sudo mount /dev/vdb /mnt && cat /mnt/keep; sudo umount /mnt")
    assert kept.strip() == "kept-across-replace"
    assert ssh(port, "cat /etc/unkai-replaced").strip() == "yes"  # the new user data ran


def _drift() -> tuple[int, dict]:
    proc = unkai("drift", ENV, "--json")
    assert proc.returncode in (0, 2), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout)


def test_drift_names_each_layer_changed_by_hand_apart_from_changes_not_applied(stack, console):
    """One change by hand per layer: ``unkai drift`` reports each in its layer (exit 2),
    a change only declared is pending, not drift; after ``up``, nothing (exit 0)."""
    status, report = _drift()
    assert (status, report["drift"]) == (0, []), report
    conn = libvirt.open(URI)
    try:
        folder = re.search(
            r"<path>(.*)</path>", conn.storagePoolLookupByName(STORAGE_POOL).XMLDesc()
        )
    finally:
        conn.close()
    assert folder is not None
    os.chmod(folder.group(1), 0o755)  # the playbook makes it 0711
    subprocess.run(
        ["virsh", "-c", URI, "setmem", domain("db"), str(640 * 1024), "--config"],
        check=True, capture_output=True,
    )  # fmt: skip
    # Every tag of it: the local one unkai builds and the one it pushes from.
    api_image = stack.outputs()["container_images"].value["api"]["image_id"]
    subprocess.run(["docker", "rmi", "--force", api_image], check=True, capture_output=True)
    kubeconfig = stack.outputs()["clusters"].value["apps"]["kubeconfig"]
    kubectl = str(kubernetes_bin() / "kubectl")
    # worker: api's replicas are its HPA's, which would take a hand-made count back.
    subprocess.run(
        [kubectl, "--kubeconfig", kubeconfig, "scale", "deployment", "worker", "--replicas=3"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [kubectl, "--kubeconfig", kubeconfig, "set", "image", "deployment/worker",
         "worker=example.invalid/edited:1"],
        check=True, capture_output=True,
    )  # fmt: skip
    # Declared, not applied: the web group grows (its object, which up applies).
    overrides = {"instance_groups": {"web": {"size": 3}}}
    stack.set_config("unkai:overrides", auto.ConfigValue(json.dumps(overrides)))
    try:
        status, report = _drift()
    finally:
        stack.remove_config("unkai:overrides")
    drift = {(c["layer"], c["resource"]): c for c in report["drift"]}
    assert status == 2 and report["drifted"], report
    host = drift["hosts", "local-host-localhost"]
    assert host["tasks"] == ["Create the storage pool's folder"], host
    vm = drift["vms", "local-db"]
    assert vm["properties"]["memory_mb"] == {"live": 640, "declared": 1024}, vm
    assert drift["images", "local-api"]["op"] == "gone"
    assert drift["kubernetes", "local-api"]["follows"]  # its image is built again
    worker = drift["kubernetes", "local-worker"]
    assert worker["properties"]["replicas"] == {"live": 3, "declared": 1}, worker
    # The image, a field unkai declares: a server-side apply's dry run would set it back.
    assert worker["tasks"] == ["Deployment/worker: spec.template.spec.containers[0].image"], worker
    assert ("vms", "local-web") not in drift  # declared, not applied: pending
    pending = {c["resource"]: c for c in report["pending"]}
    # db: the memory and data volume tests left their overrides applied (up restores it).
    assert set(pending) == {"local-db", "local-web"}, report["pending"]
    assert "size" in pending["local-web"]["properties"], pending["local-web"]
    # db, its data volume and the web group's object (the operator's members are its
    # own); both VM images (built and uploaded) and both container images; the cluster,
    # its node pool's object (the operator's node is its own) and the two workloads; the
    # node's network.
    assert report["checked"] == {
        "hosts": 1, "networks": 1, "images": 6, "vms": 3, "kubernetes": 4,
    }  # fmt: skip
    shown = unkai("drift", ENV)
    assert shown.returncode == 2
    assert "memory_mb: 640 → 1024" in shown.stdout, shown.stdout
    # The console shows the latest report, as the command printed it.
    base, chromium = console
    chromium.open(f"{base}/drift")
    found = {(r[0], r[1], r[2]): r for r in rows(chromium, "table.drift")}
    assert "memory_mb: 640 → 1024" in found["vms", "local-db", "drift"][4], found
    assert found["images", "local-api", "drift"][3] == "created again", found
    # The report kept is the last run's, with the group's size override removed.
    assert ("vms", "local-db", "not applied yet") in found, found
    assert ("vms", "local-web", "not applied yet") not in found, found
    chromium.screenshot(SCREENSHOTS / "drift.png")
    ok(unkai("refresh", ENV))
    ok(unkai("up", ENV))
    status, report = _drift()
    assert (status, report["drift"], report["pending"]) == (0, [], []), report


def test_a_node_vm_that_dies_is_replaced_by_the_operator_and_up_sees_no_change(
    stack, client: Client
):
    """The node's VM is killed (``virsh destroy``): the operator deletes the node and its
    VM, makes the VM again from its slot and joins it; the workloads run on it again, and
    a preview finds nothing to change."""
    before = client.get(Node, NODE)
    assert before.metadata is not None
    ok(run("virsh", "-c", URI, "destroy", domain(NODE), cwd=ROOT, timeout=60))
    # The node controller would say so after its grace (2 min, set for kwok's thousands
    # of nodes); the test says it now, as the controller would.
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lost = {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
            "lastHeartbeatTime": now, "lastTransitionTime": now}  # fmt: skip
    client.patch(
        Node.Status, NODE, {"status": {"conditions": [lost]}}, patch_type=PatchType.STRATEGIC
    )
    start = time.monotonic()

    def replaced() -> bool:
        found = next(iter(client.list(Node, fields={"metadata.name": NODE})), None)
        if found is None or found.metadata.uid == before.metadata.uid:
            return False
        conditions = {c.type: c.status for c in found.status.conditions or ()}
        return conditions.get("Ready") == "True"

    wait_for("a new Ready node in its place", replaced, timeout=900)
    took = time.monotonic() - start
    print(f"node repair, lost to a Ready replacement: {took:.0f} s")
    status = json.loads(ok(unkai("status", ENV, "--json")))["clusters"]["apps"]
    assert "NodeRepair" in {e["reason"] for e in status["events"]}, status["events"]
    assert len(status["pools"]["default"]["repairs"]) >= 1
    running = domains()
    assert running.get(domain(NODE)) == libvirt.VIR_DOMAIN_RUNNING, running
    for workload in ("api", "worker"):
        wait_for(
            f"{workload} running on the new node",
            lambda w=workload: any(
                p.spec is not None and p.spec.nodeName == NODE and p.status is not None
                and p.status.phase == "Running" for p in pods_of(client, w)
            ),
            timeout=600,
        )  # fmt: skip
    # What the operator did is its status: no change for Pulumi.
    preview = stack.preview(expect_no_changes=True)
    assert set(preview.change_summary) == {"same"}


def test_a_rollout_advances_on_the_open_groups_page(stack, console):
    """A new template for web: ``unkai up`` rolls the group one member at a time (surge 1),
    and the groups page, open in the browser, follows the rollout to its end with no
    reload; the history page then says what that ``up`` changed."""
    base, chromium = console
    chromium.open(f"{base}/groups")
    chromium.evaluate("window.notReloaded = true")
    progress = (
        "(() => { const p = document.querySelector('progress');"
        " return p ? [p.value, p.max] : null; })()"
    )
    overrides = {"instance_templates": {"web": {"metadata": {"rollout": "2"}}}}
    stack.set_config("unkai:overrides", auto.ConfigValue(json.dumps(overrides)))
    seen: list[tuple[int, int]] = []
    start = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            rolled = pool.submit(unkai, "up", ENV)
            while not rolled.done():
                shown = chromium.evaluate(progress)
                if shown and (not seen or seen[-1] != tuple(shown)):
                    seen.append(tuple(shown))
                    print(f"{time.monotonic() - start:6.1f} s: {shown[0]} of {shown[1]} updated")
                time.sleep(1)
            assert "'update': 1" in ok(rolled.result())
    finally:
        stack.remove_config("unkai:overrides")
    print(f"the rollout of web took {time.monotonic() - start:.1f} s")
    target = len(members(stack))
    deadline = time.monotonic() + 3 * REFRESH_SECONDS
    while seen[-1] != (target, target) and time.monotonic() < deadline:
        time.sleep(0.5)
        if (shown := tuple(chromium.evaluate(progress))) != seen[-1]:
            seen.append(shown)
    assert seen[0] == seen[-1] == (target, target), seen
    # From the new template on, it moved through every step: none updated, each member
    # in turn, all; never back.
    began = next(i for i, (value, total) in enumerate(seen) if value < total)
    steps = [value for value, _ in seen[began:]]
    assert steps == sorted(steps) and set(steps) == set(range(target + 1)), seen
    assert chromium.evaluate("window.notReloaded") is True
    chromium.screenshot(SCREENSHOTS / "groups-rolled.png")
    # The history page: the newest update, and below it what it did to which resource.
    chromium.open(f"{base}/history")
    newest, steps = rows(chromium, "table.history")[:2]
    assert newest[1:3] == ["update", "succeeded"], newest
    assert "updated local-web (InstanceGroupManager): " in steps[1], steps
    chromium.screenshot(SCREENSHOTS / "history.png")


def test_destroy_leaves_nothing_behind(stack):
    env = load_environment(ENV, root=ROOT)
    names = {i.name for i in env.all_instances()}  # every slot of a group too
    references = [i["reference"] for i in stack.outputs()["container_images"].value.values()]
    result = unkai("destroy", ENV)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not {domain(n) for n in names} & set(domains())
    assert not {v for v in pool_volumes() if v.startswith(f"unkai-{ENV}-")}
    qemu = subprocess.run(["pgrep", "-f", "qemu-system"], capture_output=True, text=True)
    assert qemu.stdout.strip() == "", "a QEMU process outlived destroy"
    for reference in references:
        gone = subprocess.run(["docker", "image", "inspect", reference], capture_output=True)
        assert gone.returncode != 0, f"{reference} outlived destroy"
