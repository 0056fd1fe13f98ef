"""The errors of the environment loader: one problem, or all problems of a load."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from unkai.errors import ConfigError

__all__ = [
    "ConfigProblem",
    "ConfigProblems",
    "KeyPath",
    "format_key_path",
    "is_secret_path",
]

KeyPath = tuple[str | int, ...]
"""A path into a document: mapping keys and list indices, outermost first."""

_PLAIN_SEGMENT = re.compile(r"^[A-Za-z0-9_/-]+$")
# Keys whose values are never echoed in an error: secrets, keys, credentials.
_SECRET_KEY = re.compile(
    r"(secret|passw|passphrase|token|credential|private|api[_-]?key|auth|cert|ssh_keys?$)",
    re.IGNORECASE,
)


def format_key_path(path: Sequence[str | int]) -> str:
    """Write a key path as dotted text: ``instance_groups.web.machine_type``.

    List indices are written as numbers (``disks.0.size_gb``). A key that is empty or
    holds anything but letters, digits, ``_``, ``-`` and ``/`` is written as a JSON
    string (``labels."unkai.dev/role"``), so the text always reads back unambiguously.

    Args:
        path: The keys and indices, outermost first.

    Returns:
        The dotted path; ``""`` for the empty path (the document itself).
    """
    return ".".join(
        str(part)
        if isinstance(part, int) or _PLAIN_SEGMENT.fullmatch(part)
        else json.dumps(part, ensure_ascii=False)
        for part in path
    )


def is_secret_path(path: Sequence[str | int]) -> bool:
    """Whether a value at ``path`` may be a secret, so errors must not echo it.

    Args:
        path: The key path of the value.

    Returns:
        True when any key on the path looks like a secret, a password, a token, a
        credential, a certificate or a key (``secret_env``, ``db_password``,
        ``ssh_keys``, ``private_key``, ...).
    """
    return any(isinstance(part, str) and _SECRET_KEY.search(part) for part in path)


class ConfigProblem(ConfigError):
    """One problem in an environment file, with the line it is on when known.

    Reads ``environments/prod.yaml:14: instance_groups.web.size: <message> (got -1);
    allowed: <allowed>``: the file and line first, as compilers write them, so editors
    can jump to it.

    Args:
        message: What is wrong, in a phrase.
        file: The file that supplied the bad value (relative to the project root).
        key_path: Dotted key path of the value inside the document.
        value: The offending value (never a secret: callers redact first).
        allowed: What would have been accepted.
        line: The 1-based line in ``file``, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key_path: str | None = None,
        value: object = None,
        allowed: str | None = None,
        line: int | None = None,
    ) -> None:
        self.line = line
        super().__init__(message, file=file, key_path=key_path, value=value, allowed=allowed)

    @property
    def problems(self) -> tuple[ConfigProblem, ...]:
        """This problem alone, so callers can treat one problem and many alike."""
        return (self,)

    def _where(self) -> str:
        where = self.file or ""
        if where and self.line is not None:
            where += f":{self.line}"
        return ": ".join(p for p in (where, self.key_path) if p)

    def _shown(self, value: object) -> str:
        return _short_repr(value)


class ConfigProblems(ConfigError):
    """Several problems found in one load, reported together.

    The message is a headline and then one line per problem. ``file`` is set when all
    problems are in one file.

    Args:
        headline: What was being loaded (``environment 'prod' is invalid``).
        problems: Every problem, in a deterministic order (at least two).
    """

    def __init__(self, headline: str, problems: Iterable[ConfigProblem]) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        files = {problem.file for problem in self.problems}
        self.headline = headline
        super().__init__(headline, file=files.pop() if len(files) == 1 else None)

    def _format(self) -> str:
        lines = [f"{self.headline}: {len(self.problems)} problems"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


def _short_repr(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def raise_problems(headline: str, problems: Sequence[ConfigProblem]) -> None:
    """Raise the single problem, or all of them as :class:`ConfigProblems`; or nothing.

    Args:
        headline: The headline of a :class:`ConfigProblems`.
        problems: What was found.

    Raises:
        ConfigProblem: Exactly one problem was found.
        ConfigProblems: Several were.
    """
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigProblems(headline, problems)
