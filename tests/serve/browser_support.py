"""What the viewer's browser tests share: headless Chromium driven by Selenium, and the
screenshots they leave (``tests/serve/artifacts/``; with ``NOISEAD_UPDATE_SCREENSHOT=1``
also ``docs/screenshots/``, where ``docs/VIEWER.md`` shows them).

Needs Debian's ``chromium`` and ``chromium-driver`` (``scripts/install_browser_test_deps.sh``)
and ``pip install selenium``; :func:`missing` says what is not there, for a skip reason.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import os
from pathlib import Path

from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DOC_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
VIEWPORT = (1280, 800)
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--window-size=1280,1000", "--force-device-scale-factor=1")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return "chromium/chromedriver missing (run scripts/install_browser_test_deps.sh as root)"
    for module in ("selenium", "flask"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install {module})"
    return None


def start_chromium(profile: Path):
    """Headless Chromium with a 1280 x 800 viewport and its console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(60)
    width, height = VIEWPORT
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return driver


def screenshot(driver, name: str) -> Path:
    """The viewport as ``artifacts/<name>``, colours reduced to a palette (a screenshot of
    photos stays legible at a fifth of the bytes); copied to ``docs/screenshots/`` when
    ``NOISEAD_UPDATE_SCREENSHOT=1``."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                   dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
    if os.environ.get("NOISEAD_UPDATE_SCREENSHOT") == "1":
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (DOC_SCREENSHOTS / name).write_bytes(path.read_bytes())
    return path


def severe_console_errors(driver, expected: tuple[str, ...] = ()) -> list[str]:
    """The page's console errors, but those of HTTP answers the test asked for."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(x in e["message"] for x in expected)]
