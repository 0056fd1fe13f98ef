"""The kinds' declarations (unkai.kinds) and everything derived from them.

One declaration per resource kind: the provider's check, diff and schema and the
components' props all come from it. These tests hold the pieces together: a valid
example of every kind survives its own check; replace reasons and secrets sit where they
mean something; values unknown at preview pass; errors speak the explainer's language;
the package schema matches the models; and — the one that catches a component and its
provider drifting apart — the props a stack registers pass the provider's check.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pulumi
import pytest
from pulumi.provider.experimental import provider as p

from unkai import kinds
from unkai.components import (
    ContainerImage,
    KindResource,
    ManagedGroupArgs,
    NodePool,
    NodePoolArgs,
    VmNode,
    VmNodeArgs,
    Workload,
    WorkloadArgs,
    cluster_inputs,
    clusters_root,
    container_image_inputs,
    image_build_inputs,
    instance_inputs,
    kvm_host_inputs,
    manager_inputs,
    network_inputs,
    pinned_image_ref,
    vm_image_inputs,
    volume_inputs,
)
from unkai.environments import load_environment
from unkai.errors import ConfigError
from unkai.kinds import (
    KINDS,
    UNKNOWN,
    Inputs,
    Replace,
    Secret,
    State,
    check_inputs,
    component_props,
    input_names,
    output_names,
    replace_reasons,
    secret_names,
)
from unkai.placement import place
from unkai.provider import Props, UnkaiProvider, unwrap, wrap
from unkai.provider._schema import package_schema
from unkai.provider.resources import ALL
from unkai.render import STORAGE_POOL_PATH, render_manifests
from unkai.toolchain import kubernetes_version

ROOT = Path(__file__).resolve().parents[3]
HANDLERS = {handler.token: handler for handler in ALL}
PAIRS = [(handler.inputs_model, handler.state_model) for handler in ALL]
SHA = "0123456789abcdef" * 4
NETWORK_XML = "<network>\n  <name>unkai-lan</name>\n</network>\n"
DOMAIN_XML = "<domain type='kvm'>\n  <name>db</name>\n</domain>\n"

# A valid example of every kind's inputs: required fields, and a few optional ones set.
EXAMPLES: dict[type[Inputs], dict[str, Any]] = {
    kinds.LocalFileInputs: {"path": "/tmp/unkai/f.txt", "content": "hello", "mode": "600"},
    kinds.KvmHostInputs: {
        "name": "kvm-1", "connection": "ssh", "address": "10.0.0.5", "ssh_user": "ops",
        "networks": [{"name": "unkai-lan", "xml": NETWORK_XML}],
        "host_vars": (
            "ansible_connection: ssh\nansible_host: 10.0.0.5\nkvm_host_accelerator: auto\n"
            "kvm_host_pool_name: unkai\nkvm_host_pool_path: /var/lib/libvirt/images/unkai\n"
        ),
    },
    kinds.ImageBuildInputs: {
        "name": "debian-12", "version": "12.0.1", "packages": ["vim", "curl", "vim"],
        "profile": "lean",
    },
    kinds.VmImageInputs: {
        "environment": "local", "name": "debian-12", "version": "12.0.1",
        "packages": ["vim", "curl", "vim"],
        "libvirt_uri": "qemu:///system", "boot_dir": "/var/lib/unkai/boot/debian-12",
        "playbook": "/srv/project/playbooks/web.yml", "playbook_digest": SHA,
    },
    kinds.NetworkInputs: {
        "name": "unkai-lan", "libvirt_uri": "qemu:///system", "xml": NETWORK_XML,
    },
    kinds.VolumeInputs: {
        "name": "db-data.qcow2", "size_gb": 2, "host": "localhost",
        "libvirt_uri": "qemu:///system",
    },
    kinds.InstanceInputs: {
        "name": "db", "host": "localhost", "libvirt_uri": "qemu:///system",
        "domain_xml": DOMAIN_XML, "user_data": "#cloud-config\n", "meta_data": "",
        "network_config": "", "image_volume_path": "/var/lib/libvirt/images/unkai/d.qcow2",
        "disks": [{"volume": "db-root.qcow2", "size_gb": 4}], "seed_volume": "db-seed.iso",
        "console_log": "/var/log/unkai/db.log", "ssh_port": 2200, "memory_mb": 1024,
        "vcpus": 1,
    },
    kinds.ContainerImageInputs: {
        "name": "team/api", "dockerfile": "FROM unkai/debian:12\nUSER 10001\n", "tag": "t1",
        "base": {"name": "debian-12", "version": "12", "suite": "bookworm"},
        "registry": "127.0.0.1:5000",
    },
    kinds.ClusterInputs: {
        "name": "apps", "version": kubernetes_version(), "port": 6443,
        "state_dir": "/srv/project/.unkai/clusters/apps",
    },
    kinds.NodePoolInputs: {
        "cluster": "apps", "kubeconfig": "/k", "cluster_ca": "sha256:ca", "name": "default",
        "size": 2, "cpu": "2", "memory": "2048Mi", "machine_type": "e2-small",
        "labels": {"tier": "web"}, "taints": [{"key": "gpu", "effect": "NoSchedule"}],
    },
    kinds.VmNodeInputs: {
        "cluster": "apps", "kubeconfig": "/k", "cluster_ca": "sha256:ca", "version": "1.36.3",
        "endpoint": "10.0.2.2:6443", "name": "apps-vms-0", "pool": "vms", "vm_uuid": "u-1",
        "ssh_host": "127.0.0.1", "ssh_port": 2203, "ssh_host_keys": ["ssh-ed25519 AAAA"],
        "taints": [{"key": "gpu", "effect": "NoSchedule"}],
    },
    kinds.WorkloadInputs: {
        "kubeconfig": "/k", "cluster_ca": "sha256:ca", "name": "api",
        "manifests": {"deployment.yaml": "kind: Deployment\n"}, "replicas": 1,
        "secret_name": "api", "secret_values": {"DB_PASSWORD": "x"},
    },
    kinds.InstanceGroupManagerInputs: {
        "cluster": "apps", "kubeconfig": "/k", "cluster_ca": "sha256:ca",
        "name": "unkai-local-web", "size": 2, "min_size": 1, "max_size": 3,
        "manifest": "kind: InstanceGroup\n", "image_volumes": {"localhost": "/v/i.qcow2"},
    },
}  # fmt: skip


def _models() -> Iterator[type[Inputs]]:
    """Every model class the kinds declare: inputs, states and the nested ones."""
    for value in vars(kinds).values():
        if isinstance(value, type) and issubclass(value, Inputs) and value not in (Inputs, State):
            yield value


# --- (a) round trip -------------------------------------------------------------------


def test_the_handlers_serve_every_kind_once():
    assert {state for _, state in PAIRS} == set(KINDS)
    assert len(HANDLERS) == len(ALL) == len(KINDS)
    for inputs, state in PAIRS:
        assert issubclass(state, inputs) and issubclass(state, State)
        assert inputs.token.startswith("unkai:") and inputs.token.count(":") == 2
        assert input_names(state) == input_names(inputs)
    assert set(EXAMPLES) == {inputs for inputs, _ in PAIRS}


@pytest.mark.parametrize(("inputs", "state"), PAIRS, ids=lambda k: getattr(k, "token", ""))
def test_a_valid_example_round_trips_through_check(inputs, state):
    checked = check_inputs(inputs, EXAMPLES[inputs])
    assert list(checked) == list(input_names(inputs))  # every input, defaults filled
    json.dumps(checked)  # JSON-able, as it crosses to the engine
    model = inputs.model_validate(checked)
    assert model.model_dump(mode="json") == checked
    assert check_inputs(inputs, checked) == checked  # idempotent: a second check is a no-op
    # A state of those inputs alone is valid: every output is optional.
    assert state.model_validate(checked).model_dump(mode="json", include=set(checked)) == checked
    assert set(output_names(state)).isdisjoint(checked)


def test_check_normalises_as_the_declaration_says():
    assert check_inputs(kinds.LocalFileInputs, EXAMPLES[kinds.LocalFileInputs])["mode"] == "0600"
    image = check_inputs(kinds.VmImageInputs, EXAMPLES[kinds.VmImageInputs])
    assert image["packages"] == ["curl", "vim"]
    host = check_inputs(kinds.KvmHostInputs, EXAMPLES[kinds.KvmHostInputs])
    assert host["libvirt_uri"] == "qemu+ssh://ops@10.0.0.5/system"
    # Numbers arrive from the engine as floats.
    pool = check_inputs(kinds.NodePoolInputs, {**EXAMPLES[kinds.NodePoolInputs], "size": 2.0})
    assert pool["size"] == 2 and isinstance(pool["size"], int)


# --- (b) replace reasons and secrets ------------------------------------------------


def test_replace_reasons_are_sentences_on_inputs_only():
    for _, state in PAIRS:
        inputs = set(input_names(state))
        for name, field in state.model_fields.items():
            for marker in field.metadata:
                if isinstance(marker, Replace):
                    assert name in inputs, f"{state.__name__}.{name}: Replace on an output"
                    assert marker.reason.strip(), f"{state.__name__}.{name}: empty reason"
        reasons = replace_reasons(state)
        assert set(reasons) <= inputs
        assert all(isinstance(r, str) and len(r.split()) >= 3 for r in reasons.values())
    # Nested models are values of one input: replacing is decided by that input.
    for model in _models():
        if not hasattr(model, "token"):
            assert not any(
                isinstance(m, Replace) for f in model.model_fields.values() for m in f.metadata
            ), model.__name__


def test_replace_reasons_are_the_same_for_inputs_and_state():
    for inputs, state in PAIRS:
        assert replace_reasons(state) == replace_reasons(inputs)


def test_secrets_are_declared_where_they_are_meant():
    declared = {
        (model.__name__, name)
        for model in _models()
        for name, field in model.model_fields.items()
        if any(isinstance(m, Secret) for m in field.metadata)
    }
    assert {("WorkloadInputs", "secret_values"), ("WorkloadState", "secret_values")} <= declared
    assert secret_names(kinds.WorkloadInputs) == {"secret_values"}
    assert secret_names(kinds.WorkloadState) == {"secret_values"}
    assert secret_names(kinds.InstanceState) == {"secret_env"}
    assert secret_names(kinds.InstanceGroupManagerState) == {"secret_env"}
    for inputs, state in PAIRS:
        if inputs not in (
            kinds.WorkloadInputs,
            kinds.InstanceInputs,
            kinds.InstanceGroupManagerInputs,
        ):
            assert not secret_names(state), inputs.token


# --- (c) unknown values at preview ----------------------------------------------------


@pytest.mark.parametrize(("inputs", "state"), PAIRS, ids=lambda k: getattr(k, "token", ""))
def test_unknown_values_pass_check_and_stay_unknown(inputs, state):
    example = EXAMPLES[inputs]
    for name in input_names(inputs):
        checked = check_inputs(inputs, {**example, name: UNKNOWN})
        assert checked[name] is UNKNOWN, name
        assert set(checked) == set(input_names(inputs)), name
    every = check_inputs(inputs, dict.fromkeys(example, UNKNOWN))
    assert all(every[name] is UNKNOWN for name in example)


def test_a_value_unknown_deep_inside_passes_as_a_whole():
    disks = [{"volume": UNKNOWN, "size_gb": 4}]
    checked = check_inputs(kinds.InstanceInputs, {**EXAMPLES[kinds.InstanceInputs], "disks": disks})
    assert checked["disks"] == disks and checked["disks"][0]["volume"] is UNKNOWN
    # The known rest is still validated.
    with pytest.raises(ConfigError) as err:
        check_inputs(
            kinds.InstanceInputs, {**EXAMPLES[kinds.InstanceInputs], "disks": disks, "vcpus": 0}
        )
    assert err.value.key_path == "vcpus"


# --- (d) errors -----------------------------------------------------------------------


def test_a_bad_nested_value_names_its_dotted_key_path():
    disks = [{"volume": "db-root.qcow2", "size_gb": 0}]
    with pytest.raises(ConfigError) as err:
        check_inputs(kinds.InstanceInputs, {**EXAMPLES[kinds.InstanceInputs], "disks": disks})
    assert err.value.key_path == "disks.0.size_gb"
    assert str(err.value) == "disks.0.size_gb: Input should be greater than or equal to 1 (got 0)"


def test_an_unknown_key_gets_a_did_you_mean():
    with pytest.raises(ConfigError) as err:
        check_inputs(kinds.InstanceInputs, {**EXAMPLES[kinds.InstanceInputs], "memroy_mb": 1})
    assert err.value.key_path == "memroy_mb"
    assert "unknown key (did you mean 'memory_mb'?)" in str(err.value)
    assert err.value.allowed is not None and "memory_mb" in err.value.allowed
    nested = [{"key": "gpu", "efect": "NoSchedule", "effect": "NoSchedule"}]
    with pytest.raises(ConfigError) as err:
        check_inputs(kinds.NodePoolInputs, {**EXAMPLES[kinds.NodePoolInputs], "taints": nested})
    assert err.value.key_path == "taints.0.efect"
    assert "did you mean 'effect'?" in str(err.value)


def test_several_problems_are_reported_together_under_the_kind():
    with pytest.raises(ConfigError) as err:
        check_inputs(kinds.LocalFileInputs, {"path": "relative", "mode": "rwx"})
    problems = getattr(err.value, "problems", ())
    assert {problem.key_path for problem in problems} == {"path", "content", "mode"}
    assert str(err.value).startswith("inputs of unkai:local:File are invalid: 3 problems")


def test_a_secret_is_never_echoed_in_an_error():
    values = {**EXAMPLES[kinds.WorkloadInputs], "secret_values": {"DB_PASSWORD": 424242}}
    with pytest.raises(ConfigError) as err:
        check_inputs(kinds.WorkloadInputs, values)
    assert err.value.key_path == "secret_values.DB_PASSWORD"
    assert "424242" not in str(err.value)


# --- (e) the package schema -----------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return package_schema(PAIRS, version="1.2.3")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_schema_has_a_resource_per_token_with_the_models_properties(schema):
    assert schema["name"] == "unkai" and schema["version"] == "1.2.3"
    assert set(schema["resources"]) == set(HANDLERS)
    for inputs, state in PAIRS:
        spec = schema["resources"][inputs.token]
        assert list(spec["inputProperties"]) == list(input_names(inputs))
        assert set(spec["properties"]) == set(state.model_fields)
        assert set(spec["requiredInputs"]) == {
            n for n in input_names(inputs) if inputs.model_fields[n].is_required()
        }
        assert set(spec["requiredInputs"]) <= set(spec["required"]) <= set(spec["properties"])
        assert spec["description"]
        for name, prop in spec["inputProperties"].items():
            assert prop.get("description"), f"{inputs.token}.{name} has no description"


def test_schema_marks_the_secrets(schema):
    workload = schema["resources"][kinds.WorkloadInputs.token]
    assert workload["inputProperties"]["secret_values"]["secret"] is True
    assert workload["properties"]["secret_values"]["secret"] is True
    secret = {
        (token, name)
        for token, spec in schema["resources"].items()
        for part in ("inputProperties", "properties")
        for name, prop in spec[part].items()
        if prop.get("secret")
    }
    assert secret == {
        (kinds.WorkloadInputs.token, "secret_values"),
        (kinds.InstanceInputs.token, "secret_env"),
        (kinds.InstanceGroupManagerInputs.token, "secret_env"),
    }


def test_every_schema_ref_resolves(schema):
    refs = set(_refs(schema))
    assert refs  # the nested models are referred to, not inlined
    for ref in refs:
        if ref == "pulumi.json#/Any":
            continue
        assert ref.startswith("#/types/"), ref
        assert ref.removeprefix("#/types/") in schema["types"], ref
    for token, spec in schema["types"].items():
        assert spec["type"] == "object" and spec["properties"], token
        assert set(spec["required"]) <= set(spec["properties"]), token


def test_the_provider_serves_that_schema(schema):
    provider = UnkaiProvider(ALL, version="1.2.3")
    served = asyncio.run(provider.get_schema(p.GetSchemaRequest(0)))
    assert json.loads(served.schema) == schema


# --- (f) the props a stack registers pass the provider's check ------------------------

OPERATOR_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBsYWNlaG9sZGVyLWtleS1mb3ItdGVzdHM op"
KUBECONFIG = "/srv/project/.unkai/clusters/apps/admin.kubeconfig"  # a Cluster's output
CA = "sha256:" + SHA  # a Cluster's ca_fingerprint output


class _Captured:
    """What a component would have registered: its kind's inputs and state model."""

    def __init__(self, name: str, inputs: Inputs, state: type[State], opts: Any = None) -> None:
        self.resource_name, self.inputs, self.state = name, inputs, state


