"""End to end: the viewer in headless Chromium, driven by Selenium, with the shipped
default model on the bundled example (the page shows the shared verdict's sentence).

Needs Debian's ``chromium`` and ``chromium-driver`` (``scripts/install_browser_test_deps.sh``)
and ``pip install selenium``; skipped with the reason when any is missing. Leaves a
screenshot in ``tests/serve/artifacts/viewer.png``; with ``NOISEAD_UPDATE_SCREENSHOT=1``
it also refreshes ``docs/screenshots/viewer.png`` (see ``browser_support``).
"""

from __future__ import annotations

import io
import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from browser_support import missing, screenshot, severe_console_errors, start_chromium
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "src" / "noisead" / "examples" / "spliced.png"

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


@pytest.fixture
def server(serve):
    """The real app with the default model on a free port of 127.0.0.1."""
    from noisead.serve.app import create_app

    with serve(create_app()) as viewer:
        yield viewer.base


@pytest.fixture
def browser(tmp_path):
    driver = start_chromium(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()


def _white_pixels(driver) -> int:
    """White pixels on the mask canvas, read back from the canvas itself."""
    return driver.execute_script("""
        const c = document.getElementById('mask-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) n += d[i] === 255 ? 1 : 0;
        return n;""")


def test_analyse_a_photo_in_the_browser(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from noisead.infer import analyze
    from noisead.serve.render import mask_from_heat16

    browser.get(server + "/")
    assert "noisead" in browser.title
    file_input = browser.find_element(By.ID, "file-input")
    error = browser.find_element(By.ID, "error")
    assert not error.is_displayed()

    # A file that is not an image: the server's message appears on the page.
    bogus = tmp_path / "not-a-photo.png"
    bogus.write_bytes(b"plain text, not pixels")
    file_input.send_keys(str(bogus))
    WebDriverWait(browser, 60).until(lambda d: error.is_displayed())
    assert "not a recognised image format" in error.text

    # The real thing: the bundled example (a region of another camera's photo spliced in),
    # uploaded with the page's token, judged by the shared verdict.
    expected = analyze(EXAMPLE).verdict
    file_input.send_keys(str(EXAMPLE))
    score = browser.find_element(By.ID, "score")
    WebDriverWait(browser, 300).until(lambda d: re.fullmatch(r"\d\.\d{3}", score.text))
    mask = browser.find_element(By.ID, "mask-canvas")
    WebDriverWait(browser, 60).until(lambda d: mask.get_attribute("data-ready") == "true")
    assert not error.is_displayed()
    assert float(score.text) == pytest.approx(expected.score, abs=1.5e-3)
    shown = browser.find_element(By.ID, "verdict").text
    assert shown == expected.text
    assert browser.find_element(By.ID, "decision").text.lower() == expected.decision.value
    assert "Strong evidence" not in browser.find_element(By.TAG_NAME, "body").text
    assert "evidence, not proof" in browser.find_element(By.ID, "caveat").text
    assert browser.find_element(By.ID, "model-name").text == "default"
    side = Image.open(EXAMPLE).size[0]

    overlay = browser.find_element(By.ID, "overlay-img")
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "const i = arguments[0]; return i.complete && i.naturalWidth > 0;", overlay))
    assert overlay.is_displayed()
    assert browser.execute_script("return arguments[0].naturalWidth;", overlay) == side
    fingerprint = browser.find_element(By.ID, "fingerprint-img")
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return arguments[0].naturalWidth;", fingerprint) == side)
    assert (mask.get_attribute("width"), mask.get_attribute("height")) == (str(side),) * 2

    download = browser.find_element(By.ID, "download-all")
    href = download.get_attribute("href")
    assert re.fullmatch(re.escape(server) + r"/api/result/[0-9a-f]{32}/all\.zip", href)

    # The page's mask is exactly the 16-bit heatmap thresholded (no colour management).
    base = href.rsplit("/", 1)[0]
    with urllib.request.urlopen(base + "/heatmap-gray.png", timeout=30) as r:
        heat16 = np.asarray(Image.open(io.BytesIO(r.read()))).astype(np.uint16)
    threshold = float(browser.find_element(By.ID, "threshold").get_attribute("value"))
    assert _white_pixels(browser) == int(mask_from_heat16(heat16, threshold).sum())

    assert screenshot(browser, "viewer.png").stat().st_size > 10_000

    # The threshold slider redraws the mask: at 0 every pixel is marked.
    slider = browser.find_element(By.ID, "threshold")
    slider.send_keys(Keys.HOME)
    WebDriverWait(browser, 10).until(lambda d: _white_pixels(d) == side * side)
    assert browser.find_element(By.ID, "threshold-value").text == "0.000"
    assert download.get_attribute("href").endswith("all.zip?threshold=0")
    slider.send_keys(Keys.END)  # at 1 only pixels at the very top of the scale
    WebDriverWait(browser, 10).until(
        lambda d: _white_pixels(d) == int((heat16 == 65535).sum()))

    # The opacity slider fades the heatmap over the photo.
    opacity = browser.find_element(By.ID, "opacity")
    opacity.send_keys(Keys.HOME)
    assert overlay.value_of_css_property("opacity") == "0"
    opacity.send_keys(Keys.END)
    assert overlay.value_of_css_property("opacity") == "1"

    # A flat photo cannot be judged: the page says so and shows no score.
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(flat)
    file_input.send_keys(str(flat))
    decision = browser.find_element(By.ID, "decision")
    WebDriverWait(browser, 120).until(
        lambda d: decision.text.lower() == "not enough texture to judge")
    assert browser.find_element(By.ID, "verdict").text.startswith("Not enough texture")
    assert not browser.find_element(By.ID, "score-box").is_displayed()

    # Noise: two parts. The same example again: a note says the heatmap alone changed,
    # and the verdict is the one-part analysis' own.
    Select(browser.find_element(By.ID, "parts")).select_by_value("auto")
    file_input.send_keys(str(EXAMPLE))
    notes = browser.find_element(By.ID, "notes")
    WebDriverWait(browser, 300).until(lambda d: "two-part noise statistics" in notes.text)
    assert browser.find_element(By.ID, "verdict").text == expected.text
    assert browser.find_element(By.ID, "parts-used").text == "two parts"

    severe = severe_console_errors(browser, ("status of 400",))
    assert not severe, severe
