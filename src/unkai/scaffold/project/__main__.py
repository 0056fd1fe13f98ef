"""The cloud of this project: the environment named like the stack, deployed whole.

`unkai up <env>` runs this program for the stack <env>. The environment comes from
environments/<env>.yaml (and the files it extends); templates/ and playbooks/ here
override unkai's built-ins, for `unkai render` and deploy alike.

An environment can also be declared in Python with the typed model, and passed on:

    from unkai.environments import load_environment
    env = load_environment("local", root=Path(__file__).parent)
    env = env.model_copy(update={"description": "changed in Python"})
    deploy_environment(env)
"""

from unkai.components import deploy_environment

deploy_environment()