def _image_stand_in(name: str, tag: str) -> ContainerImage:
    """A ContainerImage whose outputs are known (as after ``up``) for a Workload to pin."""
    image = ContainerImage.__new__(ContainerImage)
    image.reference = f"{name}:{tag}"  # type: ignore[assignment]
    image.repo_digest = "sha256:" + SHA  # type: ignore[assignment]
    image.image_id = "sha256:" + SHA  # type: ignore[assignment]
    return image


def _stack_resources(env_name: str, *, kubernetes: bool) -> list[tuple[str, Inputs, type[State]]]:
    """Every resource the cloud stack of ``env_name`` registers, with known placeholders.

    Mirrors :class:`unkai.components.Cloud`: the placed instances' hosts, the images and
    libvirt networks each host needs, the instances, the container images, the clusters
    with their node pools (when ``kubernetes``), the workloads; and the smoke stack's
    file. Outputs of other resources (accelerator, image volume, kubeconfig, CA, image
    reference) are known placeholder values. NodePool and Workload are built by their
    own constructors, with registration captured instead of sent to an engine.
    """
    name, _, variant = env_name.partition("+")
    # ``<env>+unmanaged``: no management cluster, so ``up`` makes its groups' members.
    # ``<env>+simulated``: its cluster's pool is simulated nodes (KWOK).
    overrides = {
        "": None,
        "unmanaged": {"settings": {"management_cluster": None}},
        "simulated": SIMULATED_POOL,
    }[variant]
    env = load_environment(name, root=ROOT, overrides=overrides)
    placement = place(env)
    instances = [
        i.model_copy(update={"ssh_keys": (*i.ssh_keys, OPERATOR_KEY)}) for i in env.all_instances()
    ]
    host_of = {i.name: env.hosts[placement.host_of(i.name)] for i in instances}
    found: list[tuple[str, Inputs, type[State]]] = []
    for host_name in sorted({h.name for h in host_of.values()}):
        found.append(
            (host_name, kvm_host_inputs(env.hosts[host_name], env=env), kinds.KvmHostState)
        )
    for image in sorted({i.image for i in instances}):
        build = image_build_inputs(env.vm_images[image], root=ROOT)
        found.append((f"{image}-build", build, kinds.ImageBuildState))
    for image, host in sorted({(i.image, host_of[i.name].name) for i in instances}):
        built = vm_image_inputs(
            env.vm_images[image], env.hosts[host], environment=env.name, root=ROOT
        )
        found.append((f"{image}-{host}", built, kinds.VmImageState))
    for net, host in sorted({(n, host_of[i.name].name) for i in instances for n in i.networks}):
        if env.networks[net].mode != "user":
            built_net = network_inputs(env.networks[net], env.hosts[host], environment=env.name)
            found.append((f"{net}-{host}", built_net, kinds.NetworkState))
    managed = env.management_cluster is not None
    for instance in instances:
        if managed and instance.group is not None:
            continue  # the operator makes it, from its group's object (below)
        host = host_of[instance.name]
        volume = f"{STORAGE_POOL_PATH}/{instance.image}-{SHA[:12]}.qcow2"
        built_vm = instance_inputs(
            instance, env=env, host=host, accelerator="tcg", image_volume_path=volume
        )
        found.append((instance.name, built_vm, kinds.InstanceState))
        for data in volume_inputs(instance, host, environment=env.name).values():
            found.append((data.name, data, kinds.VolumeState))
    images = {}
    for name, image in sorted(env.container_images.items()):
        built_image = container_image_inputs(image, env)
        images[name] = _image_stand_in(built_image.name, built_image.tag)
        found.append((name, built_image, kinds.ContainerImageState))
    for cluster in env.clusters.values() if kubernetes else ():
        built_cluster = cluster_inputs(cluster, state_root=clusters_root(ROOT))
        found.append((cluster.name, built_cluster, kinds.ClusterState))
        for pool in cluster.node_pools:
            if pool.kind == "vm":
                for node in pool.node_names(cluster.name):
                    vm = SimpleNamespace(uuid="u-" + node, ssh_host="127.0.0.1", ssh_port=2299,
                                         ssh_host_keys=["ssh-ed25519 AAAA"])  # fmt: skip
                    res = VmNode(node, VmNodeArgs(cluster, KUBECONFIG, CA, pool, node, vm))  # type: ignore[arg-type]
                    found.append((res.resource_name, res.inputs, res.state))
                continue
            res: Any = NodePool(pool.name, NodePoolArgs(cluster.name, KUBECONFIG, CA, pool, env))
            found.append((res.resource_name, res.inputs, res.state))
    for name, workload in sorted(env.workloads.items()) if kubernetes else ():
        args = WorkloadArgs(
            workload=workload,
            env=env,
            kubeconfig=KUBECONFIG,
            cluster_ca=CA,
            image=images[workload.image],
            secret_values={var: pulumi.Output.secret("s3cret") for var in workload.secret_env},
        )
        res = Workload(name, args)
        found.append((res.resource_name, res.inputs, res.state))
    for group_name, group in sorted(env.instance_groups.items()) if managed and kubernetes else ():
        slots = tuple((i, host_of[i.name]) for i in instances if i.group == group_name)
        manager = manager_inputs(
            ManagedGroupArgs(
                group=group, slots=slots, env=env, cluster=env.management_cluster or "",
                kubeconfig=KUBECONFIG, cluster_ca=CA,
                accelerators={h.name: "tcg" for _, h in slots},
                images={(i.image, h.name): f"{STORAGE_POOL_PATH}/{i.image}.q" for i, h in slots},
                secrets={
                    var: pulumi.Output.secret("s3cret")
                    for var in env.instance_templates[group.template].secrets
                },
            )
        )  # fmt: skip
        found.append((group_name, manager, kinds.InstanceGroupManagerState))
    # The smoke stack's file: its content a secret Output, built with model_construct.
    smoke = kinds.LocalFileInputs.model_construct(
        path=str(ROOT / ".unkai" / "smoke" / f"{env_name}.txt"),
        content=pulumi.Output.secret("hello"),  # type: ignore[arg-type]  # an Output
        mode="0600",
    )
    found.append(("greeting", smoke, kinds.LocalFileState))
    return found


