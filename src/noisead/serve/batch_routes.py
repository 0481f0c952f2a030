"""The viewer's routes for a batch run's results (``noisead serve --batch OUT_DIR``).

``/api/batch`` says what the folder holds, ``/api/batch/items`` lists one page of results
filtered by decision, score and name, ``/api/batch/items/<stem>`` describes one result in
the shape of an upload's analysis (so the page shows both alike), and
``/api/batch/items/<stem>/files/<kind>``, ``.../photo`` and ``.../heatmap-data`` serve its
full-size outputs, its photo and (when the run wrote its 16-bit heatmap) the heatmap packed
for the page's threshold slider. Every lookup goes through
:class:`~noisead.serve.batch_folder.BatchFolder`: a request names a result and a kind of
output, never a path. Each request must come from the
viewer's own page (:meth:`~noisead.serve.security.RequestGuard.private_read_refusal`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request, send_file

from noisead.serve.batch_folder import (
    BatchFolder,
    BatchQuery,
    BatchUnreadable,
    NotInBatch,
)
from noisead.serve.render import CAVEAT, finite, pack_heat16, png_bytes
from noisead.serve.security import RequestGuard

__all__ = ["SHOWN_KINDS", "batch_blueprint", "describe_item"]

SHOWN_KINDS = ("heatmap", "mask", "overlay", "fingerprint")
"""The outputs the page lays out side by side (the others are offered as downloads)."""
_SUMMARY_KEYS = ("score", "decision", "texture", "threshold", "tampered_fraction",
                 "evidence_in_mask", "mode", "model", "width", "height", "seconds", "notes",
                 "score_caveat")


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _number(name: str, parse: type, default: Any = None) -> Any:
    text = request.args.get(name, "").strip()
    if not text:
        return default
    try:
        return parse(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r:.40}") from None


def item_base(stem: str) -> str:
    """The URL of a result (its stem percent-encoded as one path segment)."""
    return f"/api/batch/items/{quote(stem, safe='')}"


def describe_item(folder: BatchFolder, stem: str) -> dict[str, Any]:
    """One result as the page shows it: its JSON's summary, the shared verdict as the run
    recorded it, and the URLs of its photo and full-size outputs."""
    record = folder.record(stem)
    files = folder.files(stem)
    base = item_base(stem)
    photo = folder.photo(stem)
    summary = {k: record.get(k) for k in _SUMMARY_KEYS}
    source = record.get("input") if isinstance(record.get("input"), dict) else {}
    urls = {"image": f"{base}/photo"}
    urls.update({k: f"{base}/files/{k}" for k in SHOWN_KINDS if k in files})
    if "heatmap16" in files:  # the exact heatmap: the page's threshold slider redraws the mask
        urls["heatmap_data"] = f"{base}/heatmap-data"
    downloads = [{"kind": kind, "name": name, "url": f"{base}/files/{quote(kind, safe='')}"}
                 for kind, name in files.items()]
    return finite({"id": stem, "source": "batch", "name": source.get("path") or stem,
                   **summary, "caveat": CAVEAT,
                   "photo": {"original": photo.original, "note": photo.reason},
                   "urls": urls, "downloads": downloads})


def batch_blueprint(folder: BatchFolder, guard: RequestGuard) -> Blueprint:
    """The routes above, for ``folder``, refusing reads from other pages with ``guard``."""
    bp = Blueprint("batch", __name__, url_prefix="/api/batch")

    @bp.before_request
    def private() -> Response | None:
        reason = guard.private_read_refusal(request)
        return None if reason is None else _error(403, reason)

    @bp.errorhandler(NotInBatch)
    def not_found(e: NotInBatch) -> Response:
        return _error(404, str(e))

    @bp.errorhandler(BatchUnreadable)
    def unreadable(e: BatchUnreadable) -> Response:
        return _error(500, str(e))

    @bp.errorhandler(ValueError)
    def bad_request(e: ValueError) -> Response:
        return _error(400, str(e))

    @bp.get("")
    def overview() -> Response:
        return jsonify(folder.overview())

    @bp.get("/items")
    def items() -> Response:
        """Query: ``decision``, ``min_score``, ``max_score``, ``name``, ``offset``, ``limit``."""
        query = BatchQuery(decision=request.args.get("decision") or None,
                           min_score=_number("min_score", float),
                           max_score=_number("max_score", float),
                           name=request.args.get("name", "").strip()[:200] or None,
                           offset=_number("offset", int, 0), limit=_number("limit", int, 50))
        page = folder.list(query)
        for item in page["items"]:
            if item["stem"] is not None and item["status"] != "failed":
                base = item_base(item["stem"])
                item["urls"] = {"item": base}
                if "overlay" in item["files"]:  # an analysed result has thumbnails
                    item["urls"]["thumb"] = f"{base}/files/thumb-overlay"
        return jsonify(finite(page))

    @bp.get("/items/<stem>")
    def item(stem: str) -> Response:
        return jsonify(describe_item(folder, stem))

    @bp.get("/items/<stem>/files/<kind>")
    def output(stem: str, kind: str) -> Response:
        found = folder.output(stem, kind)
        inline = found.mimetype in ("image/png", "application/json")
        response = send_file(found.stream, mimetype=found.mimetype,
                             as_attachment=not inline, download_name=found.name)
        response.headers["Cache-Control"] = "private, no-cache"
        return response

    @bp.get("/items/<stem>/heatmap-data")
    def heatmap_data(stem: str) -> Response:
        """The run's 16-bit heatmap packed as the page reads it (see render.pack_heat16)."""
        response = Response(png_bytes(pack_heat16(folder.heat16(stem))), mimetype="image/png")
        response.headers["Cache-Control"] = "private, no-cache"
        return response

    @bp.get("/items/<stem>/photo")
    def photo(stem: str) -> Response:
        found = folder.photo(stem)
        if found.data is None:
            raise NotInBatch(f"{found.reason}, and the result {stem!r:.80} has no thumbnail")
        response = Response(found.data, mimetype=found.mimetype)
        response.headers["Cache-Control"] = "private, no-cache"
        return response

    return bp
