"""A batch run opened in the viewer (``noisead serve --batch``) in headless Chromium, with
the shipped default model: the list follows the decision, score and name filters as the
batch's own records say, a result opens with its recorded verdict, evidence and full-size
outputs, and the arrows step through the list. Leaves ``viewer-batch.png``."""

from __future__ import annotations

import functools
import json

import pytest
from browser_support import missing, screenshot, severe_console_errors, start_chromium
from conftest import CASEWORK_THRESHOLD
from PIL import Image

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


@pytest.fixture(scope="module")
def batch(tmp_path_factory, casework_photos, casework_model):
    """``noisead analyze`` of the casework photos with the casework model (the default,
    its decision threshold between the resampled photo's score and the example's): the
    folder and its per-image JSONs by stem."""
    from noisead.batch import run_batch
    from noisead.infer import analyze, load_detector

    root = tmp_path_factory.mktemp("batch")
    (root / "in").mkdir()
    photos = casework_photos(root / "in")
    tiny = Image.open(photos["spliced"]).crop((0, 0, 20, 16))  # smaller than one patch
    tiny.save(root / "in" / "tiny.png")
    out = root / "out"
    detector = load_detector(casework_model)
    run_batch([root / "in"], out, functools.partial(analyze, detector=detector),
              model="default", progress=False)
    return out, {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


@pytest.fixture
def page(batch, serve, tmp_path):
    """The viewer on the batch, opened in Chromium, its list loaded."""
    from selenium.webdriver.support.ui import WebDriverWait

    from noisead.serve.app import create_app

    with serve(create_app(batch_dir=batch[0])) as viewer:
        driver = start_chromium(tmp_path / "profile")
        try:
            driver.get(viewer.base + "/")
            WebDriverWait(driver, 30).until(lambda d: d.find_element(
                "id", "batch-card").get_attribute("data-loaded"))
            yield driver
        finally:
            driver.quit()


def _listed(driver, before: str | None = None) -> list[str]:
    """The stems in the list, once a listing newer than ``before`` has arrived."""
    from selenium.webdriver.support.ui import WebDriverWait

    card = driver.find_element("id", "batch-card")
    WebDriverWait(driver, 30).until(lambda d: card.get_attribute("data-loaded") != before)
    return [li.get_attribute("data-stem")
            for li in driver.find_elements("css selector", "#batch-list li")]


def _filter(driver, element_id: str, value: str) -> list[str]:
    before = driver.find_element("id", "batch-card").get_attribute("data-loaded")
    driver.execute_script("const e = document.getElementById(arguments[0]); e.value = "
                          "arguments[1]; e.dispatchEvent(new Event(e.tagName === 'SELECT' ? "
                          "'change' : 'input'));", element_id, value)
    return _listed(driver, before)


def test_a_batch_is_listed_filtered_and_opened(batch, page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from noisead.infer import evidence_text

    _, records = batch
    decision = {stem: r["decision"]["decision"] for stem, r in records.items()}
    assert decision["resampled"] == "flagged"
    every = ["resampled", "spliced", "flat", "tiny"]
    assert _listed(page) == every  # flagged first, then by score, as the report
    counts = page.find_element(By.ID, "batch-counts").text
    assert "1 flagged" in counts and "1 failed" in counts

    for wanted in ("flagged", "not flagged", "not enough texture to judge"):
        shown = _filter(page, "batch-decision", wanted)
        assert shown == [s for s in every if decision[s] == wanted]
    assert len(_filter(page, "batch-decision", "failed")) == 1
    failed = page.find_element(By.CSS_SELECTOR, "#batch-list li").text
    assert "not-a-photo.png" in failed and "not a recognised image format" in failed
    _filter(page, "batch-decision", "")
    assert _filter(page, "batch-min-score", str(CASEWORK_THRESHOLD)) == ["resampled"]
    assert _filter(page, "batch-min-score", "") == every
    assert _filter(page, "batch-max-score", str(CASEWORK_THRESHOLD)) == ["spliced"]
    _filter(page, "batch-max-score", "")
    assert _filter(page, "batch-name", "SPLICE") == ["spliced"]
    assert _filter(page, "batch-name", "") == every

    # A result opens with what the batch recorded: the verdict, its evidence, its outputs.
    page.find_element(By.CSS_SELECTOR, '#batch-list li[data-stem="resampled"] button').click()
    record = records["resampled"]
    mask = page.find_element(By.ID, "mask-canvas")
    WebDriverWait(page, 30).until(lambda d: mask.get_attribute("data-ready") == "true")
    assert page.find_element(By.ID, "verdict").text == record["decision"]["text"]
    assert page.find_element(By.ID, "item-name").text == record["input"]["path"]
    rows = {li.get_attribute("data-name"): float(li.get_attribute("data-share"))
            for li in page.find_elements(By.CSS_SELECTOR, "#evidence-list li")}
    assert rows == record["evidence_in_mask"]
    assert page.find_element(By.ID, "evidence-line").text == (
        f"Set by: {evidence_text(rows)} (at threshold {record['threshold']:.3f}).")
    marked = round(record["tampered_fraction"] * record["width"] * record["height"])
    assert abs(int(mask.get_attribute("data-marked")) - marked) <= 1
    assert not page.find_element(By.ID, "threshold").is_enabled()  # the run's mask
    photo = page.find_element(By.ID, "photo-img")
    WebDriverWait(page, 30).until(lambda d: d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", photo) == 512)
    assert not page.find_element(By.ID, "download-all").is_displayed()  # no zip: the files

    links = page.find_elements(By.CSS_SELECTOR, "#outputs a")
    assert {a.text for a in links} == set(record["files"].values())
    for link in links:  # each full-size output loads from the page, as it would in a tab
        status = page.execute_script("return fetch(arguments[0]).then(r => r.status)",
                                     link.get_attribute("href"))
        assert status == 200, link.text
    assert not severe_console_errors(page)
    # (the image's own tab logs Chromium's image viewer meeting the CSP: not the page's)
    heatmap = next(a for a in links if a.get_attribute("data-kind") == "heatmap")
    heatmap.click()
    WebDriverWait(page, 30).until(lambda d: len(d.window_handles) == 2)
    page.switch_to.window(page.window_handles[1])
    WebDriverWait(page, 30).until(lambda d: d.execute_script(
        "return document.images.length && document.images[0].naturalWidth") == 512)
    page.close()
    page.switch_to.window(page.window_handles[0])
    page.get_log("browser")
    screenshot(page, "viewer-batch.png")

    # The arrows step through the list (and n / p, as for uploads).
    page.find_element(By.ID, "next-item").click()
    name = page.find_element(By.ID, "item-name")
    WebDriverWait(page, 30).until(lambda d: name.text == records["spliced"]["input"]["path"])
    page.find_element(By.TAG_NAME, "body").send_keys("n")
    WebDriverWait(page, 30).until(lambda d: name.text == records["flat"]["input"]["path"])
    assert not page.find_element(By.ID, "score-box").is_displayed()
    selected = page.find_element(By.CSS_SELECTOR, "#batch-list li.selected")
    assert selected.get_attribute("data-stem") == "flat"
    page.find_element(By.TAG_NAME, "body").send_keys("n")  # judged without an analysis
    WebDriverWait(page, 30).until(lambda d: name.text == records["tiny"]["input"]["path"])
    assert page.find_element(By.ID, "verdict").text == records["tiny"]["decision"]["text"]
    assert not page.find_element(By.CSS_SELECTOR, ".views-card").is_displayed()
    assert page.find_element(By.ID, "evidence-line").text.startswith("No maps")
    assert not severe_console_errors(page)
