"""The viewer's HTTP side, through the real server on 127.0.0.1 (no browser)."""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("flask")

from noisead.serve.app import STATIC_DIR  # noqa: E402
from noisead.serve.render import mask_from_heat16, render  # noqa: E402
from noisead.serve.results import PNG_KINDS, AnalysisResult, ResultStore  # noqa: E402

PAGE_IDS = ("file-input", "status", "decision", "score", "verdict", "overlay-img", "opacity",
            "threshold", "mask-canvas", "fingerprint-img", "model-name", "download-all",
            "error", "photo-img", "file-list", "evidence-list", "layout-side", "layout-swipe",
            "swipe-position", "zoom-in", "zoom-fit", "next-item", "batch-list",
            "batch-decision", "batch-min-score")
SCRIPTS = ("viewer.js", "api.js", "views.js", "result.js", "uploads.js", "batch.js")


def _decode(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(png)))


def _error_of(r, status: int) -> str:
    assert r.status == status, r.data[:500]
    message = r.json()["error"]
    assert isinstance(message, str) and message
    return message


# -- the page ----------------------------------------------------------------------------

def test_page_is_served_with_the_stable_ids_and_a_token(viewer):
    r = viewer.get("/")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/html")
    html = r.data.decode()
    for element_id in PAGE_IDS:
        assert f'id="{element_id}"' in html, element_id
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    assert "{{" not in html and len(viewer.token) >= 32


@pytest.mark.parametrize(("name", "mimetype"), [*((n, "text/javascript") for n in SCRIPTS),
                                                ("viewer.css", "text/css")])
def test_static_assets_are_served(viewer, name, mimetype):
    r = viewer.get(f"/static/{name}")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith(mimetype)
    assert r.data == (STATIC_DIR / name).read_bytes()


