"""End-to-end fixtures: the real app behind a real HTTP server, and a real Chromium.

The server runs in a thread of the test process so it shares the test's ``container``
(database, keys, hand-moved clock); a socket bound here beforehand means no port race.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from ctplhub.bootstrap import Container, build_app
from ctplhub.config import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """As ``ctplhub demo`` serves it: plain http on 127.0.0.1, so the staff cookie is not
    ``Secure`` (a browser would not send it back); every other attribute is production's."""
    return settings.model_copy(update={"cookie_secure": False})


@pytest.fixture
def desk(browser: Browser) -> Iterator[Page]:
    """A desktop-sized page in a Chinese-locale context, for the staff pages."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="zh-CN", timezone_id="UTC"
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def live_server(container: Container) -> Iterator[str]:
    """Base URL of the app served by uvicorn on 127.0.0.1 (both database engines)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # No websockets: the app has none, and it keeps their import-time warnings away.
    config = uvicorn.Config(
        build_app(container),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="none",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        if not server.started:
            pytest.fail("the live server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():  # a connection held open (the browser's): stop it anyway
            server.force_exit = True
            thread.join(timeout=10)
        sock.close()
        # A server left running would go on answering (and running verify jobs) against
        # the next test's database, which shares this one's name on PostgreSQL.
        assert not thread.is_alive(), "the live server did not stop"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module. Not per session: Playwright's synchronous API keeps
    an event loop running on the main thread while it is open, and tests that run
    afterwards in the same worker call ``asyncio.run``."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing; install Debian's chromium to run browser tests")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A fresh page in a phone-sized, touch, Chinese-locale context."""
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="UTC",  # the page must show Beijing time whatever the phone's zone
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()
