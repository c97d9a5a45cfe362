"""The dashboard's pages and static assets, served by the API's own app at ``/``.

Every page is the same small HTML shell naming its page module; the modules (plain ES
modules, no build step) read the JSON API. Assets are served under
``/static/<build>/``, where ``<build>`` is a digest of the asset files: a browser keeps
them for a year without asking again (each request counts against the per-client rate
limit) and a new release changes the path. Relative imports between modules resolve
under the same prefix, so no module names the build.

The chart library (TradingView's lightweight-charts, pinned in ``package.json``) is
copied into ``static/vendor/`` by ``scripts/setup``; when it is missing the pages say
so instead of failing silently.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

WEB = Path(__file__).resolve().parent
STATIC = WEB / "static"
CHART_LIBRARY = STATIC / "vendor" / "lightweight-charts.standalone.production.mjs"
IMMUTABLE = "public, max-age=31536000, immutable"
# (path, page module, title key): the page modules live in static/js/pages/.
PAGES = (
    ("/", "dashboard", "nav.dashboard"),
    ("/chart", "chart", "nav.chart"),
    ("/monitors", "monitors", "nav.monitors"),
    ("/monitors/{monitor_id}", "monitor", "nav.monitors"),
    ("/mappings", "mappings", "nav.mappings"),
    ("/settings", "settings", "nav.settings"),
    ("/status", "status", "nav.status"),
)


class LongLivedFiles(StaticFiles):
    """Static files that the browser may keep: their path changes with their content."""

    def file_response(self, *args: Any, **kwargs: Any) -> Any:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = IMMUTABLE
        return response


def build_id(folder: Path = STATIC) -> str:
    """A digest of every asset's path, size and modification time."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:12]


# Modules every page imports, and those of the pages that draw charts: announced up
# front so that the browser fetches them at once rather than one import level at a time.
COMMON_MODULES = ("js/app.js", "js/i18n/en.js", "js/i18n/zh.js")
CHART_MODULES = (
    "js/chart/candles.js",
    "js/chart/series_view.js",
    "js/chart/backfill.js",
    "vendor/lightweight-charts.standalone.production.mjs",
)
CHART_PAGES = frozenset({"chart", "monitor"})


def shell(page: str, title_key: str, build: str, *, library: bool) -> str:
    """The HTML of one page: its module fills ``<main>``."""
    base = f"/static/{build}"
    modules = COMMON_MODULES + (CHART_MODULES if page in CHART_PAGES and library else ())
    preload = "\n".join(f'<link rel="modulepreload" href="{base}/{m}">' for m in modules)
    missing = (
        ""
        if library
        else '<p class="banner error" data-i18n="app.no_library">The chart library is not '
        "installed: run scripts/setup.</p>"
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>klinewatch</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{base}/css/app.css">
{preload}
<script type="module" src="{base}/js/pages/{html.escape(page)}.js"></script>
</head>
<body data-page="{html.escape(page)}" data-title="{html.escape(title_key)}">
<header id="top"></header>
{missing}
<main id="main"><p class="muted" data-i18n="app.loading">Loading…</p></main>
<footer class="muted">Charts: TradingView Lightweight Charts™ · Copyright © 2025
<a href="https://www.tradingview.com/">TradingView, Inc.</a></footer>
</body>
</html>
"""


def build_router(static: Path = STATIC) -> APIRouter:
    """The pages and ``/static/<build>/``; built by ``create_app``, never at import."""
    router = APIRouter(include_in_schema=False)
    build = build_id(static)
    library = (static / CHART_LIBRARY.relative_to(STATIC)).is_file()
    router.mount(f"/static/{build}", LongLivedFiles(directory=static), name="static")

    for path, page, title in PAGES:
        body = shell(page, title, build, library=library)
        router.add_api_route(path, _page(body), methods=["GET"], response_class=HTMLResponse)
    return router


def _page(body: str) -> Any:
    async def page() -> HTMLResponse:
        return HTMLResponse(body, headers={"Cache-Control": "no-cache"})

    return page
