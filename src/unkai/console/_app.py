"""The console's web app: server-rendered pages, one question each, refreshed in place.

An :mod:`aiohttp` application (the web library the operator already runs on) with
:mod:`jinja2` templates from this package; no asset is fetched from anywhere and no
page needs JavaScript. A live page carries a few lines of inline script that fetch
``?part=main`` every few seconds and swap the page's main section, so it follows the
cloud without a reload; without the script it is the same page, reloaded by hand.

Every read blocks (libvirt, the engine, the API server), so each runs in a thread;
a read that fails becomes a sentence on the page it belongs to.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Awaitable, Callable
from typing import Any

import jinja2
from aiohttp import web

from unkai.console._cloud import Cloud
from unkai.console._views import FAILING_PHASES, zones
from unkai.errors import UnkaiError

__all__ = ["PAGES", "make_app"]

PAGES = (
    ("hosts", "Hosts"),
    ("instances", "Instances"),
    ("groups", "Groups and pools"),
    ("clusters", "Clusters"),
    ("plan", "Plan"),
    ("history", "History"),
    ("drift", "Drift"),
)
"""The navigation: each page's path and title."""

REFRESH_SECONDS = 5
"""How often a live page fetches its main section again."""

CLOUD: web.AppKey[Cloud] = web.AppKey("cloud", Cloud)
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("templates", jinja2.Environment)

Handler = Callable[[web.Request], Awaitable[dict[str, Any]]]


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("unkai.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["pages"] = PAGES
    env.globals["refresh_seconds"] = REFRESH_SECONDS
    env.globals["failing_phases"] = FAILING_PHASES
    return env


def _page(template: str, *, live: bool) -> Callable[[Handler], Callable[..., Any]]:
    """A handler drawing ``template`` with what ``read`` returns; ``?part=main`` alone."""

    def wrap(read: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            cloud = request.app[CLOUD]
            try:
                values = await read(request)
                error = ""
            except UnkaiError as err:
                values, error = {}, str(err)
            page = request.app[TEMPLATES].get_template(template)
            part = request.query.get("part") == "main"
            text = page.render(
                env=cloud.name,
                path=request.path,
                live=live,
                part=part,
                error=error,
                **values,
            )
            return web.Response(text=text, content_type="text/html", charset="utf-8")

        return handle

    return wrap


async def _in_thread(call: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(call)


@_page("hosts.html", live=True)
async def hosts(request: web.Request) -> dict[str, Any]:
    """Each host's capacity as bars, by zone, with the VMs running there."""
    found = await _in_thread(request.app[CLOUD].hosts)
    return {"zones": zones(found)}


@_page("host.html", live=True)
async def host(request: web.Request) -> dict[str, Any]:
    """One host: its bars, its planned instances and the VMs running on it."""
    name = request.match_info["name"]
    found = await _in_thread(request.app[CLOUD].hosts)
    for view in found:
        if view.name == name:
            return {"host": view}
    raise web.HTTPNotFound(text=f"{request.app[CLOUD].name} has no host {html.escape(name)}")


@_page("instances.html", live=True)
async def instances(request: web.Request) -> dict[str, Any]:
    """Every VM of the environment, with its host, state, group and addresses."""
    found = await _in_thread(request.app[CLOUD].hosts)
    vms = sorted((vm for view in found for vm in view.vms or ()), key=lambda vm: vm.name)
    unread = [view for view in found if view.vms is None]
    return {"vms": vms, "unread": unread}


@_page("groups.html", live=True)
async def groups(request: web.Request) -> dict[str, Any]:
    """Each cluster's node pools and instance groups, and the operator's latest Events."""
    return {"clusters": await _in_thread(request.app[CLOUD].clusters)}


@_page("clusters.html", live=True)
async def clusters(request: web.Request) -> dict[str, Any]:
    """Each cluster's nodes (real or simulated) and workloads, with pods and Ready counts."""
    return {"clusters": await _in_thread(request.app[CLOUD].clusters)}


@_page("plan.html", live=False)
async def plan(request: web.Request) -> dict[str, Any]:
    """Capacity and VM-vs-container density, as ``unkai plan`` computes them."""
    return {"plan": await _in_thread(request.app[CLOUD].plan)}


@_page("history.html", live=True)
async def history(request: web.Request) -> dict[str, Any]:
    """The stack's latest updates: what each did, how long it took."""
    return {"updates": await _in_thread(request.app[CLOUD].history)}


@_page("drift.html", live=True)
async def drift(request: web.Request) -> dict[str, Any]:
    """The latest drift report per layer, as ``unkai drift`` last made it."""
    found = await _in_thread(request.app[CLOUD].drift)
    if found is None:
        return {"report": None, "when": "", "layers": {}}
    report, when = found
    layers: dict[str, dict[str, list[Any]]] = {}
    for kind in ("drift", "pending"):
        for change in getattr(report, kind):
            layers.setdefault(change.layer, {"drift": [], "pending": []})[kind].append(change)
    return {"report": report, "when": when, "layers": layers}


async def index(request: web.Request) -> web.Response:
    """The hosts page is the front page."""
    raise web.HTTPFound("/hosts")


def make_app(cloud: Cloud) -> web.Application:
    """The console of ``cloud``'s environment (serve it with :func:`aiohttp.web.run_app`)."""
    app = web.Application()
    app[CLOUD] = cloud
    app[TEMPLATES] = _templates()
    app.router.add_get("/", index)
    app.router.add_get("/hosts", hosts)
    app.router.add_get("/hosts/{name}", host)
    app.router.add_get("/instances", instances)
    app.router.add_get("/groups", groups)
    app.router.add_get("/clusters", clusters)
    app.router.add_get("/plan", plan)
    app.router.add_get("/history", history)
    app.router.add_get("/drift", drift)
    return app
