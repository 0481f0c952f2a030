"""Item 6 (page source) and item 2's paging: every name is escaped for its context,
links are relative, each page forbids scripts, and a large run is split into pages."""

from __future__ import annotations

import html
import re

from batch_support import run, write_image

from noisead.batch.report import CSP, href, write_report
from noisead.batch.state import BatchState

HOSTILE = ["javascript:alert(document.domain)", '"><img src=x onerror=alert(1)>',
           "it's <script>alert(2)<\\script>"]


def test_links_to_hostile_names_are_relative_and_encoded():
    assert href("javascript:alert(1).overlay.png") == "./javascript%3Aalert%281%29.overlay.png"
    assert href('thumbs/"><b>.png') == "./thumbs/%22%3E%3Cb%3E.png"
    assert href("a b#c?d.png") == "./a%20b%23c%3Fd.png"


def test_report_escapes_hostile_names_and_forbids_scripts(tmp_path):
    folder = tmp_path / "in"
    images = [write_image(folder / f"{name}.png", seed=i) for i, name in enumerate(HOSTILE)]
    out = tmp_path / "out"
    run(images, out)
    page = (out / "report.html").read_text()
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert "default-src 'none'" in CSP and "script-src" not in CSP
    assert "<script" not in page and "<img src=x" not in page
    for link in re.findall(r'(?:href|src)="([^"]*)"', page):
        assert link.startswith("./"), link
        assert ":" not in link and "<" not in link and "'" not in link
    for name in HOSTILE:
        assert html.escape(str(folder / name)) + ".png" in page  # shown as text


def test_large_runs_are_paged_and_old_pages_removed(tmp_path):
    images = [write_image(tmp_path / "in" / f"{i}.png", seed=i) for i in range(5)]
    out = tmp_path / "out"
    run(images, out)
    with BatchState(out) as state:
        pages = write_report(state, out, model="m", rows_per_page=2)
        assert [p.name for p in pages] == ["report.html", "report-2.html", "report-3.html"]
        bodies = [p.read_text() for p in pages]
        assert [b.count("<tr><td>") for b in bodies] == [2, 2, 1]
        assert 'href="./report-2.html">next<' in bodies[0]
        assert 'href="./report-2.html">previous<' in bodies[2]
        write_report(state, out, model="m", rows_per_page=3)
    assert not (out / "report-3.html").exists() and (out / "report-2.html").exists()
