"""Test stack: one image of the local environment under a name of the test's own.

Config: ``name`` (the repository, unique per test run so real images are never
touched), ``image`` (which image of environments/local.yaml, default ``api``),
``port`` (overrides the api's port variable: a changed Dockerfile).
"""

from pathlib import Path

import pulumi

from unkai.components import ContainerImage, container_image_inputs
from unkai.environments import load_environment

config = pulumi.Config()
root = Path(__file__).resolve().parents[4]
env = load_environment("local", root=root)
source = env.container_images[config.get("image") or "api"]
variables = dict(source.variables)
if config.get("port"):
    variables["port"] = config.require("port")
# Kept on this machine: local's images go to unkai's registry, a test's own do not.
image = source.model_copy(
    update={"name": config.require("name"), "variables": variables, "registry": None}
)
env = env.model_copy(update={"container_images": {**env.container_images, image.name: image}})

built = ContainerImage(image.name, container_image_inputs(image, env))

pulumi.export("image_id", built.image_id)
pulumi.export("reference", built.reference)
pulumi.export("repo_digest", built.repo_digest)
pulumi.export("base_image_id", built.base_image_id)
pulumi.export("size_bytes", built.size_bytes)
pulumi.export("tag", built.tag)
