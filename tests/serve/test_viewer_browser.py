"""The viewer for casework in headless Chromium, with the shipped default model: linked
zoom and pan, the swipe comparison, the evidence breakdown, and several photos at once
behind the server's bounded queue. Each test leaves a screenshot of its feature (see
``browser_support``)."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
import zipfile

import pytest
from browser_support import missing, screenshot, severe_console_errors, start_chromium
from PIL import Image

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

# Where each visible view shows the image: its scale (screen px per image px) and the
# image point at its centre, read from the rendered boxes, not from the script's state.
GEOMETRY = """
const out = {};
for (const view of document.querySelectorAll('.view')) {
  if (!view.offsetParent) continue;
  const content = view.querySelector('.view-content');
  const v = view.getBoundingClientRect(), c = content.getBoundingClientRect();
  const scale = c.width / parseFloat(content.style.width);
  out[view.dataset.view] = {scale, left: v.left, top: v.top, width: v.width, height: v.height,
    originX: c.left, originY: c.top, transform: content.style.transform,
    cx: (v.left + v.width / 2 - c.left) / scale, cy: (v.top + v.height / 2 - c.top) / scale};
}
return out;"""


@pytest.fixture(scope="module")
def photos(tmp_path_factory, casework_photos):
    return casework_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def verdicts(photos, casework_model):
    """The shared verdict of each photo, from the library itself."""
    from noisead.infer import analyze, load_detector

    detector = load_detector(casework_model)
    return {name: analyze(photos[name], detector) for name in ("resampled", "spliced")}


@pytest.fixture(scope="module")
def server(serve, casework_model):
    from noisead.serve.app import create_app

    with serve(create_app(casework_model)) as viewer:
        yield viewer


@pytest.fixture
def chromium(tmp_path):
    driver = start_chromium(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, timeout: float = 120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _open(driver, server, photo) -> None:
    """The page, with ``photo`` analysed and its mask drawn."""
    from selenium.webdriver.common.by import By

    driver.get(server.base + "/")
    driver.find_element(By.ID, "file-input").send_keys(str(photo))
    _wait(driver, lambda d: d.find_element(By.ID, "item-name").text == photo.name
          and d.find_element(By.ID, "mask-canvas").get_attribute("data-ready") == "true"
          and d.execute_script("return document.getElementById('overlay-img').complete"))


def _result_json(driver, server) -> dict:
    href = driver.find_element("id", "download-all").get_attribute("href").split("?")[0]
    with urllib.request.urlopen(href.rsplit("/", 1)[0], timeout=30) as r:
        return json.loads(r.read())


def _wheel(driver, view: dict, image_x: float, image_y: float, notches: int) -> None:
    """Wheel ``notches`` times (up = zoom in) over the image point (x, y) of ``view``."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin

    x = view["originX"] + image_x * view["scale"] - (view["left"] + view["width"] / 2)
    y = view["originY"] + image_y * view["scale"] - (view["top"] + view["height"] / 2)
    element = driver.find_element("css selector", f'.view[data-view="{view["name"]}"]')
    for _ in range(notches):
        ActionChains(driver).scroll_from_origin(
            ScrollOrigin.from_element(element, round(x), round(y)), 0, -300).perform()


def _geometry(driver) -> dict:
    views = driver.execute_script(GEOMETRY)
    for name, view in views.items():
        view["name"] = name
    return views


def _same_spot(views: dict) -> None:
    first = next(iter(views.values()))
    for view in views.values():
        assert view["cx"] == pytest.approx(first["cx"], abs=0.5), views
        assert view["cy"] == pytest.approx(first["cy"], abs=0.5), views