def test_page_loads_nothing_from_other_origins(viewer):
    html = viewer.get("/").data.decode()
    assert not re.search(r"""(src|href|action)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert not re.search(r"https?://", html, re.I)
    assert {p.name for p in STATIC_DIR.glob("*.js")} == set(SCRIPTS)
    for name in (*SCRIPTS, "viewer.css"):
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"https?://", text, re.I), name
        assert not re.search(r"""url\(\s*["']?(https?:)?//""", text, re.I), name
        assert "@import" not in text, name
    for ref in re.findall(r"""(?:src|href)="(/static/[^"]+)""", html):
        assert viewer.get(ref).status == 200, ref
    for name in SCRIPTS:  # modules import each other by relative path, nothing else
        imports = re.findall(r"""^import .* from "([^"]+)";""", (STATIC_DIR / name).read_text(),
                             re.M)
        assert all(re.fullmatch(r"\./[a-z]+\.js", i) and i[2:] in SCRIPTS for i in imports)


def test_info_reports_limits(viewer):
    info = viewer.get("/api/info").json()
    assert info["max_upload_bytes"] == 50 * 1024 * 1024
    assert info["max_pixels"] == 50_000_000
    assert info["max_pending"] == 4 and info["time_limit"] == 120.0
    assert info["model"] == "test-tiny"
    assert set(info["modes"]) == {"blind", "reference"}


# -- one real analysis --------------------------------------------------------------------

@pytest.fixture(scope="module")
def result(viewer, spliced_png):
    """Analysed once (it takes seconds) and shared by the tests that inspect it."""
    r = viewer.post(spliced_png, name="../../etc/evil name.png")
    assert r.status == 200, r.data[:500]
    return r.json()


def test_analyze_returns_the_summary(result):
    assert re.fullmatch(r"[0-9a-f]{32}", result["id"])
    assert 0.0 <= result["score"] <= 1.0
    assert result["threshold"] == pytest.approx(0.99)
    assert 0.0 <= result["tampered_fraction"] <= 1.0
    assert result["model"] == "test-tiny"
    assert result["mode"] == "blind"
    assert (result["width"], result["height"]) == (128, 128)
    assert isinstance(result["notes"], list)
    assert "evidence, not proof" in result["caveat"]
    assert set(result["urls"]) == {k.replace("-", "_") for k in PNG_KINDS} | {"zip"}
    assert "evil" not in json.dumps(result["urls"])  # ids, never the upload's name


def test_analysis_carries_the_shared_verdict(result, tiny_detector, spliced_array):
    """The decision and its sentence are the shared verdict's, as analyze() gives them."""
    from noisead.infer import analyze

    expected = analyze(spliced_array, tiny_detector).verdict
    assert result["score"] == pytest.approx(expected.score, abs=1e-5)
    assert result["decision"]["decision"] == expected.decision.value
    assert result["decision"]["text"] == expected.text
    assert result["decision"]["threshold"] == expected.operating_point.threshold
    assert "verdict" not in result  # no second wording beside it


def test_a_flat_image_gets_no_score(viewer, to_png):
    r = viewer.post(to_png(np.full((160, 160, 3), 128, np.uint8)))
    assert r.status == 200, r.data[:500]
    data = r.json()
    assert data["decision"]["decision"] == "not enough texture to judge"
    assert data["decision"]["text"].startswith("Not enough texture to judge")
    assert data["score"] is None and data["decision"]["score"] is None


def test_render_adds_no_wording_of_its_own():
    """A score of 0.9 (one untouched photo in ten) is not flagged at the nominal point:
    the viewer shows the shared sentence, not "Strong evidence of manipulation"."""
    from noisead.infer import Analysis
    from noisead.verdict import TextureCheck, decide

    verdict = decide(0.9, TextureCheck(True, 1.0, None))
    heat = np.full((40, 40), 0.5, np.float32)
    analysis = Analysis(heatmap=heat, mask=heat > 0.99, score=0.9, fingerprint=heat,
                        raw=heat, threshold=0.99, mode="blind", model="m", seconds=0.1,
                        verdict=verdict)
    summary = render(analysis, np.full((40, 40, 3), 0.5, np.float32)).summary
    assert summary["decision"] == verdict.to_dict()
    assert summary["decision"]["decision"] == "not flagged"
    assert "Strong evidence" not in json.dumps(summary)
    with pytest.raises(ValueError, match="no verdict"):
        render(Analysis(heatmap=heat, mask=heat > 0.99, score=0.9, fingerprint=heat, raw=heat,
                        threshold=0.99, mode="blind", model="m", seconds=0.1),
               np.zeros((40, 40, 3), np.float32))


def test_every_result_image_is_a_png_of_the_image_size(viewer, result):
    for kind, url in result["urls"].items():
        if kind == "zip":
            continue
        r = viewer.get(url)
        assert r.status == 200, kind
        assert r.headers["Content-Type"] == "image/png"
        assert _decode(r.data).shape[:2] == (128, 128), kind


def test_heatmap_data_packs_the_16_bit_heatmap(viewer, result):
    gray = _decode(viewer.get(result["urls"]["heatmap_gray"]).data).astype(np.int64)
    packed = _decode(viewer.get(result["urls"]["heatmap_data"]).data).astype(np.int64)
    assert packed.shape == (128, 128, 3)
    np.testing.assert_array_equal(packed[..., 0] * 256 + packed[..., 1], gray)
    # the client's mask at the model threshold is the server's mask, up to rounding
    mask = _decode(viewer.get(result["urls"]["mask"]).data) > 127
    client_mask = mask_from_heat16(gray.astype(np.uint16), result["threshold"])
    assert np.mean(mask != client_mask) < 0.01
    assert mask.mean() == pytest.approx(result["tampered_fraction"], abs=1e-6)


def test_zip_holds_all_results(viewer, result):
    r = viewer.get(result["urls"]["zip"])
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/zip"
    assert "attachment" in r.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(r.data)) as zf:
        names = set(zf.namelist())
        assert names == {"image.png", "heatmap.png", "heatmap-gray.png", "mask.png",
                         "overlay.png", "fingerprint.png", "summary.json"}
        for name in names - {"summary.json"}:
            assert _decode(zf.read(name)).shape[:2] == (128, 128), name
        summary = json.loads(zf.read("summary.json"))
    assert summary["id"] == result["id"]
    assert summary["score"] == result["score"]
    assert summary["decision"] == result["decision"]


def test_zip_at_another_threshold_redoes_the_mask_not_the_decision(viewer, result):
    r = viewer.get(result["urls"]["zip"] + "?threshold=0")
    with zipfile.ZipFile(io.BytesIO(r.data)) as zf:
        mask = _decode(zf.read("mask.png"))
        summary = json.loads(zf.read("summary.json"))
    assert mask.min() == 255
    assert summary["threshold"] == 0.0
    assert summary["model_threshold"] == pytest.approx(0.99)
    assert summary["tampered_fraction"] == 1.0
    assert summary["decision"] == result["decision"]  # the mask never sets the decision
    # what set the scores, now over every pixel: one share per statistic, adding up to one
    shares = summary["evidence_in_mask"]
    assert set(shares) == {"learned fingerprint", "noise level", "noise spectrum",
                           "JPEG lattice"}
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert viewer.get(result["urls"]["zip"] + "?threshold=2").status == 400


def test_evidence_codes_give_the_shares_of_the_summary(viewer, result):
    """The page recomputes the evidence breakdown at its slider's threshold from
    evidence-data.png: the same shares the server gives for that threshold."""
    names = result["evidence_names"]
    codes = _decode(viewer.get(result["urls"]["evidence_data"]).data)
    gray = _decode(viewer.get(result["urls"]["heatmap_gray"]).data).astype(np.uint16)
    assert codes.shape == (128, 128) and codes.max() < len(names)
    for threshold in (0.0, 0.5, 0.9):
        with zipfile.ZipFile(io.BytesIO(viewer.get(
                f"{result['urls']['zip']}?threshold={threshold}").data)) as zf:
            expected = json.loads(zf.read("summary.json"))["evidence_in_mask"]
        counts = np.bincount(codes[mask_from_heat16(gray, threshold)], minlength=len(names))
        total = float(counts.sum())
        shares = {n: round(float(c) / total, 4) for n, c in zip(names, counts, strict=True)}
        assert shares == expected, threshold


def test_result_json_is_kept(viewer, result):
    r = viewer.get(f"/api/result/{result['id']}")
    assert r.status == 200
    assert r.json() == result


# -- errors ---------------------------------------------------------------------------------

def test_not_an_image_is_400_with_a_message(viewer):
    message = _error_of(viewer.post(b"this is not an image at all", name="notes.txt"), 400)
    assert "not a recognised image format" in message
    assert "<bytes>" not in message


def test_truncated_png_is_400(viewer, spliced_png):
    message = _error_of(viewer.post(spliced_png[: len(spliced_png) // 2]), 400)
    assert "truncated" in message or "corrupt" in message


def test_empty_and_missing_uploads_are_400(viewer):
    assert "empty" in _error_of(viewer.post(b""), 400)
    r = viewer.http.request("POST", viewer.base + "/api/analyze", fields={"mode": "blind"},
                            headers=viewer.page_headers())
    assert "'image'" in _error_of(r, 400)


def test_oversize_upload_is_413(tiny_detector, serve):
    from noisead.serve.app import create_app

    with serve(create_app(tiny_detector, max_upload_bytes=10_000)) as small:
        message = _error_of(small.post(b"\0" * 20_000), 413)
    assert "limit" in message


def test_image_smaller_than_a_patch_is_400(viewer, to_png):
    tiny = np.full((16, 20, 3), 128, np.uint8)
    message = _error_of(viewer.post(to_png(tiny)), 400)
    assert "20x16" in message and "at least" in message


def test_two_part_statistics_change_the_heatmap_not_the_score(viewer, result, spliced_png):
    r = viewer.post(spliced_png, parts="auto")
    assert r.status == 200, r.data[:500]
    two = r.json()
    assert (result["statistics_parts"], two["statistics_parts"]) == ("one", "auto")
    assert two["score"] == result["score"] and two["decision"] == result["decision"]
    assert any("two-part noise statistics" in n for n in two["notes"])


@pytest.mark.parametrize(("fields", "needle"), [({"mode": "sideways"}, "mode"),
                                                 ({"parts": "three"}, "parts"),
                                                 ({"threshold": "high"}, "threshold"),
                                                 ({"threshold": "1.5"}, "between 0 and 1")])
def test_bad_options_are_400(viewer, spliced_png, fields, needle):
    assert needle in _error_of(viewer.post(spliced_png, **fields), 400)


@pytest.mark.parametrize("url", [
    "/api/result/../../etc/passwd.png",
    "/api/result/..%2F..%2Fetc%2Fpasswd/mask.png",
    "/api/result/%2e%2e/mask.png",
    "/api/result/0123456789abcdef0123456789abcdef/mask.png",
    "/api/result/0123456789abcdef0123456789abcdef/all.zip",
    "/api/result/0123456789ABCDEF0123456789ABCDEF/mask.png",
    "/api/result/..%2Fapp.py/mask.png",
    "/static/../app.py",
    "/static/..%2Fapp.py",
    "/static/%2e%2e/app.py",
    "/static/..%5Capp.py",
    "/static/index.html",
])
def test_path_traversal_is_404(viewer, url):
    r = viewer.get(url)
    assert r.status == 404
    assert b"def create_app" not in r.data
    assert b"root:" not in r.data


def test_traversal_in_kind_of_a_real_result_is_404(viewer, result):
    base = f"/api/result/{result['id']}"
    for kind in ("..%2F..%2Fapp", "..", "heatmap.png%00", "HEATMAP"):
        assert viewer.get(f"{base}/{kind}.png").status == 404, kind


def test_unknown_result_says_why(viewer):
    message = _error_of(viewer.get("/api/result/0123456789abcdef0123456789abcdef"), 404)
    assert "most recent" in message


# -- pieces -----------------------------------------------------------------------------------

def _fake_result(nbytes: int = 10) -> AnalysisResult:
    return AnalysisResult(summary={}, image_u8=np.zeros((1, 1, 3), np.uint8),
                          heat16=np.zeros((1, 1), np.uint16), pngs={"x": b"\0" * nbytes})


def test_store_is_a_bounded_lru():
    store = ResultStore(max_items=2)
    a, b = store.add(_fake_result()), store.add(_fake_result())
    assert store.get(a) is not None  # a is now the most recent
    c = store.add(_fake_result())
    assert store.get(b) is None
    assert store.get(a) is not None and store.get(c) is not None
    assert len({a, b, c}) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in (a, b, c))
    assert store.get("../" + a) is None


def test_store_is_bounded_in_bytes_but_keeps_the_newest():
    store = ResultStore(max_items=10, max_bytes=100)
    first = store.add(_fake_result(60))
    second = store.add(_fake_result(60))
    assert store.get(first) is None and store.get(second) is not None
    huge = store.add(_fake_result(1000))
    assert store.get(huge) is not None and len(store) == 1


def test_mask_from_heat16_matches_the_page_formula():
    heat = np.array([0, 64879, 64880, 65535], np.uint16)  # 64879/65535 < 0.99 < 64880/65535
    np.testing.assert_array_equal(mask_from_heat16(heat, 0.99), [False, False, True, True])
    np.testing.assert_array_equal(mask_from_heat16(heat, 0.0), [True] * 4)


def test_uploads_are_never_spooled_to_disk(viewer, monkeypatch):
    import tempfile

    import werkzeug.formparser as formparser
    import werkzeug.wrappers.request as wz_request

    def refuse(*args, **kwargs):
        raise AssertionError("an upload went to a temporary file")

    monkeypatch.setattr(formparser, "SpooledTemporaryFile", refuse, raising=False)
    monkeypatch.setattr(formparser, "default_stream_factory", refuse)
    monkeypatch.setattr(wz_request, "default_stream_factory", refuse, raising=False)
    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    big = np.random.default_rng(0).bytes(700_000)  # above werkzeug's 500 KB spool size
    assert "not a recognised" in _error_of(viewer.post(big), 400)
