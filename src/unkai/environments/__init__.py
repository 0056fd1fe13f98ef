"""Environment files: ``environments/<name>.yaml``, ``extends:`` chains, merge, diff.

An environment file is a YAML mapping with the fields of :class:`unkai.model.Environment`
(``zones``, ``hosts``, ``networks``, ``instance_groups``, ``settings``, ...), each
collection a mapping from name to value, plus one key of its own:

``extends: <name>``
    Start from environment ``<name>`` and layer this file on it (chains allowed,
    cycles refused). Mappings merge key by key, lists are replaced whole, and an
    explicit ``null`` removes a key (see :func:`deep_merge`).

The name of an environment is its file's stem; files never set ``name``. Every problem
becomes a :class:`~unkai.errors.ConfigError` (:class:`ConfigProblem`, or
:class:`ConfigProblems` when several are found at once) naming the file and line that
supplied the bad value, the key path, the value (never one under a secret-looking key)
and what is allowed::

    environments/prod.yaml:12: instance_groups.web.size: Input should be greater than or
    equal to 0 (got -1)

A project may instead declare its environments in Python (``[project] environments =
"cloud:environments"`` in ``unkai.toml``, see :mod:`unkai.environments._python`):
:func:`load_environment` then takes them from that function, with the same checks.

The package reads YAML files, and runs the project's declaring module when it has one: no
other side effect.

Example:
    >>> from pathlib import Path
    >>> from unkai.environments import deep_merge, diff_values
    >>> deep_merge({"web": {"size": 2, "zone": "a"}}, {"web": {"size": 4, "zone": None}})
    {'web': {'size': 4}}
    >>> [str(change) for change in diff_values({"size": 2}, {"size": 4})]
    ['~ size: 2 → 4']
"""

from __future__ import annotations

from unkai.environments._diff import Change, compact, diff_environments, diff_values
from unkai.environments._errors import (
    ConfigProblem,
    ConfigProblems,
    KeyPath,
    format_key_path,
    is_secret_path,
)
from unkai.environments._loader import (
    ENVIRONMENTS_DIR,
    LOADER_KEYS,
    NAME_RULE,
    environment_file,
    environment_source,
    explain_validation_error,
    is_environment_name,
    list_environments,
    load_environment,
    load_yaml_environment,
    resolve_document,
)
from unkai.environments._merge import deep_merge
from unkai.environments._promote import (
    PROMOTABLE,
    PROMOTED_BY_DEFAULT,
    Promotion,
    plan_promotion,
)
from unkai.environments._python import PythonSource, python_source
from unkai.environments._replicate import NewEnvironment, plan_new_environment

__all__ = [
    "ENVIRONMENTS_DIR",
    "LOADER_KEYS",
    "NAME_RULE",
    "PROMOTABLE",
    "PROMOTED_BY_DEFAULT",
    "Change",
    "ConfigProblem",
    "ConfigProblems",
    "KeyPath",
    "NewEnvironment",
    "Promotion",
    "PythonSource",
    "compact",
    "deep_merge",
    "diff_environments",
    "diff_values",
    "environment_file",
    "environment_source",
    "explain_validation_error",
    "format_key_path",
    "is_environment_name",
    "is_secret_path",
    "list_environments",
    "load_environment",
    "load_yaml_environment",
    "plan_new_environment",
    "plan_promotion",
    "python_source",
    "resolve_document",
]