async def _registered(inputs: Inputs, state: type[State]) -> tuple[dict[str, Any], set[str]]:
    """The props the engine receives: outputs resolved, ``None`` dropped (as the SDK does)."""
    values: dict[str, Any] = {}
    secrets: set[str] = set()
    for name, value in component_props(inputs, state).items():
        output = pulumi.Output.from_input(value)
        plain = await output.future()
        if await output.is_secret():
            secrets.add(name)
        if plain is not None:  # pulumi's serializer treats None as absent
            values[name] = plain
    return values, secrets


# The Cluster kind is a control plane on this machine (loopback only): only local's
# cluster is one. The other environments' stacks are built for their compute layer.
KUBERNETES = {"local": True, "local+unmanaged": True, "local+simulated": True, "dev": False}

SIMULATED_POOL = {
    "clusters": {
        "apps": {"node_pools": [{"name": "default", "machine_type": "e2-small", "size": 1}]}
    },
}
"""What ``local+simulated`` changes of ``local``: its cluster's pool is KWOK's."""


@cache
def stack_props(env_name: str) -> tuple[tuple[str, str, dict[str, Any], frozenset[str]], ...]:
    """``(token, name, props, secret names)`` of every resource of the stack."""

    async def build() -> list[tuple[str, str, dict[str, Any], frozenset[str]]]:
        out = []
        for name, inputs, state in _stack_resources(env_name, kubernetes=KUBERNETES[env_name]):
            values, secrets = await _registered(inputs, state)
            out.append((inputs.token, name, values, frozenset(secrets)))
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(KindResource, "__init__", _Captured.__init__)
        return tuple(asyncio.run(build()))


