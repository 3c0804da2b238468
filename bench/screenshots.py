"""Regenerate the dashboard screenshots in docs/screenshots/ from demo data.

    .venv/bin/python -m bench.screenshots [OUTPUT_DIR]

Serves the API app with the dashboard mounted (uvicorn on 127.0.0.1, plain HTTP) over a
fresh SQLite store seeded by bench.demo, and photographs the main pages in Debian's
headless chromium through Playwright (never a downloaded browser build).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.demo import NOW, PARENT, PARENT_PASSWORD, SUB_PASSWORD, demo_settings, seed_demo
from playwright.sync_api import Page, sync_playwright
from tests.web.live import CHROMIUM, CHROMIUM_ARGS, LiveServer

from meshproxy.api import create_app
from meshproxy.api.forwarding import Forwarding
from meshproxy.store import Store
from meshproxy.web import dashboard_routes

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def _login(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/dashboard/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/dashboard/")


def _shoot(page: Page, base: str, path: str, output: Path, name: str) -> None:
    if path:
        page.goto(base + path)
    page.screenshot(path=str(output / f"{name}.png"), full_page=True)
    print(f"  {name}.png")


def main(output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        settings = demo_settings(Path(scratch) / "data")
        store = Store.open(f"sqlite:///{Path(scratch) / 'demo.sqlite3'}")
        seed_demo(settings, store)
        clock = NOW.timestamp
        routes = dashboard_routes(
            settings, store, clock=clock, clients=Forwarding(settings.api.trusted_proxies)
        )
        app = create_app(settings, store, mounts=routes, clock=clock)
        with LiveServer(app) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            base = server.url
            desktop = browser.new_page(viewport={"width": 1280, "height": 800})
            _shoot(desktop, base, "/dashboard/login/", output, "login")
            _login(desktop, base, PARENT, PARENT_PASSWORD)
            _shoot(desktop, base, "/dashboard/", output, "parent-overview")
            _shoot(desktop, base, "/dashboard/sub-accounts/?sort=monthly&dir=desc", output,
                   "sub-accounts")  # fmt: skip
            _shoot(desktop, base, "/dashboard/sub-accounts/pm_alice/", output, "sub-account")
            desktop.goto(f"{base}/dashboard/new-sub-account/")
            desktop.get_by_label("Username").fill("bad name!")
            desktop.get_by_label("Monthly limit (GB)").fill("-3")
            desktop.get_by_role("button", name="Create sub-account").click()
            _shoot(desktop, base, "", output, "new-sub-account-errors")
            _shoot(desktop, base, "/dashboard/access/", output, "ips-and-hostnames")
            _shoot(desktop, base, "/dashboard/proxies/", output, "proxies")
            _shoot(desktop, base, "/dashboard/export/", output, "export")
            _shoot(desktop, base, "/dashboard/help/", output, "api-help")
            phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
            _login(phone, base, PARENT, PARENT_PASSWORD)
            _shoot(phone, base, "/dashboard/sub-accounts/", output, "phone-sub-accounts")
            sub = browser.new_page(viewport={"width": 1280, "height": 800})
            _login(sub, base, "pm_alice", SUB_PASSWORD)
            _shoot(sub, base, "/dashboard/", output, "sub-account-overview")
            browser.close()
        store.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)
