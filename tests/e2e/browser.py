"""Headless Chromium (Debian's chromium and chromium-driver) through Selenium, with axe-core.

`Browser.visit_checked` opens a page and runs axe-core on it: a serious or critical violation
fails the test. Screenshots go to docs/screenshots, for the README, when
INNOMATCH_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from axe_selenium_python import Axe
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
_BLOCKING = ("serious", "critical")


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def _gone(element: WebElement) -> bool:
    """Whether `element` left the document (the page was replaced). Chrome sometimes says so
    with an "unknown error" (the node "does not belong to the document") rather than the
    stale-element error Selenium's own staleness_of waits for."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


class Browser:
    def __init__(self, base_url: str) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1500"):
            options.add_argument(arg)
        options.add_argument("--lang=sv-SE")
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(30)
        self.driver.set_script_timeout(30)
        self.base_url = base_url.rstrip("/")
        self.checked: list[str] = []

    def close(self) -> None:
        self.driver.quit()

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def check_accessibility(self) -> None:
        """axe-core on the page as it is now: no serious or critical violation."""
        axe = Axe(self.driver)
        axe.inject()
        results = axe.run()
        blocking = [v for v in results["violations"] if v.get("impact") in _BLOCKING]
        self.checked.append(self.driver.current_url)
        assert not blocking, f"{self.driver.current_url}: " + axe.report(blocking)

    def visit_checked(self, path: str) -> None:
        self.open(path)
        self.check_accessibility()

    def screenshot(self, name: str) -> None:
        """Refresh docs/screenshots/<name>.png, when INNOMATCH_SCREENSHOTS=1 asks for it (so
        an ordinary test run leaves the committed pictures alone)."""
        if os.environ.get("INNOMATCH_SCREENSHOTS") != "1":
            return
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        height = self.driver.execute_script("return document.body.scrollHeight")
        self.driver.set_window_size(1280, min(max(int(height) + 40, 800), 3000))
        self.driver.execute_script("window.scrollTo(0, 0)")
        self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
        self.driver.set_window_size(1280, 1500)

    @property
    def path(self) -> str:
        return re.sub(r"^https?://[^/]+", "", self.driver.current_url)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return str(self.find("main").text)

    def fill(self, name: str, value: str) -> None:
        field = self.find(f"[name='{name}']")
        field.clear()
        field.send_keys(value)

    def select(self, name: str, value: str) -> None:
        self.find(f"select[name='{name}'] option[value='{value}']").click()

    def tick(self, name: str, value: str) -> None:
        box = self.find(f"input[name='{name}'][value='{value}']")
        if not box.is_selected():
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
            box.click()

    def submit(self, css: str = "main form button[type=submit]") -> None:
        """Press a form's button and wait for the page it leads to (every form here posts
        to the server), so the next look at the page does not race the navigation."""
        button = self.find(css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        self._navigate(button)

    def follow(self, css: str) -> None:
        """Follow a link and wait for the page it leads to."""
        self._navigate(self.find(css))

    def _navigate(self, element: WebElement) -> None:
        old_page = self.find("html")
        element.click()
        WebDriverWait(self.driver, 30).until(lambda _: _gone(old_page))
        WebDriverWait(self.driver, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )

    def html_lang(self) -> str:
        return str(self.find("html").get_attribute("lang"))

    def wait_until(self, ready: Callable[[], Any], timeout: float = 10) -> Any:
        """Without reloading: for what the page's script changes."""
        deadline = time.monotonic() + timeout
        while not (result := ready()):
            assert time.monotonic() < deadline, f"not ready within {timeout} s at {self.driver.current_url}"
            time.sleep(0.2)
        return result

    def reload_until(self, ready: Callable[[], Any], timeout: float = 60, every: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = ready()
            if result:
                return result
            assert time.monotonic() < deadline, f"not ready within {timeout} s at {self.driver.current_url}"
            time.sleep(every)
            self.driver.refresh()


@contextmanager
def browser(base_url: str) -> Iterator[Browser]:
    if not chromium_available():
        pytest.fail("Chromium is not installed: apt-get install -y chromium chromium-driver")
    b = Browser(base_url)
    try:
        yield b
    finally:
        b.close()
