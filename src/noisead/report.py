"""The HTML report of a batch run: one row per image with thumbnails, and the failures.

A self-contained page (no scripts, no external resources) that an analyst can open from
the output folder or attach to a case file. Thumbnails are small PNGs in ``thumbs/``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from noisead.io import atomic_write_bytes, save_png, to_uint8

THUMB_SIDE = 256


def thumbnail(image: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """A uint8 RGB copy of ``image`` whose longer side is at most ``side`` pixels."""
    pil = Image.fromarray(to_uint8(image) if image.dtype != np.uint8 else image)
    pil.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(pil)


def save_thumbnails(out_dir: Path, stem: str, image: np.ndarray, overlay_rgb: np.ndarray
                    ) -> dict[str, str]:
    """Write ``thumbs/<stem>.image.png`` and ``thumbs/<stem>.overlay.png``; relative paths."""
    names = {}
    for kind, arr in (("image", image), ("overlay", overlay_rgb)):
        rel = f"thumbs/{stem}.{kind}.png"
        save_png(out_dir / rel, thumbnail(arr))
        names[kind] = rel
    return names


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:6px 10px;
text-align:left;vertical-align:middle}img{max-width:256px;max-height:256px;display:block}
.hi{color:#b00;font-weight:600}.err{color:#b00}small{color:#666}
"""


def write_report(out_dir: Path, rows: list[dict[str, Any]], failures: list[dict[str, str]],
                 *, model: str, threshold: float) -> Path:
    """Write ``report.html`` in ``out_dir`` (atomically) and return its path.

    ``rows`` need: image, output (file stem), score, tampered, seconds, and may have
    evidence (which statistics set the flagged scores) and score_caveat (why a low score is
    weak evidence, e.g. a recompressed JPEG); thumbnails are looked up in
    ``thumbs/`` and left out where absent (e.g. rows of an older run).
    """
    esc = html.escape
    body = [f"<h1>noisead report</h1><p>Model <b>{esc(model)}</b>, mask threshold "
            f"{threshold:.3f}. {len(rows)} images analysed, {len(failures)} failed. "
            "<small>A score is evidence, not proof: read the heatmap with the image."
            "</small></p>"]
    body.append("<table><tr><th>image</th><th>overlay</th><th>score</th><th>decision</th>"
                "<th>seconds</th><th>file</th></tr>")
    for r in sorted(rows, key=lambda r: -float(r["score"])):
        stem = str(r["output"])
        cells = []
        for kind in ("image", "overlay"):
            rel = f"thumbs/{stem}.{kind}.png"
            cells.append(f'<a href="{esc(stem)}.overlay.png"><img src="{esc(rel)}" '
                         f'alt="{kind}"></a>' if (out_dir / rel).is_file() else "")
        tampered = str(r["tampered"]).lower() == "true"
        decision = ('<span class="hi">regions above threshold</span>' if tampered
                    else "no region above threshold")
        if tampered and r.get("evidence"):
            decision += f"<br><small>set by: {esc(str(r['evidence']))}</small>"
        elif not tampered and r.get("score_caveat"):
            decision += (f"<br><small>weak evidence of authenticity: "
                         f"{esc(str(r['score_caveat']))} (recompressed after any edit)</small>")
        body.append(f"<tr><td>{cells[0]}</td><td>{cells[1]}</td>"
                    f"<td>{float(r['score']):.3f}</td><td>{decision}</td>"
                    f"<td>{float(r['seconds']):.1f}</td><td>{esc(str(r['image']))}</td></tr>")
    body.append("</table>")
    if failures:
        body.append("<h2>Failed files</h2><ul>")
        body += [f"<li>{esc(f['image'])}: <span class='err'>{esc(f['error'])}</span></li>"
                  for f in failures]
        body.append("</ul>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>noisead report</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>")
    path = out_dir / "report.html"
    atomic_write_bytes(path, page.encode())
    return path
