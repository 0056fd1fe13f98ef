"""The example cloud: the environment named like the stack, deployed whole."""

from pathlib import Path

import pulumi

from unkai.components import Cloud, CloudArgs
from unkai.environments import load_environment

ROOT = Path(__file__).resolve().parents[2]

env = load_environment(pulumi.get_stack(), root=ROOT)
config = pulumi.Config("unkai")
accelerator = config.get("accelerator") or "tcg"
cloud = Cloud(env.name, CloudArgs(env, {h: accelerator for h in env.hosts}))

pulumi.export("environment", env.name)
pulumi.export("instances", cloud.summary)
