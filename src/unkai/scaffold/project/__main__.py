"""The cloud of this project: the environment named like the stack, deployed whole.

`unkai up <env>` runs this program for the stack <env>. The environment is the one
environments/<env>.yaml declares (with the files it extends), or, when unkai.toml names
a Python function (`environments = "cloud:environments"`), the one that function returns.
templates/ and playbooks/ here override unkai's built-ins, for `unkai render` and deploy
alike.
"""

from unkai.components import deploy_environment

deploy_environment()
