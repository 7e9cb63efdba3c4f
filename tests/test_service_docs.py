"""`/docs` offline (issue 15 item 10): Swagger UI's page and files come from the service, never from a CDN."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from reason_classifier.service import ServiceSettings, create_app
from service_process import ServiceProcess


def test_docs_page_and_its_assets_come_from_the_service_itself():
    """Observed: /docs was a blank page offline: Swagger UI's script and style came from a CDN."""
    client = TestClient(create_app(ServiceSettings.load()))
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert f"/docs/assets/{asset}" in page.text
        assert client.get(f"/docs/assets/{asset}").status_code == 200
    assert client.get("/redoc").status_code == 404  # its script would come from a CDN: not served
    assert "/docs" not in client.get("/openapi.json").json()["paths"]


@pytest.mark.browser
def test_docs_render_in_chromium_with_the_network_refused(tmp_path, tiny_model):
    from playwright.sync_api import sync_playwright

    from browser import CHROMIUM_FLAGS, require_chromium

    executable = require_chromium()
    with ServiceProcess(ready=False, model=tiny_model) as server:  # the page needs no model
        deadline = time.monotonic() + 60
        while True:
            try:
                if server.request("GET", "/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        origin = f"http://127.0.0.1:{server.port}"
        refused: list[str] = []
        errors: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page()
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))

                def only_the_service(route):
                    if route.request.url.startswith(origin + "/"):
                        route.continue_()
                    else:
                        refused.append(route.request.url)
                        route.abort()

                page.route("**/*", only_the_service)
                page.goto(f"{origin}/docs", wait_until="load")
                page.wait_for_selector(".opblock-summary-path", timeout=30_000)
                paths = {p.strip() for p in page.locator(".opblock-summary-path").all_inner_texts()}
                page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
            finally:
                browser.close()
    assert {"/v1/classify", "/v1/classify/batch", "/v1/taxonomy", "/v1/outcomes", "/healthz"} <= paths
    assert refused == [] and errors == []
