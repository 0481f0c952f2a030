"""The viewer's HTTP side, through Flask's test client (no network, no browser)."""

from __future__ import annotations

import io
import json
import re
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("flask")

from noisead.serve import app as serve_app  # noqa: E402
from noisead.serve.app import (  # noqa: E402
    PNG_KINDS,
    STATIC_DIR,
    ResultStore,
    _mask_from_heat16,
    _Result,
    create_app,
    restrict_hosts,
    verdict,
)

PAGE_IDS = ("file-input", "status", "score", "overlay-img", "opacity", "threshold",
            "mask-canvas", "fingerprint-img", "model-name", "download-all", "error")


@pytest.fixture(scope="module")
def app(tiny_detector):
    return create_app(tiny_detector)


@pytest.fixture
def client(app):
    return app.test_client()


def _post(client, data: bytes, name: str = "photo.png", **fields):
    return client.post("/api/analyze", data={"image": (io.BytesIO(data), name), **fields},
                       content_type="multipart/form-data")


def _decode(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(png)))


# -- the page ----------------------------------------------------------------------------

def test_page_is_served_with_the_stable_ids(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    for element_id in PAGE_IDS:
        assert f'id="{element_id}"' in html, element_id
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(("name", "mimetype"), [("viewer.js", "text/javascript"),
                                                ("viewer.css", "text/css")])
def test_static_assets_are_served(client, name, mimetype):
    r = client.get(f"/static/{name}")
    assert r.status_code == 200
    assert r.mimetype == mimetype
    assert r.get_data() == (STATIC_DIR / name).read_bytes()


def test_page_loads_nothing_from_other_origins(client):
    html = client.get("/").get_data(as_text=True)
    assert not re.search(r"""(src|href|action)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert not re.search(r"https?://", html, re.I)
    for name in ("viewer.js", "viewer.css"):
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"https?://", text, re.I), name
        assert not re.search(r"""url\(\s*["']?(https?:)?//""", text, re.I), name
        assert "@import" not in text, name
    for ref in re.findall(r"""(?:src|href)="(/static/[^"]+)""", html):
        assert client.get(ref).status_code == 200, ref


def test_info_reports_limits_and_model(client):
    info = client.get("/api/info").get_json()
    assert info["max_upload_bytes"] == 50 * 1024 * 1024
    assert info["model_loaded"] is True
    assert info["model"] == "test-tiny"
    assert set(info["modes"]) == {"blind", "reference"}


# -- one real analysis --------------------------------------------------------------------

@pytest.fixture(scope="module")
def result(app, spliced_png):
    """Analysed once (it takes seconds) and shared by the tests that inspect it."""
    r = _post(app.test_client(), spliced_png, name="../../etc/evil name.png")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_analyze_returns_the_summary(result):
    assert re.fullmatch(r"[0-9a-f]{32}", result["id"])
    assert 0.0 <= result["score"] <= 1.0
    assert result["threshold"] == pytest.approx(0.99)
    assert 0.0 <= result["tampered_fraction"] <= 1.0
    assert result["model"] == "test-tiny"
    assert result["mode"] == "blind"
    assert (result["width"], result["height"]) == (128, 128)
    assert isinstance(result["notes"], list)
    assert result["verdict"] == verdict(result["score"])
    assert "evidence, not proof" in result["caveat"]
    assert set(result["urls"]) == {k.replace("-", "_") for k in PNG_KINDS} | {"zip"}
    assert "evil" not in json.dumps(result["urls"])  # ids, never the upload's name


def test_every_result_image_is_a_png_of_the_image_size(client, result):
    for kind, url in result["urls"].items():
        if kind == "zip":
            continue
        r = client.get(url)
        assert r.status_code == 200, kind
        assert r.mimetype == "image/png"
        assert _decode(r.get_data()).shape[:2] == (128, 128), kind


def test_heatmap_data_packs_the_16_bit_heatmap(client, result):
    gray = _decode(client.get(result["urls"]["heatmap_gray"]).get_data()).astype(np.int64)
    packed = _decode(client.get(result["urls"]["heatmap_data"]).get_data()).astype(np.int64)
    assert packed.shape == (128, 128, 3)
    np.testing.assert_array_equal(packed[..., 0] * 256 + packed[..., 1], gray)
    # the client's mask at the model threshold is the server's mask, up to rounding
    mask = _decode(client.get(result["urls"]["mask"]).get_data()) > 127
    client_mask = _mask_from_heat16(gray.astype(np.uint16), result["threshold"])
    assert np.mean(mask != client_mask) < 0.01
    assert mask.mean() == pytest.approx(result["tampered_fraction"], abs=1e-6)


def test_zip_holds_all_results(client, result):
    r = client.get(result["urls"]["zip"])
    assert r.status_code == 200
    assert r.mimetype == "application/zip"
    assert "attachment" in r.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(r.get_data())) as zf:
        names = set(zf.namelist())
        assert names == {"image.png", "heatmap.png", "heatmap-gray.png", "mask.png",
                         "overlay.png", "fingerprint.png", "summary.json"}
        for name in names - {"summary.json"}:
            assert _decode(zf.read(name)).shape[:2] == (128, 128), name
        summary = json.loads(zf.read("summary.json"))
    assert summary["id"] == result["id"]
    assert summary["score"] == result["score"]


def test_zip_at_another_threshold_redoes_the_mask(client, result):
    r = client.get(result["urls"]["zip"] + "?threshold=0")
    with zipfile.ZipFile(io.BytesIO(r.get_data())) as zf:
        mask = _decode(zf.read("mask.png"))
        summary = json.loads(zf.read("summary.json"))
    assert mask.min() == 255
    assert summary["threshold"] == 0.0
    assert summary["model_threshold"] == pytest.approx(0.99)
    assert summary["tampered_fraction"] == 1.0
    # what set the scores, now over every pixel: one share per statistic, adding up to one
    shares = summary["evidence_in_mask"]
    assert set(shares) == {"learned fingerprint", "noise level", "noise spectrum",
                           "JPEG lattice"}
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert client.get(result["urls"]["zip"] + "?threshold=2").status_code == 400


def test_result_json_is_kept(client, result):
    r = client.get(f"/api/result/{result['id']}")
    assert r.status_code == 200
    assert r.get_json() == result


# -- errors ---------------------------------------------------------------------------------

def _error_of(r, status: int) -> str:
    assert r.status_code == status, r.get_data(as_text=True)
    message = r.get_json()["error"]
    assert isinstance(message, str) and message
    return message


def test_not_an_image_is_400_with_a_message(client):
    message = _error_of(_post(client, b"this is not an image at all", name="notes.txt"), 400)
    assert "not a recognised image format" in message
    assert "<bytes>" not in message


def test_truncated_png_is_400(client, spliced_png):
    message = _error_of(_post(client, spliced_png[: len(spliced_png) // 2]), 400)
    assert "truncated" in message or "corrupt" in message


def test_empty_and_missing_uploads_are_400(client):
    assert "empty" in _error_of(_post(client, b""), 400)
    r = client.post("/api/analyze", data={"mode": "blind"}, content_type="multipart/form-data")
    assert "'image'" in _error_of(r, 400)


def test_oversize_upload_is_413(tiny_detector):
    small = create_app(tiny_detector, max_upload_bytes=10_000).test_client()
    message = _error_of(_post(small, b"\0" * 20_000), 413)
    assert "limit" in message


def test_image_smaller_than_a_patch_is_400(client, to_png):
    tiny = np.full((16, 20, 3), 128, np.uint8)
    message = _error_of(_post(client, to_png(tiny)), 400)
    assert "20x16" in message and "at least" in message


def test_too_many_pixels_is_400(tiny_detector, to_png):
    capped = create_app(tiny_detector, max_pixels=1000).test_client()
    message = _error_of(_post(capped, to_png(np.zeros((64, 64, 3), np.uint8))), 400)
    assert "limit of 1,000" in message


@pytest.mark.parametrize(("fields", "needle"), [({"mode": "sideways"}, "mode"),
                                                 ({"threshold": "high"}, "threshold"),
                                                 ({"threshold": "1.5"}, "between 0 and 1")])
def test_bad_options_are_400(client, spliced_png, fields, needle):
    assert needle in _error_of(_post(client, spliced_png, **fields), 400)


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
])
def test_path_traversal_is_404(client, url):
    r = client.get(url)
    assert r.status_code == 404
    assert b"def create_app" not in r.get_data()
    assert b"root:" not in r.get_data()


def test_traversal_in_kind_of_a_real_result_is_404(client, result):
    base = f"/api/result/{result['id']}"
    for kind in ("..%2F..%2Fapp", "..", "heatmap.png%00", "HEATMAP"):
        r = client.get(f"{base}/{kind}.png")
        assert r.status_code == 404, kind


def test_unknown_result_says_why(client):
    message = _error_of(client.get("/api/result/0123456789abcdef0123456789abcdef"), 404)
    assert "most recent" in message


# -- pieces -----------------------------------------------------------------------------------

def _fake_result(nbytes: int = 10) -> _Result:
    return _Result(summary={}, image_u8=np.zeros((1, 1, 3), np.uint8),
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
    np.testing.assert_array_equal(_mask_from_heat16(heat, 0.99), [False, False, True, True])
    np.testing.assert_array_equal(_mask_from_heat16(heat, 0.0), [True] * 4)


def test_verdict_sentences():
    assert verdict(0.95) == "Strong evidence of manipulation."
    assert verdict(0.995).startswith("Very strong")
    assert verdict(0.8).startswith("Weak")
    assert verdict(0.4).startswith("No notable")
    assert verdict(float("nan")).startswith("No score")


def test_uploads_are_never_spooled_to_disk(client, monkeypatch):
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
    assert "not a recognised" in _error_of(_post(client, big), 400)


def test_detector_loads_lazily_and_once(tiny_detector, monkeypatch):
    calls = []

    def fake_load(model):
        calls.append(model)
        return tiny_detector

    monkeypatch.setattr(serve_app, "load_detector", fake_load)
    lazy = create_app("some-model")
    assert lazy.test_client().get("/api/info").get_json()["model_loaded"] is False
    slot = lazy.extensions["noisead"]["detector"]
    threads = [threading.Thread(target=slot.get) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["some-model"]
    assert lazy.test_client().get("/api/info").get_json()["model"] == "test-tiny"


def test_a_model_that_cannot_load_is_503_with_its_reason(spliced_png):
    broken = create_app("no-such-model-anywhere").test_client()
    message = _error_of(_post(broken, spliced_png), 503)
    assert "no-such-model-anywhere" in message


def test_loopback_server_answers_only_loopback_hosts(tiny_detector):
    app = create_app(tiny_detector)
    restrict_hosts(app, "127.0.0.1")
    client = app.test_client()
    assert client.get("/", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200
    assert client.get("/", headers={"Host": "rebound.example:8765"}).status_code == 400
