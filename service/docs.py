"""`/docs`: Swagger UI served from the installed `swagger-ui-bundle-v2` package (the `[serve]` extra), never
from a CDN.

FastAPI's own `/docs` page loads Swagger UI's script and style from a CDN, so offline (or behind a
strict firewall) it was a blank page. Here the page and its assets come from the service itself.
ReDoc (`/redoc`) is not served: no installed package carries it.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI over the app's OpenAPI document, its script, style and icon from `ASSETS`."""
    root = request.scope.get("root_path", "")
    app: FastAPI = request.app
    return get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - API documentation",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},  # the validator badge is an image from swagger.io
    )


def install_docs(app: FastAPI) -> None:
    """`/docs` and the Swagger UI files it loads, under `/docs/assets/`."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui")
