"""Render a self-contained HTML report in Debian's headless Chromium, for `browser`-marked tests.

Reports promise to open with no network, so the page is loaded from a file URL with every
request to the network refused; console errors, page errors and blocked requests are collected
so a test can assert there were none.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class RenderedPage:
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    network_requests: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    screenshot: Path | None = None


def require_chromium() -> str:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it as root")
    pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency: pip install -e '.[dev]'")
    return CHROMIUM


def render(
    html: Path, selectors: dict[str, str], screenshot: Path | None = None, settle_ms: int = 1500
) -> RenderedPage:
    """Open `html`, wait for scripts to draw, and count the elements each CSS selector matches."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    page_result = RenderedPage(screenshot=screenshot)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: m.type == "error" and page_result.console_errors.append(m.text))
            page.on("pageerror", lambda e: page_result.page_errors.append(str(e)))

            def refuse_network(route):
                if route.request.url.startswith(("file:", "data:", "blob:", "about:")):
                    route.continue_()
                else:
                    page_result.network_requests.append(route.request.url)
                    route.abort()

            page.route("**/*", refuse_network)
            page.goto(html.resolve().as_uri(), wait_until="load")
            page.wait_for_timeout(settle_ms)
            page_result.counts = {name: page.locator(css).count() for name, css in selectors.items()}
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return page_result
