"""A real browser for the tests: headless Chromium from Debian, driven over DevTools.

The DevTools protocol is JSON over a websocket; aiohttp (which the console already runs
on) is the client, so no browser-automation package is needed. Each call runs on the
browser's own event loop and waits for its answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class Browser:
    """One headless Chromium with one page."""

    def __init__(self, process: subprocess.Popen[str], page: str, drain: threading.Thread) -> None:
        self.process = process
        self.drain = drain
        self.loop = asyncio.new_event_loop()
        self.session = self.loop.run_until_complete(self._session())
        self.socket = self.loop.run_until_complete(self.session.ws_connect(page, max_msg_size=0))
        self.sequence = 0
        self.call("Page.enable")

    @staticmethod
    async def _session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events on the way are dropped)."""
        self.sequence += 1
        mine = self.sequence

        async def send() -> dict[str, Any]:
            await self.socket.send_str(json.dumps({"id": mine, "method": method, "params": params}))
            while True:
                message = json.loads((await self.socket.receive(timeout=60)).data)
                if message.get("id") == mine:
                    if "error" in message:
                        raise RuntimeError(f"{method}: {message['error']}")
                    return dict(message.get("result") or {})

        return self.loop.run_until_complete(send())

    def open(self, url: str, *, timeout: float = 30) -> None:
        """Load ``url`` and wait until its document is complete."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while (
            self.evaluate("document.readyState") != "complete"
            or self.evaluate("location.href") != url
        ):
            assert time.monotonic() < deadline, f"{url} did not load within {timeout} s"
            time.sleep(0.1)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def html(self) -> str:
        """The page's document as it is now (after any refresh the page made)."""
        return str(self.evaluate("document.documentElement.outerHTML"))

    def screenshot(self, path: Path) -> Path:
        """Write the whole page as a PNG."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1400, height=max(600, height), deviceScaleFactor=1, mobile=False,
        )  # fmt: skip
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(self.socket.close())
            self.loop.run_until_complete(self.session.close())
        self.loop.close()
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.drain.join(10)  # it ends at the pipe's end, once the browser is gone
        if self.process.stderr is not None:
            self.process.stderr.close()


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("chromium is missing: scripts/bootstrap installs it")


@contextlib.contextmanager
def browser() -> Iterator[Browser]:
    """A headless Chromium with a blank page, stopped (and its profile removed) at the end."""
    with tempfile.TemporaryDirectory(prefix="unkai-chromium-") as profile:
        process = subprocess.Popen(
            [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-port=0", f"--user-data-dir={profile}",
             "--no-first-run", "--window-size=1400,900", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert process.stderr is not None
        found = None
        deadline = time.monotonic() + 60
        while found is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            found = LISTENING.search(line)
        assert found, "chromium did not start its DevTools endpoint"
        # Keep reading its stderr, so that it never blocks on a full pipe.
        drain = _drain(process)
        port = found.group(1).split(":")[2].split("/")[0]
        page = _page_target(port)
        made = Browser(process, page, drain)
        try:
            yield made
        finally:
            made.close()


def _page_target(port: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
        targets = json.loads(answer.read())
    pages = [t for t in targets if t.get("type") == "page"]
    assert pages, targets
    return str(pages[0]["webSocketDebuggerUrl"])


def _drain(process: subprocess.Popen[str]) -> threading.Thread:
    def drain() -> None:
        assert process.stderr is not None
        for _ in process.stderr:
            pass

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def console(unkai: Path, env: str, *, root: Path, port: int) -> Iterator[str]:
    """``unkai console <env>`` on ``port`` until the block ends; yields its base URL."""
    served = subprocess.Popen(
        [str(unkai), "console", env, "--port", str(port)],
        cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        assert served.poll() is None, served.communicate()[0]
        assert time.monotonic() < deadline, "the console did not listen within 60 s"
        time.sleep(0.2)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.terminate()
        served.communicate(timeout=30)  # and its output pipe closed


def rows(page: Browser, selector: str) -> list[list[str]]:
    """The cells' text of each row of the tables ``selector`` finds (header rows left out)."""
    script = (
        f"Array.from(document.querySelectorAll({json.dumps(selector)} + ' tr'))"
        ".filter(r => r.querySelector('td'))"
        ".map(r => Array.from(r.querySelectorAll('td')).map(c => c.innerText.trim()))"
    )
    return list(page.evaluate(script))
