"""Shared fixtures for browser tests: Debian's Chromium driven by Playwright, and a live server.

The browser is the system's `/usr/bin/chromium` (installed by `make browser-deps`), never a
Playwright browser download. Every page is offline: a request to any host but the test server is
aborted and recorded, and console errors are collected, so a test can assert there were none.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Route, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


@dataclass
class PageLog:
    """What a page did that a test may need to refuse: console errors, page errors, outside requests."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [*self.console_errors, *self.page_errors, *(f"outside request: {u}" for u in self.outside_requests)]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the test run."""
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser-deps` (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page_log() -> PageLog:
    """What the test's `page` logged (filled while the page runs)."""
    return PageLog()


@pytest.fixture
def page(browser: Browser, page_log: PageLog) -> Iterator[Page]:
    """A fresh offline page: outside requests are aborted, errors go to `page_log`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    log = page_log
    tab.on("console", lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: log.page_errors.append(str(exc)))

    def offline(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname not in LOCAL_HOSTS:
            log.outside_requests.append(url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    tab.route("**/*", offline)
    yield tab
    context.close()


@contextmanager
def live_server(app: Callable) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free local port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the live server stopped while starting (see the log above)")
            threading.Event().wait(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="session")
def serve() -> Callable:
    """`with serve(app) as url:` runs `app` on a live local port for the block."""
    return live_server
