"""``noisead serve``: a local web viewer where an analyst drops a photo and inspects results.

Why a server and not a static page: the analysis needs the PyTorch detector, so the
browser uploads the photo to a process on the analyst's own machine (127.0.0.1 by default)
and gets back PNGs it can layer, threshold and download. Design points:

* Uploads never touch the file system: the bytes stay in memory (no temporary file, no
  name from the request ever used as a path) and are decoded by
  :func:`noisead.io.load_image`, the package's one hardened decoder.
* Results live in a small in-memory LRU keyed by random ids, so a URL says nothing about
  the file, and an old URL simply expires (404).
* The detector is loaded lazily and once, under a lock; analyses are serialised by another
  lock, because two at once would only fight over the same CPU cores (and double the
  memory).
* The page is plain HTML/CSS/JS from ``static/``; a Content-Security-Policy forbids every
  other origin, so the viewer works offline and never leaks a case photo to a CDN.
* The calibrated heatmap is also served losslessly at 16 bits (``heatmap-data.png``, high
  byte in red, low byte in green) so the page's threshold slider recomputes the mask
  exactly as the server would, even near the usual thresholds (0.99 and above), where an
  8-bit map has only a handful of levels.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import re
import secrets
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask, Request, Response, jsonify, request, send_from_directory
from PIL import Image
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from noisead.anomaly.detector import MODES, Detector
from noisead.infer import (
    Analysis,
    ImageTooSmallError,
    analyze,
    colorize,
    evidence_shares,
    fingerprint_view,
    load_detector,
    overlay,
)
from noisead.io import DEFAULT_MAX_PIXELS, ImageLoadError, load_image, to_uint8

__all__ = [
    "CAVEAT",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "PNG_KINDS",
    "ResultStore",
    "create_app",
    "restrict_hosts",
    "run",
    "verdict",
]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_RESULTS = 16
DEFAULT_MAX_RESULT_BYTES = 1024 * 1024 * 1024
STATIC_DIR = Path(__file__).parent / "static"

PNG_KINDS: tuple[str, ...] = (
    "image", "heatmap", "heatmap-gray", "heatmap-data", "mask", "overlay", "fingerprint",
)
"""Result images. ``image`` is the photo as analysed (EXIF orientation applied, so it lines
up with the maps); ``heatmap`` the coloured calibrated heatmap; ``heatmap-gray`` the same
as a 16-bit grayscale PNG (value / 65535 = calibrated heatmap); ``heatmap-data`` the same
16 bits packed into red (high byte) and green (low byte), because a browser canvas only
reads 8 bits per channel; ``mask`` white = tampered; ``overlay`` the photo in gray with the
heatmap blended on top and the mask outlined; ``fingerprint`` the noise fingerprint."""

_ZIP_KINDS = ("image", "heatmap", "heatmap-gray", "mask", "overlay", "fingerprint")
_ID_RE = re.compile(r"[0-9a-f]{32}")
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")

CAVEAT = ("A score is evidence, not proof. It says how unusual this photo's noise is "
          "compared with untouched photos (0.95 = more unusual than 95% of them). Heavy "
          "compression, resizing, filters or a camera unlike those the model knows can raise "
          "it, and a careful forgery can lower it.")

_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'")


def verdict(score: float) -> str:
    """A short sentence for an image-level score, so a number is never shown unexplained.

    The score is calibrated on pristine photos (share of them that score lower), so
    0.5 is a perfectly ordinary photo and 0.9 happens for one untouched photo in ten.
    """
    if not math.isfinite(score):
        return "No score could be computed."
    if score >= 0.99:
        return "Very strong evidence of manipulation."
    if score >= 0.9:
        return "Strong evidence of manipulation."
    if score >= 0.75:
        return "Weak evidence of manipulation."
    return "No notable evidence of manipulation."


# --------------------------------------------------------------------------- results


@dataclass
class _Result:
    """One analysis, kept in memory: its PNGs plus what a re-thresholded zip needs."""

    summary: dict[str, Any]
    image_u8: np.ndarray           # H x W x 3, the photo as analysed
    heat16: np.ndarray             # H x W uint16, round(calibrated heatmap * 65535)
    pngs: dict[str, bytes]
    evidence: np.ndarray | None = None  # H x W uint8 codes (see infer.evidence_shares)
    created: float = field(default_factory=time.time)

    @property
    def nbytes(self) -> int:
        return (self.image_u8.nbytes + self.heat16.nbytes
                + (0 if self.evidence is None else self.evidence.nbytes)
                + sum(len(b) for b in self.pngs.values()))


class ResultStore:
    """A thread-safe LRU of recent analyses, bounded in count and in bytes.

    Results are keyed by random 128-bit ids, never by file names: a URL neither reveals
    nor depends on what the analyst uploaded, and cannot be guessed by another page.
    The newest result is always kept, even when it alone exceeds ``max_bytes``.
    """

    def __init__(self, max_items: int = DEFAULT_MAX_RESULTS,
                 max_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, _Result] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, result: _Result) -> str:
        """Keep ``result`` under a fresh random id (returned), evicting the least recent."""
        rid = secrets.token_hex(16)
        with self._lock:
            self._items[rid] = result
            while len(self._items) > 1 and (
                len(self._items) > self.max_items
                or sum(r.nbytes for r in self._items.values()) > self.max_bytes
            ):
                self._items.popitem(last=False)
        return rid

    def get(self, rid: str) -> _Result | None:
        """The result, or None for unknown, expired or malformed ids (never raises)."""
        if not _ID_RE.fullmatch(rid):
            return None
        with self._lock:
            result = self._items.get(rid)
            if result is not None:
                self._items.move_to_end(rid)
            return result

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


# --------------------------------------------------------------------------- rendering


def _png(array: np.ndarray) -> bytes:
    """uint8 gray/RGB or uint16 gray array -> PNG bytes (in memory; nothing is written)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def _quantize_heatmap(heatmap: np.ndarray) -> np.ndarray:
    h = np.nan_to_num(np.asarray(heatmap, dtype=np.float64), nan=0.0)
    return np.rint(np.clip(h, 0.0, 1.0) * 65535.0).astype(np.uint16)


