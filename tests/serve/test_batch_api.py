"""A batch run's results in the viewer (``noisead serve --batch``), through the real server
on 127.0.0.1: listing and filters agree with the batch's own records, each result's outputs
are served by kind from those records, and nothing else is: no path from a request, no
tampered record, no planted link leads out of the folder."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("flask")

from noisead.serve.app import create_app  # noqa: E402
from noisead.serve.batch_folder import BatchFolder, BatchUnreadable  # noqa: E402
from noisead.serve.security import TOKEN_HEADER  # noqa: E402

SECRET = b"the analyst's private notes"


def _batch(tmp: Path, detector, batch_run, make_spliced) -> Path:
    """Four analysed photos (one a JPEG), one too flat to judge, one smaller than a patch
    (judged without an analysis) and one broken file."""
    inputs = tmp / "in"
    inputs.mkdir()
    for seed in range(3):
        Image.fromarray(make_spliced(128, seed)).save(inputs / f"photo-{seed}.png")
    Image.fromarray(make_spliced(128, 7)).save(inputs / "holiday 100%.jpg", quality=92)
    Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(inputs / "flat.png")
    Image.fromarray(make_spliced(128, 3)[:16, :20]).save(inputs / "tiny.png")
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp / "out"
    batch_run(inputs, out, detector)
    (tmp / "secret.txt").write_bytes(SECRET)
    return out


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory, tiny_detector, batch_run, make_spliced) -> Path:
    return _batch(tmp_path_factory.mktemp("batch"), tiny_detector, batch_run, make_spliced)


@pytest.fixture(scope="module")
def records(batch_dir) -> dict[str, dict]:
    """The per-image JSONs of the batch, by stem: what the viewer must agree with."""
    return {p.stem: json.loads(p.read_text()) for p in batch_dir.glob("*.json")}


@pytest.fixture(scope="module")
def batch_viewer(batch_dir, tiny_detector, serve):
    with serve(create_app(tiny_detector, batch_dir=batch_dir)) as viewer:
        yield viewer


def _get(viewer, path: str, **headers: str):
    """A read as the viewer's page makes it (token included) unless ``headers`` say."""
    return viewer.get(path, headers=headers or {TOKEN_HEADER: viewer.token})


def _items(viewer, query: str = "") -> list[dict]:
    r = _get(viewer, "/api/batch/items" + query)
    assert r.status == 200, r.data[:300]
    return r.json()["items"]


# -- listing -------------------------------------------------------------------------------

def test_overview_counts_every_decision_and_failure(batch_viewer, records):
    info = _get(batch_viewer, "/api/batch").json()
    decisions = [r["decision"]["decision"] for r in records.values()]
    assert info["counts"] == {d: decisions.count(d) for d in info["counts"]}
    assert sum(info["counts"].values()) == 6
    assert info["counts"]["not enough texture to judge"] == 2
    assert info["failed"] == 1 and info["pending"] == 0
    assert info["models"] == sorted({r["model"] for r in records.values()})
    assert batch_viewer.get("/api/info").json()["batch"] is True


def test_results_are_listed_in_the_report_order(batch_viewer, records):
    items = _items(batch_viewer)
    assert {i["stem"] for i in items} == set(records)
    rank = {"flagged": 0, "not flagged": 1, "not enough texture to judge": 2}
    keys = [(rank[i["decision"]], i["score"] is None, -(i["score"] or 0)) for i in items]
    assert keys == sorted(keys)
    for item in items:
        record = records[item["stem"]]
        assert item["decision"] == record["decision"]["decision"]
        assert item["verdict"] == record["decision"]["text"]
        assert item["score"] == record["score"]
        assert item["display"] == record["input"]["path"]


@pytest.mark.parametrize("decision", ["flagged", "not flagged", "not enough texture to judge"])
def test_filter_by_decision(batch_viewer, records, decision):
    listed = {i["stem"] for i in _items(batch_viewer, "?decision=" + quote(decision))}
    assert listed == {s for s, r in records.items() if r["decision"]["decision"] == decision}


def test_filter_failed_lists_the_files_without_a_result(batch_viewer):
    (failed,) = _items(batch_viewer, "?decision=failed")
    assert failed["display"].endswith("broken.png")
    assert "truncated" in failed["error"] and "urls" not in failed


