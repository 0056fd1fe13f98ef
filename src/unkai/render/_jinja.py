"""The one Jinja environment factory, the template search path, and error translation."""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2

from unkai.errors import RenderError
from unkai.render.filters import FILTERS

__all__ = [
    "BUILTIN_TEMPLATES",
    "Templates",
    "builtin_templates_dir",
    "default_templates",
    "make_jinja_environment",
    "template_search_path",
]

PROJECT_TEMPLATES = "templates"
"""Name of the folder of a project that overrides built-in templates."""


def builtin_templates_dir() -> Path:
    """Locate unkai's built-in ``templates/`` folder: ``unkai/templates`` in the package.

    They are package data, so a wheel carries them and an editable install sees the
    checkout's ``src/unkai/templates``.

    Returns:
        The folder, resolved.

    Raises:
        RenderError: The package has no templates folder (a broken install).
    """
    packaged = Path(str(importlib.resources.files("unkai"))) / PROJECT_TEMPLATES
    if not packaged.is_dir():
        raise RenderError(f"unkai's built-in templates are missing from {packaged}")
    return packaged.resolve()


BUILTIN_TEMPLATES = builtin_templates_dir()
"""unkai's built-in templates folder (see :func:`builtin_templates_dir`)."""


def template_search_path(project_dir: Path | None = None) -> tuple[Path, ...]:
    """The folders templates are looked up in, first match wins.

    A project overrides a built-in template by putting a file with the same relative
    path (``docker/api.Dockerfile.j2``) into its own ``templates/`` folder.

    Args:
        project_dir: The project root, whose ``templates/`` (if it exists) comes first.

    Returns:
        ``(<project>/templates, BUILTIN_TEMPLATES)``, without duplicates and without a
        project folder that does not exist. Reads only whether the folder exists.
    """
    path = [BUILTIN_TEMPLATES]
    if project_dir is not None:
        own = (project_dir / PROJECT_TEMPLATES).resolve()
        if own.is_dir() and own != BUILTIN_TEMPLATES:
            path.insert(0, own)
    return tuple(path)


def _autoescape(name: str | None) -> bool:
    # XML is escaped so that a label value can never inject an element; YAML, INI and
    # Dockerfiles are not (their quoting is done by filters).
    return name is not None and name.endswith(".xml.j2")


def make_jinja_environment(search_path: Sequence[Path]) -> jinja2.Environment:
    """Create the Jinja environment every unkai template is rendered with.

    This is the only place a :class:`jinja2.Environment` is made. It has
    ``StrictUndefined`` (a missing value is an error, never an empty string),
    ``keep_trailing_newline``, ``trim_blocks`` and ``lstrip_blocks``, autoescaping for
    ``*.xml.j2`` templates, and exactly the filters of :data:`unkai.render.filters.FILTERS`
    added to Jinja's built-ins. No environment variable, clock or other ambient state is
    exposed to templates: a template sees only the context it is rendered with.

    Args:
        search_path: Template folders, first match wins.

    Returns:
        A new environment. Templates are read from disk lazily, on first use.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(path) for path in search_path]),
        undefined=jinja2.StrictUndefined,
        autoescape=_autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update({name: _defined_only(f) for name, f in FILTERS.items()})
    return env


def _defined_only(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` as a filter that fails on an undefined value as a lookup would.

    StrictUndefined fails when printed, not when passed to a filter: ``to_json`` would
    otherwise raise "not JSON serializable", naming neither the variable nor the line.
    """

    @functools.wraps(function)
    def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, jinja2.Undefined):
            value._fail_with_undefined_error()
        return function(value, *args, **kwargs)

    return checked


def _template_line(tb: TracebackType | None, filename: str | None) -> int | None:
    """The last line of the traceback that ran inside the template file, if any."""
    line = None
    while tb is not None:
        if filename is not None and tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class Templates:
    """A template search path and the one Jinja environment over it.

    Args:
        project_dir: The project root; its ``templates/`` folder overrides the built-ins.
            ``None`` uses the built-ins only.
    """

    def __init__(self, project_dir: Path | None = None) -> None:
        self.search_path = template_search_path(project_dir)
        self.jinja = make_jinja_environment(self.search_path)

    def __repr__(self) -> str:
        return f"Templates({[str(p) for p in self.search_path]})"

    def origin(self, name: str) -> Path:
        """The file template ``name`` is loaded from (the first match in the search path).

        Args:
            name: Template name relative to a templates folder (``libvirt/domain.xml.j2``).

        Returns:
            The template's path.

        Raises:
            RenderError: No folder of the search path has the template.
        """
        for folder in self.search_path:
            if (folder / name).is_file():
                return folder / name
        raise RenderError(self._not_found(name))

    def _not_found(self, name: str) -> str:
        folders = ", ".join(str(folder) for folder in self.search_path)
        return f"template {name} not found; looked in {folders}"

    def render(self, name: str, context: Mapping[str, object]) -> str:
        """Render template ``name`` with ``context`` and nothing else.

        Args:
            name: Template name relative to a templates folder (``libvirt/domain.xml.j2``).
            context: The variables the template sees.

        Returns:
            The rendered text.

        Raises:
            RenderError: The template is missing, has a syntax error, uses an undefined
                value (the message names the template, the line and the value), or a
                filter failed; chained to the Jinja error.
        """
        try:
            template = self.jinja.get_template(name)
        except jinja2.TemplateNotFound as err:
            raise RenderError(self._not_found(name)) from err
        except jinja2.TemplateSyntaxError as err:
            raise RenderError(
                f"template {err.filename or name}, line {err.lineno}: syntax error: {err.message}"
            ) from err
        try:
            return template.render(context)
        except jinja2.UndefinedError as err:
            line = _template_line(err.__traceback__, template.filename)
            where = f"template {template.filename}" + (f", line {line}" if line else "")
            raise RenderError(f"{where}: undefined value: {err.message}") from err
        except (jinja2.TemplateError, TypeError, ValueError) as err:
            line = _template_line(err.__traceback__, template.filename)
            where = f"template {template.filename}" + (f", line {line}" if line else "")
            raise RenderError(f"{where}: {err}") from err


@functools.cache
def default_templates() -> Templates:
    """The built-in templates only, shared (the environment caches parsed templates).

    Returns:
        One :class:`Templates` per process.
    """
    return Templates()