def test_the_local_stack_registers_every_kind():
    tokens = {token for token, *_ in stack_props("local")}
    # local's pool is one VM: a VmNode instead of a NodePool; its group's members are the
    # operator's, or instances when no operator keeps them.
    assert tokens == set(HANDLERS) - {kinds.NodePoolInputs.token}
    unmanaged = {token for token, *_ in stack_props("local+unmanaged")}
    assert unmanaged == set(HANDLERS) - {
        kinds.NodePoolInputs.token,
        kinds.InstanceGroupManagerInputs.token,
    }
    assert kinds.NetworkInputs.token in {token for token, *_ in stack_props("dev")}
    simulated = {token for token, *_ in stack_props("local+simulated")}
    assert kinds.NodePoolInputs.token in simulated and kinds.VmNodeInputs.token not in simulated


@pytest.mark.parametrize("env_name", ["local", "local+unmanaged", "local+simulated", "dev"])
def test_stack_props_pass_the_provider_check(env_name):
    for token, name, values, secrets in stack_props(env_name):
        # What the engine hands the provider: numbers as floats, secrets flagged.
        news = unwrap(wrap(values, secrets))
        checked = HANDLERS[token].check(news)
        assert set(checked) == set(input_names(HANDLERS[token].inputs_model)), (token, name)
        # Nothing the component sent is changed by the check but defaults and normal forms.
        model = HANDLERS[token].inputs_model.model_validate(checked)
        assert model.model_dump(mode="json") == checked, (token, name)