def test_views_zoom_and_pan_together(server, chromium, photos):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By

    _open(chromium, server, photos["resampled"])
    chromium.execute_script("document.querySelector('.views-card').scrollIntoView()")
    fitted = _geometry(chromium)
    assert set(fitted) == {"photo", "heatmap", "mask", "fingerprint"}
    _same_spot(fitted)
    assert fitted["photo"]["cx"] == pytest.approx(256, abs=0.5)

    # The wheel over the resampled region of the heatmap zooms every view about that spot.
    heat = fitted["heatmap"]
    _wheel(chromium, heat, 130, 360, 3)
    zoomed = _geometry(chromium)
    _same_spot(zoomed)
    for name, view in zoomed.items():
        assert view["scale"] > 3 * fitted[name]["scale"], name
        assert view["transform"] != fitted[name]["transform"], name
    under_cursor_x = heat["originX"] + 130 * heat["scale"]  # the same screen point
    assert (under_cursor_x - zoomed["heatmap"]["originX"]) / zoomed["heatmap"]["scale"] == (
        pytest.approx(130, abs=1.5))
    screenshot(chromium, "viewer-zoom.png")

    # A drag on the fingerprint pans them all by the same image distance.
    fingerprint = chromium.find_element(By.CSS_SELECTOR, '.view[data-view="fingerprint"]')
    ActionChains(chromium).click_and_hold(fingerprint).move_by_offset(60, 24).release().perform()
    panned = _geometry(chromium)
    _same_spot(panned)
    step = zoomed["fingerprint"]["scale"]
    assert panned["photo"]["cx"] == pytest.approx(zoomed["photo"]["cx"] - 60 / step, abs=1)
    assert panned["mask"]["cy"] == pytest.approx(zoomed["mask"]["cy"] - 24 / step, abs=1)

    # Fit puts every view back; the keyboard zooms too.
    chromium.find_element(By.ID, "zoom-fit").click()
    assert {n: v["transform"] for n, v in _geometry(chromium).items()} == (
        {n: v["transform"] for n, v in fitted.items()})
    assert chromium.find_element(By.ID, "zoom-level").text == "fit"
    chromium.find_element(By.TAG_NAME, "body").send_keys("+")
    assert chromium.find_element(By.ID, "zoom-level").text == "×2.0"

    # Fitted, a wheel down over a view scrolls the page instead (nothing to zoom out).
    chromium.find_element(By.ID, "zoom-fit").click()
    chromium.execute_script("window.scrollTo(0, 0)")
    photo = chromium.find_element(By.CSS_SELECTOR, '.view[data-view="photo"]')
    ActionChains(chromium).scroll_to_element(photo).perform()
    top = chromium.execute_script("return window.scrollY")
    ActionChains(chromium).scroll_from_origin(ScrollOrigin.from_element(photo), 0, 200).perform()
    _wait(chromium, lambda d: d.execute_script("return window.scrollY") > top, 10)
    assert chromium.find_element(By.ID, "zoom-level").text == "fit"
    assert not severe_console_errors(chromium)


def _swipe_shot(driver, position: int) -> Image.Image:
    driver.execute_script("const s = document.getElementById('swipe-position');"
                          "s.value = arguments[0]; s.dispatchEvent(new Event('input'));",
                          position)
    view = driver.find_element("css selector", '.view[data-view="swipe"]')
    return Image.open(io.BytesIO(view.screenshot_as_png)).convert("L")


def _difference(a: Image.Image, b: Image.Image) -> float:
    from PIL import ImageChops, ImageStat

    return ImageStat.Stat(ImageChops.difference(a, b)).mean[0]


