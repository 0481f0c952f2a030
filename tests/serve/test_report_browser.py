"""The batch report in headless Chromium: hostile file names display as text and run
nothing, whether the page is read or its links are clicked.

Builds a real report (the tiny detector of this folder's conftest, analysing real PNGs
named like attacks), opens it from disk as an analyst would (``file://``), and checks that
no dialog opens, the title is untouched, no injected element exists, the names are shown
verbatim, every link stays in the output folder, and the page's Content-Security-Policy
really blocks an inline script. Needs Debian's chromium and chromium-driver
(``scripts/install_browser_test_deps.sh``) and selenium; skipped with the reason otherwise.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--window-size=1200,900")
HOSTILE = ["javascript:alert(document.domain)", '"><img src=x onerror=alert(1)>',
           "it's \"quoted\" <script>document.title='pwned'<\\script>",
           "<svg onload=alert(3)>"]


def _missing() -> str | None:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return "chromium/chromedriver missing (run scripts/install_browser_test_deps.sh as root)"
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install selenium)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


@pytest.fixture
def report(tmp_path, tiny_detector, spliced_array) -> Path:
    from noisead.batch import run_batch
    from noisead.infer import analyze

    folder = tmp_path / "in"
    folder.mkdir()
    for name in HOSTILE:
        Image.fromarray(spliced_array).save(folder / f"{name}.png")
    out = tmp_path / "out"
    run_batch([folder], out, functools.partial(analyze, detector=tiny_detector),
              model="test", progress=False)
    return out / "report.html"


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _no_dialog(driver) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        text = driver.switch_to.alert.text
    except NoAlertPresentException:
        return
    pytest.fail(f"a dialog opened: {text!r}")


def test_hostile_names_run_nothing_and_show_as_text(report, browser):
    from selenium.webdriver.common.by import By

    url = report.as_uri()
    browser.get(url)
    _no_dialog(browser)
    assert browser.title == "noisead report (1/1)"
    assert not browser.find_elements(By.CSS_SELECTOR, 'img[src="x"], svg, script')
    shown = {td.text for td in browser.find_elements(By.CSS_SELECTOR, "td:last-child")}
    folder = report.parent.parent / "in"
    assert shown == {f"{folder / name}.png" for name in HOSTILE}
    images = browser.execute_script(
        "return [...document.images].map(i => i.naturalWidth > 0)")
    assert len(images) == 2 * len(HOSTILE) and all(images)  # thumbnails load under the CSP

    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "td a")]
    assert links and all(h.startswith(report.parent.as_uri() + "/") for h in links)
    for i in range(len(links)):
        browser.get(url)
        browser.find_elements(By.CSS_SELECTOR, "td a")[i].click()
        _no_dialog(browser)
        assert browser.current_url == links[i]  # went to the overlay PNG, ran nothing
        assert browser.title != "pwned"  # (an image page is titled by its file name)

    browser.get(url)  # the policy itself: an injected inline script is refused
    browser.execute_script("const s = document.createElement('script');"
                           "s.textContent = \"document.title = 'inline ran'\";"
                           "document.head.appendChild(s);")
    assert browser.title == "noisead report (1/1)"
