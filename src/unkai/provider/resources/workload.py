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
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from unkai.drivers.kubernetes import (
    ObjectRef,
    apply_objects,
    delete_objects,
    ensure_namespace,
    plan_objects,
    read_objects,
    ref_of,
    secret_manifest,
    wait_deployment_available,
)
from unkai.errors import ConfigError, DriverError
from unkai.provider._resource import Resource
from unkai.provider._values import UNKNOWN, Props

DEFAULT_TIMEOUT = 300.0
"""Seconds a Deployment gets to report all its replicas available."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _say(name: str) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(f"unkai: workload {name}: {line}", file=sys.stderr, flush=True)

    return say


class Workload(Resource):
    """A workload's Deployment, Service, HPA, PDB and Secret on a cluster.

    Inputs: ``kubeconfig`` and ``cluster_ca`` (the Cluster's ``kubeconfig`` and
    ``ca_fingerprint``), ``namespace``, ``name`` (the Deployment's), ``manifests`` (file
    name → text, exactly :func:`unkai.render.render_manifests`), ``replicas`` (the
    Deployment's, or null when an HPA owns it), ``image_id`` (the built image's id),
    ``secret_name``, ``secret_values`` (a Pulumi secret: variable → value, or null),
    ``timeout`` (seconds to wait for availability).

    Outputs besides the inputs: ``objects`` (``Kind/name`` applied), ``available``
    (available replicas). The resource id is ``<namespace>/<name>``.

    ``read`` returns the live objects: a deleted object drops its file from
    ``manifests``, a hand-changed replica count shows in ``replicas``, a changed Secret in
    ``secret_values``; the Deployment gone means the workload is gone.
    """

    token = "unkai:kubernetes:Workload"
    inputs = (
        "kubeconfig", "cluster_ca", "namespace", "name", "manifests", "replicas", "image_id",
        "secret_name", "secret_values", "timeout",
    )  # fmt: skip
    replace_on: ClassVar = {
        "kubeconfig": "a workload cannot move to another cluster: it is created there anew",
        "cluster_ca": "the cluster was created anew: the workload is applied to it anew",
        "namespace": "objects cannot move between namespaces: they are created anew",
        "name": "a Deployment cannot be renamed: it is created anew",
    }
    secret_outputs = frozenset({"secret_values"})

    def check(self, news: Props) -> dict[str, Any]:
        """Manifests parse and hold the named Deployment; secret values arrive secret."""
        values = {key: news.get(key) for key in self.inputs}
        values["namespace"] = news.get("namespace") or "default"
        values["timeout"] = news.get("timeout") or DEFAULT_TIMEOUT
        namespace, name = values["namespace"], values["name"]
        if namespace is not UNKNOWN and not _DNS_LABEL.fullmatch(str(namespace)):
            raise ConfigError("must be a DNS label", key_path="namespace", value=namespace)
        manifests = values["manifests"]
        if manifests is not UNKNOWN:
            if not isinstance(manifests, Mapping) or not all(
                isinstance(v, str) for v in manifests.values()
            ):
                raise ConfigError("must map file names to manifest text", key_path="manifests")
            try:
                objects = plan_objects(manifests, namespace="default")
            except DriverError as err:
                raise ConfigError(str(err), key_path="manifests") from err
            deployments = [o for o in objects if o["kind"] == "Deployment"]
            if [d["metadata"]["name"] for d in deployments] != [name]:
                raise ConfigError(
                    f"must hold exactly one Deployment, named {name}",
                    key_path="manifests",
                    allowed="the files of unkai.render.render_manifests",
                )
            rendered = deployments[0].get("spec", {}).get("replicas")
            replicas = values["replicas"]
            if replicas is not UNKNOWN and rendered != (
                None if replicas is None else int(replicas)
            ):
                raise ConfigError(
                    "must be the Deployment's replicas of the manifests",
                    key_path="replicas",
                    value=replicas,
                    allowed=str(rendered),
                )
        secret_values = values["secret_values"]
        if secret_values not in (None, UNKNOWN) and secret_values != {}:
            if "secret_values" not in news.secrets:
                raise ConfigError(
                    "must be a Pulumi secret (pulumi.Output.secret or Config.require_secret)",
                    key_path="secret_values",
                )
            if not isinstance(secret_values, Mapping) or not all(
                isinstance(v, str) for v in secret_values.values()
            ):
                raise ConfigError(
                    "must map environment variable names to text", key_path="secret_values"
                )
        return values

    @staticmethod
    def _objects(props: Props) -> tuple[dict[str, Any], ...]:
        return plan_objects(props.get("manifests") or {}, namespace=props.get("namespace"))

    @staticmethod
    def _secret(props: Props, labels: Mapping[str, str]) -> dict[str, Any] | None:
        values = props.get("secret_values")
        if not values:
            return None
        return secret_manifest(
            name=props.get("secret_name"),
            namespace=props.get("namespace"),
            values=values,
            labels=labels,
        )

    def _apply(self, props: Props, *, prune: tuple[ObjectRef, ...] = ()) -> dict[str, Any]:
        kubeconfig, namespace = Path(props.get("kubeconfig")), props.get("namespace")
        say = _say(f"{namespace}/{props.get('name')}")
        objects = self._objects(props)
        deployment = next(o for o in objects if o["kind"] == "Deployment")
        secret = self._secret(props, deployment["metadata"].get("labels") or {})
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
            name=props.get("name"),
            namespace=namespace,
            timeout=float(props.get("timeout") or DEFAULT_TIMEOUT),
            say=say,
        )
        say(f"{state.available}/{state.replicas} replicas available")
        return {
            **{key: props.get(key) for key in self.inputs},
            "objects": list(applied),
            "available": state.available,
        }

    def _refs(self, props: Props) -> tuple[ObjectRef, ...]:
        refs = tuple(ref_of(o) for o in self._objects(props))
        if props.get("secret_values"):
            refs += (ObjectRef("v1", "Secret", props.get("secret_name")),)
        return refs

    def create(self, inputs: Props) -> tuple[str, dict[str, Any]]:
        """Apply the Secret and manifests; wait until the Deployment is available.

        Side effects: creates the namespace when missing (never deleted by unkai), applies
        every object with server-side apply (field manager ``unkai``).
        """
        outputs = self._apply(inputs)
        return f"{inputs.get('namespace')}/{inputs.get('name')}", outputs

    def read(self, resource_id: str, state: Props) -> dict[str, Any] | None:
        """The live objects (see the class); the recorded state when the API server is down."""
        kubeconfig = Path(state.get("kubeconfig"))
        if not kubeconfig.is_file():
            return None
        namespace = state.get("namespace")
        refs = self._refs(state)
        try:
            live = read_objects(kubeconfig=kubeconfig, refs=refs, namespace=namespace)
        except DriverError:
            return {k: state.get(k) for k in (*self.inputs, "objects", "available")}
        deployment_ref = next(r for r in refs if r.kind == "Deployment")
        deployment = live[deployment_ref]
        if deployment is None:
            return None
        manifests = {}
        for file, text in (state.get("manifests") or {}).items():
            mine = plan_objects({file: text}, namespace=namespace)
            if all(live.get(ref_of(o)) is not None for o in mine):
                manifests[file] = text
        outputs = {key: state.get(key) for key in self.inputs}
        outputs["manifests"] = manifests
        spec = deployment.get("spec") or {}
        if state.get("replicas") is not None:
            outputs["replicas"] = spec.get("replicas")
        if state.get("secret_values"):
            secret = live.get(ObjectRef("v1", "Secret", state.get("secret_name")))
            outputs["secret_values"] = (
                None
                if secret is None
                else {
                    key: base64.b64decode(value).decode("utf-8")
                    for key, value in sorted((secret.get("data") or {}).items())
                }
            )
        outputs["objects"] = [str(ref) for ref in refs if live.get(ref) is not None]
        outputs["available"] = (deployment.get("status") or {}).get("availableReplicas") or 0
        return outputs

    def update(self, resource_id: str, olds: Props, news: Props) -> dict[str, Any]:
        """Apply anew; objects no longer rendered (a Secret no longer needed) are deleted."""
        kept = set(self._refs(news))
        prune = tuple(ref for ref in self._refs(olds) if ref not in kept)
        return self._apply(news, prune=prune)

    def delete(self, resource_id: str, state: Props) -> None:
        """Delete the Deployment (its pods first), Service, HPA, PDB and Secret.

        A cluster already gone (its kubeconfig deleted) has nothing left to delete.
        """
        kubeconfig = Path(state.get("kubeconfig"))
        if not kubeconfig.is_file():
            return
        refs = sorted(self._refs(state), key=lambda ref: ref.kind != "Deployment")
        delete_objects(kubeconfig=kubeconfig, refs=refs, namespace=state.get("namespace"))
