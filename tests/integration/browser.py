"""Open a report page in headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
installed by .ci/setup) as a person would, with the network cut off: what the console
said, and a screenshot of every figure."""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@dataclass(frozen=True)
class Figure:
    caption: str
    width: int  # the image as decoded by the browser (0: it could not be)
    png: bytes  # the figure's screenshot

    def inked(self) -> float:
        """The share of the screenshot's pixels that are not white."""
        grey = Image.open(io.BytesIO(self.png)).convert("L")
        histogram = grey.histogram()
        return 1 - sum(histogram[245:]) / sum(histogram)

    def colours(self) -> int:
        return len(Image.open(io.BytesIO(self.png)).convert("RGB").getcolors(1 << 20) or [])


@dataclass(frozen=True)
class Page:
    console: list[dict]  # every console message and page error
    title: str
    text: str
    figures: list[Figure]
    png: bytes  # the whole page


def open_page(path: Path) -> Page:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,1000",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: a fetch would fail and be logged
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        driver.get(path.resolve().as_uri())
        figures = []
        for element in driver.find_elements(By.CSS_SELECTOR, "figure"):
            image = element.find_element(By.TAG_NAME, "img")
            driver.execute_script("arguments[0].scrollIntoView()", element)
            figures.append(
                Figure(
                    element.find_element(By.TAG_NAME, "figcaption").text,
                    int(driver.execute_script("return arguments[0].naturalWidth", image)),
                    image.screenshot_as_png,
                )
            )
        return Page(
            driver.get_log("browser"),
            driver.title,
            driver.find_element(By.TAG_NAME, "body").text,
            figures,
            driver.get_screenshot_as_png(),
        )
    finally:
        driver.quit()


def assert_plots_drawn(page: Page, at_least: int) -> None:
    """No console message at all, and every figure decoded and visibly drawn on."""
    assert page.console == [], page.console
    assert len(page.figures) >= at_least, [f.caption for f in page.figures]
    for f in page.figures:
        assert f.width > 0, f"{f.caption}: the browser could not decode the image"
        assert f.inked() > 0.02 and f.colours() > 8, f"{f.caption}: blank ({f.inked():.3f})"
