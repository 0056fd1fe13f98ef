"""The example cloud: the environment named like the stack, deployed whole.

Stack config (set by ``unkai up``): ``unkai:accelerator`` (kvm or tcg, from the host's
KVM probe), ``unkai:sshKeys`` (operator public keys added to every instance) and
``unkai:placement`` (instance → host after the last ``up``, so placement is sticky)
and ``unkai:unavailable`` (hosts that did not answer: their instances are evacuated).
``unkai:overrides`` (optional) is merged over the environment files like one more
layer of ``extends:``: a per-stack change that is not committed to ``environments/``.
Each workload's secret env is read from the config key its SecretRef names, as a
secret (``unkai up local`` generates missing ones).
"""

from pathlib import Path

import pulumi

from unkai.components import Cloud, CloudArgs
from unkai.environments import load_environment
from unkai.toolchain import cached_probe

ROOT = Path(__file__).resolve().parents[2]

config = pulumi.Config("unkai")
env = load_environment(pulumi.get_stack(), root=ROOT, overrides=config.get_object("overrides"))
# Without config (plain `pulumi up`), what this machine's KVM probe found: /dev/kvm can
# open and still fail a guest, which only the probe notices.
accelerator = config.get("accelerator") or cached_probe().accelerator
ssh_keys = tuple(config.get_object("sshKeys") or ())
# Where each VM ran after the last `unkai up`: placement is sticky.
placement = config.get_object("placement") or {}
# Hosts that did not answer when `unkai up` started: their instances move elsewhere.
unavailable = tuple(config.get_object("unavailable") or ())
cloud = Cloud(
    env.name,
    CloudArgs(env, accelerator, ssh_keys, placement=placement, unavailable=unavailable),
)

pulumi.export("environment", env.name)
pulumi.export("hosts", cloud.hosts_summary)
pulumi.export("instances", cloud.summary)
pulumi.export("container_images", cloud.images_summary)
pulumi.export("clusters", cloud.clusters_summary)
pulumi.export("workloads", cloud.workloads_summary)
