"""``noisead serve``: a local web viewer where an analyst drops a photo and inspects results.

Why a server and not a static page: the analysis needs the PyTorch detector, so the
browser uploads the photo to a process on the analyst's own machine (127.0.0.1 by default)
and gets back PNGs it can layer, threshold and download. This module holds the routes;
each other job has its own module:

* :mod:`~noisead.serve.security`: only the viewer's own page, at the server's own
  address, with the token the server gave it, may upload (Host, Origin and token checks);
  the security headers (CSP, no framing, no sniffing).
* :mod:`~noisead.serve.jobs` and :mod:`~noisead.serve.worker`: uploads are decoded and
  analysed one at a time in a separate worker process, behind a bounded queue (503 with
  ``Retry-After`` when full) and under a time limit (the worker is killed past it: 504).
  The server's own pixel cap (default 50 MP, below the library's) refuses an image from
  its declared size before any pixel is decoded.
* :mod:`~noisead.serve.render`: PNGs, JSON and the zip of an analysis; the decision shown
  is the shared verdict (:mod:`noisead.verdict`), never wording of the viewer's own.
* :mod:`~noisead.serve.results`: the in-memory LRU of recent results, under random ids.
* :mod:`~noisead.serve.batch_folder` and :mod:`~noisead.serve.batch_routes`: with
  ``batch_dir``, a batch run's results (``noisead analyze -o``), listed, filtered and
  opened in the same page, read-only, from the one folder named on the command line.

Uploads never touch the file system: the bytes stay in memory (no temporary file, no name
from the request ever used as a path) until the worker decodes them with
:func:`noisead.io.load_image`, the package's one hardened decoder.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import (
    Flask,
    Request,
    Response,
    abort,
    jsonify,
    render_template,
    request,
    send_from_directory,
)
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from noisead.anomaly.config import STATISTICS_PARTS
from noisead.anomaly.detector import MODES, Detector
from noisead.serve.batch_folder import BatchFolder
from noisead.serve.batch_routes import batch_blueprint
from noisead.serve.jobs import DEFAULT_MAX_PENDING, DEFAULT_TIME_LIMIT_S, AnalysisQueue, QueueFull
from noisead.serve.render import zip_result
from noisead.serve.results import (
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_MAX_RESULTS,
    PNG_KINDS,
    AnalysisResult,
    ResultStore,
)
from noisead.serve.security import RequestGuard, install
from noisead.serve.worker import (
    AnalysisFailed,
    AnalysisJob,
    AnalysisTimedOut,
    BadInput,
    ModelUnavailable,
)

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_MAX_UPLOAD_BYTES", "create_app", "restrict_hosts",
           "run", "shutdown"]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000
"""The viewer's pixel cap: lower than the library's, because anyone who can reach the page
can send an image, and every megapixel costs the shared worker time and memory."""
STATIC_DIR = Path(__file__).parent / "static"
ASSETS = ("viewer.js", "api.js", "views.js", "result.js", "uploads.js", "batch.js",
          "viewer.css", "favicon.svg")


class _InMemoryRequest(Request):
    """Keeps file uploads in memory: werkzeug would spool large ones to a temporary file."""

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None
                         ) -> io.BytesIO:
        return io.BytesIO()


class _ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    response.headers.update(headers or {})
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


def _parse_choice(field: str, text: str | None, choices: tuple[str, ...]) -> str | None:
    """A form field that names one of ``choices``; absent, empty or "default": None."""
    if text is None or text.strip() in ("", "default"):
        return None
    if text not in choices:
        raise _ApiError(400, f"{field} must be one of {', '.join(choices)}, got {text!r:.40}")
    return text


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


def create_app(detector: Detector | str | Path | None = None, *,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               max_pixels: int = DEFAULT_MAX_PIXELS,
               max_pending: int = DEFAULT_MAX_PENDING,
               time_limit: float = DEFAULT_TIME_LIMIT_S,
               max_results: int = DEFAULT_MAX_RESULTS,
               max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
               host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
               batch_dir: str | Path | None = None) -> Flask:
    """The viewer as a Flask app (one worker process, one in-memory result store).

    Args:
        detector: a fitted :class:`Detector`, or a shipped model name / detector path
            (loaded by the worker when it starts, on the first analysis or
            :func:`run`'s warm-up); None is the default model.
        max_upload_bytes: larger uploads are refused with 413 before they are read.
        max_pixels: images declaring more pixels are refused before decoding (400).
        max_pending: analyses running or waiting at once; more get 503 + Retry-After.
        time_limit: seconds one analysis may run before its worker is killed (504).
        max_results, max_result_bytes: bounds of the LRU of recent analyses.
        host, port: the address the server answers to (:func:`restrict_hosts` sets the
            port a server really got); requests addressed elsewhere are refused.
        batch_dir: the output folder of a batch run to open in the page (read-only);
            raises FileNotFoundError or ValueError when it is not one.
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive int, got {max_pixels!r}")
    app = Flask(__name__, static_folder=None, template_folder=str(STATIC_DIR))
    app.request_class = _InMemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes
    app.json.sort_keys = False
    batch = BatchFolder(batch_dir) if batch_dir is not None else None
    guard = RequestGuard(host, port)
    queue = AnalysisQueue(detector, max_pending=max_pending, time_limit=time_limit)
    store = ResultStore(max_results, max_result_bytes)
    app.extensions["noisead"] = {"guard": guard, "queue": queue, "store": store,
                                 "max_upload_bytes": max_upload_bytes, "max_pixels": max_pixels}
    install(app, guard)
    if batch is not None:
        app.register_blueprint(batch_blueprint(batch, guard))

    def api_json(fn: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            try:
                return fn(*args, **kwargs)
            except _ApiError as e:
                return _error(e.status, e.message, e.headers)
        return wrapper

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response | HTTPException:
        if isinstance(e, RequestEntityTooLarge):
            return _error(413, f"the upload is larger than the limit of "
                               f"{_mb(max_upload_bytes)}")
        if request.path.startswith("/api/"):
            return _error(e.code or 500, e.description or e.name)
        return e

    @app.get("/")
    def index() -> Response:
        """The page, with this server's token in a meta tag for the page's script."""
        response = Response(render_template("index.html", token=guard.token),
                            mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"  # it carries the token
        return response

    @app.get("/static/<name>")
    def static_asset(name: str) -> Response:
        if name not in ASSETS:
            abort(404)
        return send_from_directory(STATIC_DIR, name)

    @app.get("/api/info")
    def info() -> Response:
        """Limits and the model, so the page can refuse an oversize file before uploading."""
        return jsonify(model=queue.model_name, model_loaded=queue.model_loaded,
                       modes=list(MODES), max_upload_bytes=max_upload_bytes,
                       max_pixels=max_pixels, max_pending=max_pending,
                       time_limit=queue.time_limit, batch=batch is not None)

    @app.post("/api/analyze")
    @api_json
    def analyze_upload() -> Response:
        """Multipart upload (field ``image``; optional ``mode``, ``threshold``, ``parts``)
        -> JSON."""
        upload = request.files.get("image")
        if upload is None:
            raise _ApiError(400, "no image uploaded: send the file in the form field 'image'")
        mode = _parse_choice("mode", request.form.get("mode"), MODES)
        threshold = _parse_threshold(request.form.get("threshold"))
        parts = _parse_choice("parts", request.form.get("parts"), STATISTICS_PARTS)
        data = upload.read()
        upload.close()
        if not data:
            raise _ApiError(400, "the uploaded file is empty (0 bytes)")
        job = AnalysisJob(data, mode, threshold, max_pixels, parts)
        try:
            rendered = queue.submit(job)
        except QueueFull as e:
            raise _ApiError(503, str(e), {"Retry-After": str(e.retry_after)}) from e
        except AnalysisTimedOut as e:
            raise _ApiError(504, f"{e}; try a smaller image (the viewer's limit is set with "
                                 "noisead serve --time-limit)") from e
        except ModelUnavailable as e:
            log.error("cannot load the model: %s", e)
            raise _ApiError(503, str(e)) from e
        except BadInput as e:
            raise _ApiError(400, str(e)) from e
        except AnalysisFailed as e:
            log.error("analysis failed: %s", e)
            raise _ApiError(500, str(e)) from e
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
        if kind not in result.pngs:
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
        response = Response(zip_result(result, rid, threshold), mimetype="application/zip")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="noisead-{rid[:8]}.zip"')
        return response

    return app


def _lookup(store: ResultStore, rid: str) -> AnalysisResult:
    result = store.get(rid)
    if result is None:
        raise _ApiError(404, "no such result: only the most recent analyses are kept in "
                             "memory; analyse the image again")
    return result


def _describe(rid: str, result: AnalysisResult) -> dict[str, Any]:
    base = f"/api/result/{rid}"
    urls = {k.replace("-", "_"): f"{base}/{k}.png" for k in PNG_KINDS if k in result.pngs}
    urls["zip"] = f"{base}/all.zip"
    return {"id": rid, "source": "upload", **result.summary, "urls": urls}


# --------------------------------------------------------------------------- serving


def restrict_hosts(app: Flask, host: str, port: int) -> None:
    """Answer only requests addressed to ``host:port`` (``localhost:port`` too on loopback).

    Call it with the port the server really got (a server on port 0 picks one). A web page
    the analyst visits could otherwise point a name of its own at 127.0.0.1 (DNS
    rebinding) and use the viewer as if it were its own.
    """
    guard: RequestGuard = app.extensions["noisead"]["guard"]
    guard.bind(host, port)


def shutdown(app: Flask) -> None:
    """Stop the app's worker process (the app can still start a new one if used again)."""
    queue: AnalysisQueue = app.extensions["noisead"]["queue"]
    queue.close()


def run(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
        model: Detector | str | Path | None = None, *,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_pending: int = DEFAULT_MAX_PENDING,
        time_limit: float = DEFAULT_TIME_LIMIT_S,
        batch_dir: str | Path | None = None) -> None:
    """Serve the viewer until Ctrl+C (what ``noisead serve`` calls; ``--batch OUT_DIR``
    opens a batch run's results in it).

    The worker starts and loads the model in the background right away, so the first
    analysis does not wait for it, but a broken model file still lets the page open and
    report the error.
    """
    from werkzeug.serving import make_server

    app = create_app(model, max_upload_bytes=max_upload_bytes, max_pixels=max_pixels,
                     max_pending=max_pending, time_limit=time_limit, host=host, port=port,
                     batch_dir=batch_dir)
    server = make_server(host, port, app, threaded=True)
    restrict_hosts(app, host, server.server_port)
    queue: AnalysisQueue = app.extensions["noisead"]["queue"]

    def warm_up() -> None:
        try:
            queue.warm_up()
        except ModelUnavailable as e:  # reported again, to the page, on each analysis
            log.error("%s", e)

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
        queue.close()
