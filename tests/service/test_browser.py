"""The landing page in real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn

from smartcare.core.settings import Settings
from smartcare.service.app import create_app

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Settings(var=tmp_path_factory.mktemp("var")))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.mark.browser
def test_landing_page_in_chromium(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            response = page.goto(server + "/")
            assert response.status == 200
            assert page.title() == "smartcare"
            domains = page.locator("#domains tr").all_inner_texts()
            assert any("publichealth" in row for row in domains)
            assert any("fhir" in row for row in domains)
            page.screenshot(path=str(tmp_path / "landing.png"))
            page.get_by_role("link", name="health", exact=True).click()
            page.wait_for_url("**/health")
            assert '"status":"ok"' in page.content().replace(" ", "")
        finally:
            browser.close()