def test_filter_by_score_and_name(batch_viewer, records):
    scores = sorted(r["score"] for r in records.values() if r["score"] is not None)
    low, high = scores[1], scores[-2]
    listed = _items(batch_viewer, f"?min_score={low}&max_score={high}")
    assert sorted(i["score"] for i in listed) == [s for s in scores if low <= s <= high]
    (holiday,) = _items(batch_viewer, "?name=" + quote("DAY 100%"))  # any case, % literal
    assert holiday["stem"] == "holiday 100%"
    assert _items(batch_viewer, "?name=" + quote("_")) == []  # _ is literal too


def test_pages(batch_viewer):
    every = [i["stem"] for i in _items(batch_viewer)]
    paged = [_items(batch_viewer, f"?limit=4&offset={o}") for o in (0, 4, 8)]
    assert [len(p) for p in paged] == [4, 2, 0]
    assert [i["stem"] for p in paged for i in p] == every
    assert _get(batch_viewer, "/api/batch/items?limit=2").json()["total"] == 6


@pytest.mark.parametrize(("query", "needle"), [
    ("decision=sideways", "decision"), ("min_score=high", "min_score"),
    ("max_score=2", "between 0 and 1"), ("limit=0", "limit"), ("limit=1000", "limit"),
    ("offset=-1", "offset")])
def test_bad_filters_are_400(batch_viewer, query, needle):
    r = _get(batch_viewer, "/api/batch/items?" + query)
    assert r.status == 400 and needle in r.json()["error"]


# -- one result ---------------------------------------------------------------------------

def test_an_item_is_its_record_with_links_to_its_outputs(batch_viewer, batch_dir, records):
    for stem, record in records.items():
        item = _get(batch_viewer, f"/api/batch/items/{quote(stem, safe='')}").json()
        assert item["decision"] == record["decision"]  # the shared verdict, as recorded
        assert item["evidence_in_mask"] == record.get("evidence_in_mask")
        assert (item["width"], item["height"]) == (record.get("width"), record.get("height"))
        assert item["photo"] == {"original": True, "note": None}
        assert {d["kind"] for d in item["downloads"]} == set(record["files"])
        for download in item["downloads"]:
            r = _get(batch_viewer, download["url"])
            assert r.status == 200, download
            assert r.data == (batch_dir / record["files"][download["kind"]]).read_bytes()
        if stem == "tiny":  # judged without an analysis: its JSON, and its photo
            assert set(record["files"]) == {"json"} and set(item["urls"]) == {"image"}
            continue
        for kind in ("heatmap", "mask", "overlay", "fingerprint"):
            assert item["urls"][kind].endswith(f"/files/{kind}")
            assert _get(batch_viewer, item["urls"][kind]).headers["Content-Type"] == "image/png"
        arrays = _get(batch_viewer, f"/api/batch/items/{quote(stem, safe='')}/files/npz")
        assert arrays.headers["Content-Type"] == "application/octet-stream"
        assert arrays.headers["Content-Disposition"].startswith("attachment")
        photo = _get(batch_viewer, item["urls"]["image"])
        assert photo.data == Path(record["input"]["path"]).read_bytes()
        expected_type = "image/jpeg" if stem.startswith("holiday") else "image/png"
        assert photo.headers["Content-Type"] == expected_type


def test_the_16_bit_heatmap_is_packed_for_the_page(batch_viewer, batch_dir, records):
    """With ``--outputs heatmap16`` the page's threshold slider redraws the run's mask from
    the exact levels (high byte in red, low byte in green, as for an upload)."""
    record = records["photo-1"]
    item = _get(batch_viewer, "/api/batch/items/photo-1").json()
    packed = np.asarray(Image.open(io.BytesIO(_get(batch_viewer, item["urls"]["heatmap_data"]
                                                   ).data))).astype(np.int64)
    levels = np.asarray(Image.open(batch_dir / record["files"]["heatmap16"])).astype(np.int64)
    np.testing.assert_array_equal(packed[..., 0] * 256 + packed[..., 1], levels)
    mask = np.asarray(Image.open(batch_dir / record["files"]["mask"])) > 0
    assert np.mean((levels / 65535 >= record["threshold"]) != mask) < 0.01


def test_thumbnails_are_served_by_kind(batch_viewer, batch_dir, records):
    stem = "photo-0"
    r = _get(batch_viewer, f"/api/batch/items/{stem}/files/thumb-overlay")
    assert r.data == (batch_dir / records[stem]["thumbnails"]["overlay"]).read_bytes()
    assert _get(batch_viewer, f"/api/batch/items/{stem}/files/thumb-nothing").status == 404


