"""``unkai:kubernetes:Workload``: a workload's rendered manifests, applied to its cluster.

Why the unkai provider and not pulumi-kubernetes: the issue asks for server-side apply
through the pulumi-kubernetes provider *or*, failing that, through unkai's own provider.
pulumi-kubernetes is a Go plugin that cannot be downloaded here (no registry but package
registries); building it from its Go module is another build of several minutes and
gigabytes on every CI bootstrap, on top of Kubernetes itself, for a handful of objects
whose manifests unkai already renders. So unkai applies them itself with server-side
apply through lightkube (field manager ``unkai``, forced), and the state holds exactly
the rendered text that ``unkai render`` writes — what a reviewer reads is what is applied,
byte for byte.

Image pinning: the component passes the manifests rendered with ``image_ref`` set to the
built image's repository digest (``registry/name@sha256:…``) when the image was pushed to
a registry; without a registry there is no repository digest (a digest names a pushed
manifest, which only a registry computes), so the reference is ``name:<tag>`` whose tag
is the content hash of the image's Dockerfile (immutable by construction), and the image
id (``sha256:…``) is recorded in the ``image_id`` input, so a rebuilt image shows as a
change of the Workload. KWOK pulls nothing, so either reference runs on ``local``.

Secrets: ``secret_values`` (environment variable → value) must arrive as a Pulumi
secret; it becomes the Secret named ``secret_name`` at apply time and stays secret in
the state (inputs and outputs). It is never written to a file or printed: the rendered
manifests only refer to the Secret, and errors about a Secret name no value.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unkai.drivers.kubernetes import (
    ObjectRef,
    apply_differences,
    apply_objects,
    delete_objects,
    deployment_state,
    ensure_namespace,
    plan_objects,
    read_objects,
    ref_of,
    secret_manifest,
    wait_deployment_available,
)
from unkai.errors import ConfigError, DriverError
from unkai.kinds import (
    WorkloadInputs,
    WorkloadState,
    has_unknown,
    input_names,
    input_values,
    parse_state,
)
from unkai.provider._log import say
from unkai.provider._resource import Diff, Resource
from unkai.provider._values import Props, unwrap, wrap

DELETE_TIMEOUT = 180.0
"""Seconds a deleted Deployment may take to go (its pods end first)."""


def _objects(workload: WorkloadInputs) -> tuple[dict[str, Any], ...]:
    return plan_objects(workload.manifests, namespace=workload.namespace)


def _refs(workload: WorkloadInputs) -> tuple[ObjectRef, ...]:
    refs = tuple(ref_of(o) for o in _objects(workload))
    if workload.secret_values and workload.secret_name:
        refs += (ObjectRef("v1", "Secret", workload.secret_name),)
    return refs


_FOLLOWED = {"Deployment": (("spec", "replicas"),)}
"""Fields ``read`` compares apart from the server-side apply's dry run."""