def _mask_from_heat16(heat16: np.ndarray, threshold: float) -> np.ndarray:
    """``value / 65535 >= threshold`` in float64, exactly as the page's JavaScript does it."""
    levels = np.arange(65536, dtype=np.float64) / 65535.0 >= threshold
    return levels[heat16]


def _render(analysis: Analysis, pixels: np.ndarray) -> _Result:
    image_u8 = to_uint8(pixels)
    heat16 = _quantize_heatmap(analysis.heatmap)
    packed = np.zeros((*heat16.shape, 3), np.uint8)
    packed[..., 0] = heat16 >> 8
    packed[..., 1] = heat16 & 0xFF
    pngs = {
        "image": _png(image_u8),
        "heatmap": _png(colorize(analysis.heatmap)),
        "heatmap-gray": _png(heat16),
        "heatmap-data": _png(packed),
        "mask": _png(to_uint8(analysis.mask)),
        "overlay": _png(overlay(pixels, analysis.heatmap, analysis.mask)),
        "fingerprint": _png(to_uint8(fingerprint_view(analysis.fingerprint))),
    }
    summary = _finite(analysis.summary())
    summary["verdict"] = verdict(analysis.score)
    summary["caveat"] = CAVEAT
    return _Result(summary=summary, image_u8=image_u8, heat16=heat16, pngs=pngs,
                   evidence=analysis.evidence)