@pytest.mark.parametrize("path", [
    "/api/batch/items/../../secret.txt",
    "/api/batch/items/..%2F..%2Fsecret.txt",
    "/api/batch/items/%2e%2e/files/json",
    "/api/batch/items/photo-0/files/..%2F..%2Fsecret.txt",
    "/api/batch/items/photo-0/files/%2Fetc%2Fpasswd",
    "/api/batch/items/photo-0/files/photo-0.heatmap.png",  # a name, not a kind
    "/api/batch/items/photo-0/files/thumb-..%2F..%2Fsecret",
    "/api/batch/items/photo-0%2F..%2F..%2Fsecret.txt/files/json",
    "/api/batch/items/photo-0.json",
    "/api/batch/items/broken/files/json",  # failed: no outputs
    "/api/batch/items/.noisead/files/sqlite",
    "/api/batch/items/nothing/photo",
])
def test_paths_in_requests_are_refused(batch_viewer, path):
    r = _get(batch_viewer, path)
    assert r.status == 404, (path, r.status)
    assert SECRET not in r.data and b"root:" not in r.data


# -- records that were tampered with ------------------------------------------------------

@pytest.fixture
def own_batch(tmp_path, batch_dir, tiny_detector, serve):
    """A copy of the batch (it gets damaged), its inputs copied too, served:
    ``(folder, viewer)``."""
    shutil.copytree(batch_dir.parent, tmp_path, dirs_exist_ok=True)
    out = tmp_path / "out"
    old, new = os.fsencode(batch_dir.parent), os.fsencode(tmp_path)
    with sqlite3.connect(out / ".noisead.sqlite") as conn:
        for path, stem in conn.execute("SELECT path, stem FROM inputs").fetchall():
            conn.execute("UPDATE inputs SET path = ? WHERE stem = ?",
                         (new + bytes(path)[len(old):], stem))
    with serve(create_app(tiny_detector, batch_dir=out)) as viewer:
        yield out, viewer


def _set_files(out: Path, stem: str, files: dict[str, str]) -> None:
    with sqlite3.connect(out / ".noisead.sqlite") as conn:
        conn.execute("UPDATE inputs SET files = ? WHERE stem = ?", (json.dumps(files), stem))


def test_file_names_from_a_tampered_record_stay_in_the_folder(own_batch):
    out, viewer = own_batch
    secret = str(out.parent / "secret.txt")
    names = {"up": "../secret.txt", "absolute": secret, "deep": "thumbs/../../secret.txt",
             "nested": "a/b/c.png", "backslash": "..\\secret.txt", "dot": ".", "empty": ""}
    _set_files(out, "photo-0", names)
    for kind in names:
        r = _get(viewer, f"/api/batch/items/photo-0/files/{kind}")
        assert r.status == 404 and SECRET not in r.data, kind


def test_a_heatmap16_that_is_not_one_is_refused(own_batch, make_spliced):
    out, viewer = own_batch
    Image.fromarray(make_spliced(64, 1)).save(out / "photo-0.heatmap16.png")  # 8-bit RGB
    Image.fromarray(np.zeros((40, 40), np.uint16)).save(out / "photo-1.heatmap16.png")
    for stem in ("photo-0", "photo-1"):
        r = _get(viewer, f"/api/batch/items/{stem}/heatmap-data")
        assert r.status == 404 and "not a 16-bit heatmap" in r.json()["error"]


def test_planted_links_are_not_followed(own_batch):
    out, viewer = own_batch
    secret = out.parent / "secret.txt"
    (out / "photo-1.heatmap.png").unlink()
    (out / "photo-1.heatmap.png").symlink_to(secret)
    r = _get(viewer, "/api/batch/items/photo-1/files/heatmap")
    assert r.status == 404 and SECRET not in r.data
    assert "cannot be read" in r.json()["error"]  # O_NOFOLLOW: a link is not opened
    shutil.rmtree(out / "thumbs")
    (out.parent / "elsewhere").mkdir()
    (out.parent / "elsewhere" / "photo-1.overlay.png").write_bytes(SECRET)
    (out / "thumbs").symlink_to(out.parent / "elsewhere")
    r = _get(viewer, "/api/batch/items/photo-1/files/thumb-overlay")
    assert r.status == 404 and SECRET not in r.data