class Workload(Resource[WorkloadInputs, WorkloadState]):
    """A workload's Deployment, Service, HPA, PDB and Secret on a cluster.

    See :class:`unkai.kinds.WorkloadInputs`. ``read`` returns the live objects: a
    deleted object drops its file from ``manifests``, and so does an object in which a
    server-side apply (a dry run) would set a field back (listed in ``drift``); a
    hand-changed replica count shows in ``replicas``, a changed Secret in
    ``secret_values``; the Deployment gone means the workload is gone.
    """

    inputs_model = WorkloadInputs
    state_model = WorkloadState

    def validate(self, inputs: WorkloadInputs, *, secrets: frozenset[str]) -> None:
        """Manifests parse and hold the named Deployment; secret values arrive secret."""
        try:
            objects = plan_objects(inputs.manifests, namespace="default")
        except DriverError as err:
            raise ConfigError(str(err), key_path="manifests") from err
        deployments = [o for o in objects if o["kind"] == "Deployment"]
        if [d["metadata"]["name"] for d in deployments] != [inputs.name]:
            raise ConfigError(
                f"must hold exactly one Deployment, named {inputs.name}",
                key_path="manifests",
                allowed="the files of unkai.render.render_manifests",
            )
        rendered = deployments[0].get("spec", {}).get("replicas")
        if inputs.replicas != rendered:
            raise ConfigError(
                "must be the Deployment's replicas of the manifests",
                key_path="replicas",
                value=inputs.replicas,
                allowed=str(rendered),
            )
        if inputs.secret_values and "secret_values" not in secrets:
            raise ConfigError(
                "must be a Pulumi secret (pulumi.Output.secret or Config.require_secret)",
                key_path="secret_values",
            )

    @staticmethod
    def _secret(workload: WorkloadInputs, labels: Mapping[str, str]) -> dict[str, Any] | None:
        if not workload.secret_values or not workload.secret_name:
            return None
        return secret_manifest(
            name=workload.secret_name,
            namespace=workload.namespace,
            values=dict(workload.secret_values),
            labels=labels,
        )

    def _apply(
        self, workload: WorkloadInputs, *, prune: tuple[ObjectRef, ...] = ()
    ) -> WorkloadState:
        kubeconfig, namespace = Path(workload.kubeconfig), workload.namespace
        objects = _objects(workload)
        deployment = next(o for o in objects if o["kind"] == "Deployment")
        secret = self._secret(workload, deployment["metadata"].get("labels") or {})
        ensure_namespace(kubeconfig=kubeconfig, namespace=namespace)
        # The Secret first: the pods refer to it.
        applied = apply_objects(
            kubeconfig=kubeconfig, objects=[*([secret] if secret else []), *objects]
        )
        if prune:
            deleted = delete_objects(kubeconfig=kubeconfig, refs=prune, namespace=namespace)
            if deleted:
                say(f"deleted {', '.join(deleted)}")
        state = wait_deployment_available(
            kubeconfig=kubeconfig,
            name=workload.name,
            namespace=namespace,
            timeout=workload.timeout,
            say=say,
        )
        say(f"{state.available}/{state.replicas} replicas available")
        return WorkloadState(
            **input_values(workload), objects=tuple(applied), available=state.available
        )

    def create(self, inputs: WorkloadInputs) -> tuple[str, WorkloadState]:
        """Apply the Secret and manifests; wait until the Deployment is available.

        Side effects: creates the namespace when missing (never deleted by unkai), applies
        every object with server-side apply (field manager ``unkai``).
        """
        return f"{inputs.namespace}/{inputs.name}", self._apply(inputs)

    def read(self, resource_id: str, state: WorkloadState) -> WorkloadState | None:
        """The live objects (see the class); the recorded state when the API server is down."""
        kubeconfig = Path(state.kubeconfig)
        if not kubeconfig.is_file():
            return None
        namespace = state.namespace
        refs = _refs(state)
        try:
            live = read_objects(kubeconfig=kubeconfig, refs=refs, namespace=namespace)
        except DriverError:
            return state
        deployment = live[next(r for r in refs if r.kind == "Deployment")]
        if deployment is None:
            return None
        try:
            # Replicas are followed apart (``replicas``): an HPA sets them too.
            differences = apply_differences(
                kubeconfig=kubeconfig, objects=_objects(state), live=live, followed=_FOLLOWED
            )
        except DriverError:
            return state
        manifests = {
            file: text
            for file, text in state.manifests.items()
            if all(
                live.get(ref_of(o)) is not None and str(ref_of(o)) not in differences
                for o in plan_objects({file: text}, namespace=namespace)
            )
        }
        drift = tuple(f"{obj}: {path}" for obj, paths in differences.items() for path in paths)
        update: dict[str, Any] = {"manifests": manifests, "drift": drift}
        if state.replicas is not None:
            update["replicas"] = (deployment.get("spec") or {}).get("replicas")
        if state.secret_values and state.secret_name:
            secret = live.get(ObjectRef("v1", "Secret", state.secret_name))
            update["secret_values"] = (
                None
                if secret is None
                else {
                    key: base64.b64decode(value).decode("utf-8")
                    for key, value in sorted((secret.get("data") or {}).items())
                }
            )
        update["objects"] = tuple(str(ref) for ref in refs if live.get(ref) is not None)
        update["available"] = (deployment.get("status") or {}).get("availableReplicas") or 0
        return state.model_copy(update=update)

    def diff(self, olds: Props, news: Props) -> Diff:
        """The generic diff; when no input changed, the live objects against the inputs.

        An apply cut short (the API server gone while a rollout was waited for) leaves
        the new objects in the cluster and the old ones in the state: the next ``up``
        sees it here, as a refresh would, and applies again. Reads only; while the API
        server does not answer, or the Deployment is gone (a refresh's business), the
        recorded state stands.
        """
        result = super().diff(olds, news)
        if result.changed or any(has_unknown(v) for v in news.values.values()):
            return result
        live = self.read("", parse_state(self.state_model, olds.values))
        if live is None:
            return result
        seen = unwrap(wrap(live.model_dump(mode="json")))  # numbers as the engine has them
        drifted = tuple(k for k in input_names(self.inputs_model) if seen.get(k) != news.get(k))
        return Diff(drifted, (), {}) if drifted else result

    def update(self, resource_id: str, olds: WorkloadState, news: WorkloadInputs) -> WorkloadState:
        """Apply anew; objects no longer rendered (a Secret no longer needed) are deleted."""
        kept = set(_refs(news))
        prune = tuple(ref for ref in _refs(olds) if ref not in kept)
        return self._apply(news, prune=prune)

    def delete(self, resource_id: str, state: WorkloadState) -> None:
        """Delete the Deployment (its pods first), Service, HPA, PDB and Secret.

        A cluster already gone (its kubeconfig deleted) has nothing left to delete.
        """
        kubeconfig = Path(state.kubeconfig)
        if not kubeconfig.is_file():
            return
        refs = sorted(_refs(state), key=lambda ref: ref.kind != "Deployment")
        delete_objects(kubeconfig=kubeconfig, refs=refs, namespace=state.namespace)
        # Foreground deletion returns once it is accepted; the Deployment goes when its
        # pods have. Destroy ends when it is gone, so that nothing is left behind it.
        deadline = time.monotonic() + DELETE_TIMEOUT
        while deployment_state(kubeconfig=kubeconfig, name=state.name, namespace=state.namespace):
            if time.monotonic() > deadline:
                raise DriverError(
                    f"Deployment/{state.name} is still being deleted after"
                    f" {DELETE_TIMEOUT:.0f} s (its pods have not ended)"
                )
            time.sleep(0.5)
