"""Opening the report page in a real headless Chromium (Debian's ``chromium`` package, driven by Playwright):
what loaded, what the console said, and a screenshot.

    python -m benchmark.report.browser reports/index.html docs/report.png
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# Chromium on a machine without network: no background connections, no sandbox (runs as root in CI).
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync")


def chromium_path() -> str | None:
    """The Chromium executable on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def check_page(page_path: str | os.PathLike, screenshot: str | os.PathLike, width: int = 1200) -> dict:
    """Load ``page_path`` (a local HTML file) and return ``{"table_rows", "image_widths", "console_errors"}``:
    the body rows of every headline table (one per benchmark set), each ``<img>``'s natural width (0 = did not load) and every console
    error or uncaught page error; writes a full-page PNG screenshot to ``screenshot``."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise FileNotFoundError("Chromium is not installed: apt-get install chromium")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(Path(page_path).resolve().as_uri(), wait_until="load")
            rows = page.locator("table.headline tbody tr").count()
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {"table_rows": rows, "image_widths": widths, "console_errors": errors}


if __name__ == "__main__":
    print(check_page(sys.argv[1], sys.argv[2]))
