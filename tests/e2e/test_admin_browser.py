"""W14 in a browser: an order for a product the config does not know fails; the admin fixes
``schoolsync.yaml`` and restarts the roles that read it, then, in Debian's chromium driven by
Playwright, signs in at ``/admin/``, filters the failures, opens the one, replays it and sees it
resolved; the amoCRM sandbox has exactly one lead for the order. A screenshot of the resolved
failure is kept in ``tests/artifacts/admin-resolved.png``.

Skips, saying why, when Playwright or ``/usr/bin/chromium`` is missing (``.ci/run`` installs
chromium with apt; Playwright's own browser download is never used).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.conftest import Service
from tests.e2e.test_w1_intake import Sandboxes, school_yaml
from tests.e2e.test_w14_bulk_replay import FIXED, KNOWN, count, restart

pytestmark = pytest.mark.e2e

TOKEN = "e2e-browser-operator-token-0123"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOT = Path(__file__).resolve().parents[1] / "artifacts" / "admin-resolved.png"


def test_sign_in_filter_open_replay_and_see_it_resolved(
    service_factory: Callable[..., Service], tmp_path: Path
) -> None:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")

    port = free_port()
    config = tmp_path / "schoolsync.yaml"
    config.write_text(school_yaml(port) + KNOWN, encoding="utf-8")
    service = service_factory(
        SCHOOLSYNC_SANDBOX="true",
        SCHOOLSYNC_SANDBOX_PORT=str(port),
        SCHOOLSYNC_ADMIN_TOKENS__OPS__TOKEN=TOKEN,
        SCHOOLSYNC_ADMIN_TOKENS__OPS__ROLE="operator",
    )
    sandboxes = Sandboxes(port)
    service.wait_for(  # the export every start runs once has looked (before the order)
        lambda: bool(
            service.query("SELECT 1 FROM cursors WHERE name = :n", n="getcourse:sandbox:deals")
        ),
        timeout=60,
        what="the first periodic export",
    )
    (order,) = sandboxes.post("/getcourse/_sandbox/orders", {"count": 1, "product": "vip"})[
        "orders"
    ]
    number = str(order["number"])
    service.wait_for(
        lambda: count(service, "SELECT count(*) AS n FROM failures WHERE status = 'open'") == 1,
        timeout=60,
        what="the order's failure",
    )
    assert sandboxes.leads() == []

    config.write_text(school_yaml(port) + FIXED, encoding="utf-8")
    restart(service, "web", "worker")

    base = f"http://127.0.0.1:{service.port}/admin"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(locale="en-GB", viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/?lang=en")
            assert page.url.endswith("/admin/login")

            page.fill("input[name=token]", "not-the-token")
            page.click("button[type=submit].primary")
            assert "Wrong token" in page.inner_text("main")
            page.fill("input[name=token]", TOKEN)
            page.click("button[type=submit].primary")
            page.wait_for_url(f"{base}/")
            assert page.inner_text("#open-total") == "1"

            page.click("nav >> text=Failures")
            page.fill("#filters input[name=class]", "UnmappableError")
            page.fill("#filters input[name=entity]", number)
            page.click("#filters button[type=submit]")
            rows = page.locator("#failures tr.status-open")
            assert rows.count() == 1
            assert "Пакет VIP" in rows.first.inner_text()

            rows.first.locator("a").first.click()
            assert page.inner_text("#status") == "open"
            page.click("#replay")
            assert "done=replayed" in page.url

            for _ in range(60):  # the worker runs the job; the page shows it when reloaded
                if page.inner_text("#status") == "resolved":
                    break
                page.wait_for_timeout(1000)
                page.reload()
            assert page.inner_text("#status") == "resolved", service.log.read_text()[-3000:]
            assert "replay" in page.inner_text("#audit")
            assert page.locator("#replay").count() == 0  # nothing left to do

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            SCREENSHOT.unlink(missing_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()

    assert SCREENSHOT.exists() and SCREENSHOT.stat().st_size > 1000
    assert sandboxes.lead_numbers() == {number: 1}
