"""A real headless Chromium for tests: Debian's `chromium` with its `chromedriver`, driven by
Selenium. `scripts/bootstrap --test` installs both; a missing one fails the test saying so."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)


def _find(names: tuple[str, ...]) -> str:
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/lib/chromium")
        if found:
            return found
    pytest.fail(f"no {names[0]} here: `scripts/bootstrap --test` installs Debian's chromium "
                "and chromium-driver (apt-get install chromium chromium-driver)")


@contextmanager
def chromium() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _find(BROWSERS)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                "--window-size=1400,1200"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(_find(DRIVERS)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