@pytest.mark.parametrize("env_name", ["local", "dev"])
def test_stack_props_pass_the_provider_check_over_the_wire(env_name):
    provider = UnkaiProvider(ALL)
    for token, name, values, secrets in stack_props(env_name):
        urn = f"urn:pulumi:{env_name}::unkai::unkai:index:Cloud${token}::{name}"
        response = asyncio.run(provider.check(p.CheckRequest(urn, {}, wrap(values, secrets), b"")))
        failures = [(f.property, f.reason) for f in response.failures or ()]
        assert not failures, (token, name, failures)
        assert {k for k, v in response.inputs.items() if v.contains_secret()} == secrets


def test_the_workload_props_are_the_rendered_manifests_pinned_to_the_image():
    local = load_environment("local", root=ROOT)
    workloads = {n: v for t, n, v, _ in stack_props("local") if t == kinds.WorkloadInputs.token}
    api = local.workloads["api"]
    image = container_image_inputs(local.container_images[api.image], local)
    pinned = pinned_image_ref(f"{image.name}:{image.tag}", "sha256:" + SHA)
    assert workloads["api"]["manifests"] == render_manifests(api, local, image_ref=pinned)
    assert workloads["api"]["kubeconfig"] == KUBECONFIG and workloads["api"]["cluster_ca"] == CA


