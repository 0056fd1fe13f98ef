"""The program `unkai up <env>` runs: the environment named like the stack, deployed whole.

The environment comes from cloud.py (unkai.toml names it), so this file is the same as in
a project of YAML environments.
"""

from unkai.components import deploy_environment

deploy_environment()
