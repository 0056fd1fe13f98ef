"""The example cloud: the environment named like the stack, deployed whole.

``unkai up <env>`` runs this program with the stack's config (see
:func:`unkai.components.deploy_environment`); ``unkai:overrides`` (optional) is merged
over the environment files like one more layer of ``extends:``: a per-stack change that
is not committed to ``environments/``.
"""

from unkai.components import deploy_environment

deploy_environment()