def test_a_stack_missing_a_secret_flag_is_refused():
    """The check is not a rubber stamp: the same Workload props without the flag fail."""
    for token, name, values, secrets in stack_props("local"):
        if "secret_values" in secrets:
            with pytest.raises(ConfigError) as err:
                HANDLERS[token].check(Props(values, secrets - {"secret_values"}))
            assert err.value.key_path == "secret_values", name
            break
    else:
        pytest.fail("no workload of local has secret values")


# --- (g) diff takes its reasons from the declaration ----------------------------------


def test_diff_gives_the_declared_reason_for_a_replacing_change():
    handler = HANDLERS[kinds.InstanceInputs.token]
    olds = check_inputs(kinds.InstanceInputs, EXAMPLES[kinds.InstanceInputs])
    news = {**olds, "image_volume_path": "/var/lib/libvirt/images/unkai/other.qcow2"}
    diff = handler.diff(Props({**olds, "state": "running"}), Props(news))
    assert diff.changed == ("image_volume_path",) and diff.replaces == ("image_volume_path",)
    assert diff.reasons == {"image_volume_path": replace_reasons(kinds.InstanceInputs)[
        "image_volume_path"
    ]}  # fmt: skip
    assert "copy-on-write" in diff.reasons["image_volume_path"]
    # An in-place change has no reason; an unknown value counts as a change.
    resized = handler.diff(Props(olds), Props({**olds, "memory_mb": 2048}))
    assert resized.changed == ("memory_mb",) and resized.replaces == () and not resized.reasons
    unknown = handler.diff(Props(olds), Props({**olds, "disks": UNKNOWN}))
    assert unknown.replaces == ("disks",) and unknown.reasons["disks"]


@pytest.mark.parametrize(("inputs", "state"), PAIRS, ids=lambda k: getattr(k, "token", ""))
def test_every_replacing_input_replaces_with_its_reason(inputs, state):
    handler = HANDLERS[inputs.token]
    olds = check_inputs(inputs, EXAMPLES[inputs])
    for name, reason in replace_reasons(inputs).items():
        diff = handler.diff(Props(olds), Props({**olds, name: UNKNOWN}))
        assert name in diff.replaces and diff.reasons[name] == reason, name
