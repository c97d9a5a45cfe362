"""Browser tests: Debian's headless Chromium driven by Playwright (never a downloaded
browser) against the app served over real HTTP on the simulator's data.

One app and one browser for the folder (tests/browser/stack.py); each test gets a
fresh browser context (no shared storage) and a page that records every console error
and uncaught exception. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from klinewatch.sim.testing import running_sim
from tests.browser.stack import CHROMIUM, CHROMIUM_ARGS, NOW_MS, Stack, fill_database, running_stack

playwright_api = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
WAIT_MS = 15_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="package")
def stack(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    path = tmp_path_factory.mktemp("browser") / "klinewatch.sqlite3"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    with running_sim() as sim:
        sim.reset(now_ms=NOW_MS)
        fill_database(url, sim)
        with running_stack(sim, url) as running:
            yield running


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (scripts/setup installs it)")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Tab:
    """A page of a fresh browser context, with what went wrong in it."""

    page: playwright_api.Page
    stack: Stack
    errors: list[str] = field(default_factory=list)

    def open(self, path: str, ready: str = "#main[data-state=ready]") -> None:
        """Navigate and wait until the page says it has drawn (``ready`` selector)."""
        self.page.goto(self.stack.url + path)
        self.page.wait_for_selector(ready, state="attached", timeout=WAIT_MS)

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path


@pytest.fixture
def tab(browser: playwright_api.Browser, stack: Stack) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    opened = Tab(page, stack)
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: opened.errors.append(f"uncaught: {e}"))
    try:
        yield opened
    finally:
        context.close()