def test_swipe_compares_the_photo_with_a_layer(server, chromium, photos):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open(chromium, server, photos["resampled"])
    chromium.find_element(By.ID, "layout-swipe").click()
    assert chromium.find_element(By.ID, "views-swipe").is_displayed()
    assert not chromium.find_element(By.ID, "views-side").is_displayed()
    assert chromium.find_element(By.ID, "layout-swipe").get_attribute("aria-pressed") == "true"
    chromium.execute_script("document.querySelector('.views-card').scrollIntoView()")

    # The divider shows the photo on its left and the heatmap on its right, as rendered.
    photo_only, heatmap_only, half = (_swipe_shot(chromium, p) for p in (100, 0, 50))
    width, height = half.size
    assert _difference(photo_only, heatmap_only) > 10  # the two layers differ
    left, right = (0, 0, width // 2 - 12, height), (width // 2 + 12, 0, width, height)
    assert _difference(half.crop(left), photo_only.crop(left)) < 2
    assert _difference(half.crop(right), heatmap_only.crop(right)) < 2
    assert chromium.find_element(By.ID, "swipe-top").value_of_css_property("clip-path") == (
        "inset(0px 0px 0px 50%)")

    # The swipe view follows the same zoom as the others.
    swipe = _geometry(chromium)["swipe"]
    _wheel(chromium, swipe, 130, 360, 2)
    zoomed = _geometry(chromium)["swipe"]
    assert zoomed["scale"] > 2 * swipe["scale"]
    chromium.find_element(By.ID, "layout-side").click()
    side = _geometry(chromium)
    assert set(side) == {"photo", "heatmap", "mask", "fingerprint"}
    assert side["photo"]["cx"] == pytest.approx(zoomed["cx"], abs=0.5)
    chromium.find_element(By.ID, "layout-swipe").click()

    layer = Select(chromium.find_element(By.ID, "swipe-layer"))
    layer.select_by_value("fingerprint")
    assert chromium.find_element(By.ID, "swipe-img").get_attribute("src").endswith(
        "/fingerprint.png")
    layer.select_by_value("mask")
    assert chromium.find_element(By.ID, "swipe-mask").is_displayed()
    assert not chromium.find_element(By.ID, "swipe-img").is_displayed()
    layer.select_by_value("heatmap")
    _swipe_shot(chromium, 45)
    screenshot(chromium, "viewer-swipe.png")
    assert not severe_console_errors(chromium)


def test_evidence_breakdown_follows_the_threshold(server, chromium, photos, verdicts):
    from selenium.webdriver.common.by import By

    from noisead.infer import evidence_text

    _open(chromium, server, photos["resampled"])
    expected = verdicts["resampled"]
    assert chromium.find_element(By.ID, "verdict").text == expected.verdict.text
    assert chromium.find_element(By.ID, "decision").text.lower() == "flagged"

    def shown() -> dict[str, float]:
        rows = chromium.find_elements(By.CSS_SELECTOR, "#evidence-list li")
        return {r.get_attribute("data-name"): float(r.get_attribute("data-share")) for r in rows}

    result = _result_json(chromium, server)
    assert set(shown()) == set(result["evidence_in_mask"])
    for threshold in (0.5, 0.0):
        chromium.execute_script("const s = document.getElementById('threshold');"
                                "s.value = arguments[0]; s.dispatchEvent(new Event('input'));",
                                threshold)
        zip_url = f"{server.base}{result['urls']['zip']}?threshold={threshold}"
        with urllib.request.urlopen(zip_url, timeout=30) as r:
            with zipfile.ZipFile(io.BytesIO(r.read())) as zf:
                server_shares = json.loads(zf.read("summary.json"))["evidence_in_mask"]
        _wait(chromium, lambda d, t=threshold: f"threshold {t:.3f}" in d.find_element(
            By.ID, "evidence-line").text, 10)
        page = shown()
        assert page == pytest.approx(server_shares, abs=1e-4)
        line = chromium.find_element(By.ID, "evidence-line").text
        assert line == f"Set by: {evidence_text(page)} (at threshold {threshold:.3f})."
    chromium.execute_script("document.getElementById('threshold').value = 0.95;"
                            "document.getElementById('threshold')"
                            ".dispatchEvent(new Event('input'));")
    _wait(chromium, lambda d: "threshold 0.950" in d.find_element(By.ID, "evidence-line").text)
    screenshot(chromium, "viewer-evidence.png")


def test_several_photos_queue_behind_a_busy_server(serve, chromium, photos, verdicts,
                                                  casework_model):
    """One analysis at a time may wait on the server (max_pending=1), and another client
    holds it: the page shows its photos queued, waits out the 503 and steps through all."""
    from selenium.webdriver.common.by import By

    from noisead.serve.app import create_app

    with serve(create_app(casework_model, max_pending=1)) as busy:
        queue = busy.app.extensions["noisead"]["queue"]
        chromium.get(busy.base + "/")
        chromium.execute_script("""
            window.seen = [];
            new MutationObserver((changes) => changes.forEach((c) => window.seen.push([
                c.target.querySelector('.item-title').textContent, c.target.dataset.state,
                document.querySelectorAll('#file-list li[data-state=analysing]').length])))
              .observe(document.getElementById('file-list'),
                       {subtree: true, attributes: true, attributeFilter: ['data-state']});""")
        other = threading.Thread(target=busy.post, args=(photos["spliced"].read_bytes(),))
        other.start()  # another analyst's upload takes the one slot
        _wait(chromium, lambda d: queue.pending == 1, 30)
        names = ("resampled", "spliced", "flat", "not-a-photo")
        chromium.find_element(By.ID, "file-input").send_keys(
            "\n".join(str(photos[n]) for n in names))
        first_states = [li.get_attribute("data-state")
                        for li in chromium.find_elements(By.CSS_SELECTOR, "#file-list li")]
        assert first_states.count("queued") >= 3
        _wait(chromium, lambda d: all(li.get_attribute("data-state") in ("done", "failed")
                                      for li in d.find_elements(By.CSS_SELECTOR,
                                                                "#file-list li")), 300)
        other.join(timeout=120)
        seen = chromium.execute_script("return window.seen")
        assert ["resampled.png", "waiting", 0] in seen  # the server said 503: it waited
        assert max(n for _, _, n in seen) == 1  # never more than the server admits
        badges = [b.text for b in chromium.find_elements(By.CSS_SELECTOR, "#file-list .badge")]
        assert badges == ["Flagged", verdicts["spliced"].verdict.decision.value.capitalize(),
                          "Not enough texture to judge", "Failed"]
        assert chromium.find_element(By.ID, "files-summary").text == "3 analysed, 1 failed of 4."

        # The first result opened by itself; the arrows and n / p step through the list.
        name = chromium.find_element(By.ID, "item-name")
        assert name.text == "resampled.png"
        chromium.find_element(By.ID, "next-item").click()
        _wait(chromium, lambda d: name.text == "spliced.png", 30)
        assert chromium.find_element(By.ID, "verdict").text == verdicts["spliced"].verdict.text
        chromium.find_element(By.TAG_NAME, "body").send_keys("n")
        _wait(chromium, lambda d: name.text == "flat.png", 30)
        assert not chromium.find_element(By.ID, "score-box").is_displayed()
        chromium.find_element(By.ID, "next-item").click()  # the failed one: its reason
        error = chromium.find_element(By.ID, "error")
        _wait(chromium, lambda d: error.is_displayed(), 30)
        assert error.text.startswith("not-a-photo.png: ")
        assert "not a recognised image format" in error.text
        chromium.find_element(By.TAG_NAME, "body").send_keys("p")
        _wait(chromium, lambda d: not error.is_displayed(), 30)
        chromium.find_element(By.TAG_NAME, "body").send_keys("p", "p")
        _wait(chromium, lambda d: name.text == "resampled.png", 30)
        screenshot(chromium, "viewer-files.png")
        assert not severe_console_errors(chromium, ("status of 400", "status of 503"))