def _finite(obj: Any) -> Any:
    """NaN and infinities -> None, so every JSON we send is strict (browsers reject NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _zip(result: _Result, rid: str, threshold: float | None) -> bytes:
    """All results in one archive; with ``threshold``, mask and overlay are redone at it."""
    pngs = dict(result.pngs)
    summary = dict(result.summary)
    if threshold is not None and threshold != summary["threshold"]:
        mask = _mask_from_heat16(result.heat16, threshold)
        heat = result.heat16.astype(np.float32) / np.float32(65535.0)
        pngs["mask"] = _png(to_uint8(mask))
        pngs["overlay"] = _png(overlay(result.image_u8.astype(np.float32) / np.float32(255.0),
                                       heat, mask))
        summary["model_threshold"] = summary["threshold"]
        summary["threshold"] = threshold
        summary["tampered_fraction"] = round(float(mask.mean()), 6)
        summary["evidence_in_mask"] = evidence_shares(result.evidence, mask)
    summary["id"] = rid
    summary["files"] = {k: f"{k}.png" for k in _ZIP_KINDS}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for kind in _ZIP_KINDS:  # PNGs are compressed already: store them
            zf.writestr(f"{kind}.png", pngs[kind], compress_type=zipfile.ZIP_STORED)
        zf.writestr("summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n",
                    compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


# --------------------------------------------------------------------------- the app


class _InMemoryRequest(Request):
    """Keeps file uploads in memory: werkzeug would spool large ones to a temporary file."""

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None
                         ) -> io.BytesIO:
        return io.BytesIO()


class _DetectorSlot:
    """The detector, loaded on first use and only once even when requests race for it."""

    def __init__(self, detector: Detector | str | Path | None) -> None:
        self._detector = detector if isinstance(detector, Detector) else None
        self._source = None if isinstance(detector, Detector) else detector
        self._lock = threading.Lock()

    @property
    def loaded(self) -> Detector | None:
        return self._detector

    def get(self) -> Detector:
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    self._detector = load_detector(self._source)
        return self._detector


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _parse_threshold(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise _ApiError(400, f"threshold must be a number between 0 and 1, got {text!r:.40}"
                        ) from None
    if not 0.0 <= value <= 1.0:
        raise _ApiError(400, f"threshold must be between 0 and 1, got {value:g}")
    return value


def _parse_mode(text: str | None) -> str | None:
    if text is None or text.strip() in ("", "default"):
        return None
    if text not in MODES:
        raise _ApiError(400, f"mode must be one of {', '.join(MODES)}, got {text!r:.40}")
    return text


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


def create_app(detector: Detector | str | Path | None = None, *,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               max_pixels: int | None = DEFAULT_MAX_PIXELS,
               max_results: int = DEFAULT_MAX_RESULTS,
               max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> Flask:
    """The viewer as a Flask app (one detector, one in-memory result store).

    Args:
        detector: a fitted :class:`Detector`, or a shipped model name / detector path
            (loaded on the first analysis, so the server starts at once); None is the
            default model.
        max_upload_bytes: larger uploads are refused with 413 before they are read.
        max_pixels: larger images are refused (decompression bombs), as in ``load_image``.
        max_results, max_result_bytes: bounds of the LRU of recent analyses.
    """
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.request_class = _InMemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes
    app.json.sort_keys = False
    slot = _DetectorSlot(detector)
    store = ResultStore(max_results, max_result_bytes)
    analysis_lock = threading.Lock()
    app.extensions["noisead"] = {"detector": slot, "store": store,
                                 "max_upload_bytes": max_upload_bytes, "max_pixels": max_pixels}

    def api_json(fn: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            try:
                return fn(*args, **kwargs)
            except _ApiError as e:
                return _error(e.status, e.message)
        return wrapper

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response | HTTPException:
        if isinstance(e, RequestEntityTooLarge):
            return _error(413, f"the upload is larger than the limit of "
                               f"{_mb(max_upload_bytes)}")
        if request.path.startswith("/api/"):
            return _error(e.code or 500, e.description or e.name)
        return e

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.path.startswith("/api/") and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def index() -> Response:
        response = send_from_directory(STATIC_DIR, "index.html")
        response.headers["Cache-Control"] = "no-cache"
        return response

    @app.get("/api/info")
    def info() -> Response:
        """Limits and the model, so the page can refuse an oversize file before uploading."""
        det = slot.loaded
        return jsonify(model=str(det.info.get("name", "custom")) if det else None,
                       model_loaded=det is not None, modes=list(MODES),
                       max_upload_bytes=max_upload_bytes, max_pixels=max_pixels)

    @app.post("/api/analyze")
    @api_json
    def analyze_upload() -> Response:
        """Multipart upload (field ``image``; optional ``mode``, ``threshold``) -> JSON."""
        upload = request.files.get("image")
        if upload is None:
            raise _ApiError(400, "no image uploaded: send the file in the form field 'image'")
        mode = _parse_mode(request.form.get("mode"))
        threshold = _parse_threshold(request.form.get("threshold"))
        data = upload.read()
        upload.close()
        if not data:
            raise _ApiError(400, "the uploaded file is empty (0 bytes)")
        try:
            det = slot.get()
        except Exception as e:  # any failure to load a model file: say what it was
            log.exception("cannot load the detector")
            raise _ApiError(503, f"the model could not be loaded: {e}") from e
        with analysis_lock:
            try:
                loaded = load_image(data, max_pixels=max_pixels)
                result = analyze(loaded, det, mode=mode, threshold=threshold)
            except (ImageLoadError, ImageTooSmallError) as e:
                raise _ApiError(400, str(e).replace("'<bytes>'", "the uploaded file")) from e
            except ValueError as e:  # e.g. mode="reference" with a blind-only detector
                raise _ApiError(400, f"analysis failed: {e}") from e
            rendered = _render(result, loaded.pixels)
            del loaded, result
        rid = store.add(rendered)
        return jsonify(_describe(rid, rendered))

    @app.get("/api/result/<rid>")
    @api_json
    def result_json(rid: str) -> Response:
        return jsonify(_describe(rid, _lookup(store, rid)))

    @app.get("/api/result/<rid>/<kind>.png")
    @api_json
    def result_png(rid: str, kind: str) -> Response:
        result = _lookup(store, rid)
        if kind not in PNG_KINDS:
            raise _ApiError(404, f"no result image {kind!r:.40}; "
                                 f"choose one of {', '.join(PNG_KINDS)}")
        response = Response(result.pngs[kind], mimetype="image/png")
        response.headers["Cache-Control"] = "private, max-age=3600, immutable"
        return response

    @app.get("/api/result/<rid>/all.zip")
    @api_json
    def result_zip(rid: str) -> Response:
        result = _lookup(store, rid)
        threshold = _parse_threshold(request.args.get("threshold"))
        response = Response(_zip(result, rid, threshold), mimetype="application/zip")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="noisead-{rid[:8]}.zip"')
        return response

    return app


def _lookup(store: ResultStore, rid: str) -> _Result:
    result = store.get(rid)
    if result is None:
        raise _ApiError(404, "no such result: only the most recent analyses are kept in "
                             "memory; analyse the image again")
    return result


def _describe(rid: str, result: _Result) -> dict[str, Any]:
    base = f"/api/result/{rid}"
    urls = {k.replace("-", "_"): f"{base}/{k}.png" for k in PNG_KINDS}
    urls["zip"] = f"{base}/all.zip"
    return {"id": rid, **result.summary, "urls": urls}


# --------------------------------------------------------------------------- serving


def _is_loopback(host: str) -> bool:
    return host in _LOOPBACK_NAMES or host == "::1" or host.startswith("127.")


def restrict_hosts(app: Flask, host: str) -> None:
    """On an IPv4 loopback address, answer only requests addressed to it or ``localhost``.

    A web page the analyst visits could otherwise point a name of its own at 127.0.0.1
    (DNS rebinding) and read the results. (werkzeug cannot match IPv6 names, so ``::1``
    is left unrestricted.) On other addresses, warn: the viewer has no authentication.
    """
    if host in _LOOPBACK_NAMES or host.startswith("127."):
        app.config["TRUSTED_HOSTS"] = list(dict.fromkeys([host, *_LOOPBACK_NAMES]))
    elif not _is_loopback(host):
        log.warning("serving on %s: anyone who can reach this address can upload images "
                    "and see the results", host)


def run(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
        model: Detector | str | Path | None = None, *,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
    """Serve the viewer until Ctrl+C (what ``noisead serve`` calls).

    The model loads in the background right away, so the first analysis does not wait for
    it, but a broken model file still lets the page open and report the error. On a
    loopback address only ``Host: 127.0.0.1`` / ``localhost`` requests are answered, which
    stops web pages from reaching the viewer through DNS rebinding.
    """
    from werkzeug.serving import make_server

    app = create_app(model, max_upload_bytes=max_upload_bytes, max_pixels=max_pixels)
    restrict_hosts(app, host)
    server = make_server(host, port, app, threaded=True)
    slot: _DetectorSlot = app.extensions["noisead"]["detector"]

    def warm_up() -> None:
        try:
            slot.get()
        except Exception as e:  # reported again, to the page, on the first analysis
            log.error("cannot load the model: %s", e)

    threading.Thread(target=warm_up, name="noisead-load-model", daemon=True).start()
    shown = f"[{host}]" if ":" in host else host
    print(f"noisead viewer on http://{shown}:{server.server_port}/  (Ctrl+C to stop)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
