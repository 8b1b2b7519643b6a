"""Browser journeys: the whole system (web, worker, scheduler, SMTP sink) as `make dev` runs it,
driven by Playwright in Debian's chromium (the `browser` fixture of tests/conftest.py)."""

import shutil
from pathlib import Path

import pytest
from redis import Redis

from tests.e2e.journeys import ROOT, LiveSystem
from tests.support import worker_number


@pytest.fixture(scope="session")
def live_system(tmp_path_factory, redis_url, browser_executable):
    # A database of the tests' Redis that the per-test flush leaves alone; emptied here, so that
    # nothing an earlier run left (queued jobs, limit counters) reaches this one.
    # (Database 3, and one more per parallel worker that may run journeys.)
    live_redis_url = redis_url.rsplit("/", 1)[0] + f"/{3 + worker_number()}"
    Redis.from_url(live_redis_url).flushdb()
    system = LiveSystem(tmp_path_factory.mktemp("e2e"), live_redis_url)
    system.start()
    yield system
    system.stop()


@pytest.fixture
def output_dir(request) -> Path:
    folder = ROOT / "test-output" / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def new_page(browser, live_system, output_dir):
    """Open pages in fresh browser contexts (one per person); the last page of the journey is
    saved as a screenshot under test-output/<test name>/."""
    contexts = []

    def open_page(viewport=None, locale="en-US"):
        # The locale is what the browser asks for in Accept-Language.
        context = browser.new_context(
            base_url=live_system.url, viewport=viewport or {"width": 1280, "height": 900}, locale=locale
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for number, context in enumerate(contexts):
        for page in context.pages:
            page.screenshot(path=str(output_dir / f"last-page-{number}.png"), full_page=True)
        context.close()