def test_a_changed_input_is_shown_by_its_thumbnail(own_batch, make_spliced):
    out, viewer = own_batch
    record = json.loads((out / "photo-2.json").read_text())
    source = out.parent / "in" / "photo-2.png"
    assert _get(viewer, "/api/batch/items/photo-2/photo").data == source.read_bytes()
    Image.fromarray(make_spliced(128, 99)).save(source)  # the same size, another picture
    item = _get(viewer, "/api/batch/items/photo-2").json()
    assert item["photo"] == {"original": False,
                             "note": "the input file has changed since the batch ran"}
    photo = _get(viewer, "/api/batch/items/photo-2/photo")
    assert photo.data == (out / record["thumbnails"]["image"]).read_bytes()
    source.unlink()
    assert "no longer where" in _get(viewer, "/api/batch/items/photo-2").json()["photo"]["note"]
    (out.parent / "in" / "tiny.png").write_bytes(b"changed")  # and no thumbnail to show
    assert _get(viewer, "/api/batch/items/tiny").json()["photo"]["original"] is False
    r = _get(viewer, "/api/batch/items/tiny/photo")
    assert r.status == 404 and "no thumbnail" in r.json()["error"]


# -- who may read, and what the viewer leaves untouched ------------------------------------

@pytest.mark.parametrize("path", ["/api/batch", "/api/batch/items",
                                  "/api/batch/items/photo-0/files/heatmap",
                                  "/api/batch/items/photo-0/photo"])
def test_only_the_viewers_own_page_may_read_a_batch(batch_viewer, path):
    assert batch_viewer.get(path).status == 403  # no token, no fetch metadata
    assert _get(batch_viewer, path, **{"Sec-Fetch-Site": "cross-site"}).status == 403
    assert _get(batch_viewer, path, **{"Sec-Fetch-Site": "same-site"}).status == 403
    wrong = _get(batch_viewer, path, **{TOKEN_HEADER: "x" * len(batch_viewer.token)})
    assert wrong.status == 403
    assert _get(batch_viewer, path, **{"Sec-Fetch-Site": "same-origin"}).status == 200
    assert _get(batch_viewer, path, **{"Sec-Fetch-Site": "none"}).status == 200  # typed URL
    assert _get(batch_viewer, path).status == 200


def test_reads_while_a_run_writes_and_changes_nothing(own_batch):
    out, viewer = own_batch
    db = out / ".noisead.sqlite"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    writer = sqlite3.connect(db)
    writer.execute("BEGIN IMMEDIATE")  # a running batch holds the write lock
    writer.execute("UPDATE inputs SET score = 0.5 WHERE stem = 'photo-0'")
    try:
        assert len(_items(viewer)) == 6
        assert _get(viewer, "/api/batch/items/photo-0").json()["score"] != 0.5  # not committed
    finally:
        writer.rollback()
        writer.close()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_folder_that_is_not_a_batch_is_refused(tmp_path, tiny_detector):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_app(tiny_detector, batch_dir=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no batch state"):
        create_app(tiny_detector, batch_dir=tmp_path)
    (tmp_path / ".noisead.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(BatchUnreadable, match="batch state"):
        BatchFolder(tmp_path)


def test_without_a_batch_there_are_no_batch_routes(viewer):
    assert viewer.get("/api/info").json()["batch"] is False
    assert _get(viewer, "/api/batch").status == 404


def test_the_command_line_opens_a_batch(batch_dir, tmp_path):
    """``noisead serve --batch OUT_DIR``: a folder that is not a batch is one line and exit
    code 2; a batch is served (the real command, stopped with Ctrl+C)."""
    import signal
    import subprocess
    import sys
    import urllib.request

    from noisead import cli

    assert cli.main(["serve", "--batch", str(tmp_path)]) == 2
    process = subprocess.Popen(
        [sys.executable, "-m", "noisead.cli", "serve", "--port", "0", "--batch",
         str(batch_dir)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("noisead viewer on http://127.0.0.1:"), line
        base = line.split()[3].rstrip("/")
        request = urllib.request.Request(base + "/api/batch",
                                         headers={"Sec-Fetch-Site": "same-origin"})
        with urllib.request.urlopen(request, timeout=30) as r:
            assert sum(json.loads(r.read())["counts"].values()) == 6
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
