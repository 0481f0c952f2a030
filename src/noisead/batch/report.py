"""The HTML report of a batch run: pages of rows with thumbnails, and the failures.

A self-contained set of pages (no script, no external resource) that an analyst opens
from the output folder or attaches to a case file, rebuilt from the state database like
the CSVs. Long runs are paged (``ROWS_PER_PAGE`` results per page: ``report.html``,
``report-2.html``, ...) so a large run never becomes one page with a million thumbnails.

File names are hostile input: every name is escaped for where it goes (``quote`` for a
path segment in ``href``/``src``, always behind ``./`` so no name can become a
``javascript:`` or other scheme URL; ``html.escape`` for text and attributes), and each
page carries a Content-Security-Policy that allows no script at all and images from the
folder only, so even a mistake here could not run code.
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

from noisead.batch.naming import THUMBS_DIR
from noisead.batch.state import BatchState, InputRecord
from noisead.batch.summary import atomic_text_file

ROWS_PER_PAGE = 200
#: Failures listed on the first page (all of them are in failures.csv).
FAILURES_SHOWN = 200

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:6px 10px;
text-align:left;vertical-align:middle}img{max-width:256px;max-height:256px;display:block}
.flagged{color:#b00;font-weight:600}.unjudged{color:#805b00}.err{color:#b00}
small{color:#666}nav{margin:1em 0}nav a,nav b{margin-right:.6em}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
#: No script, nothing from outside the folder, no plugins, no forms, no <base>.
CSP = (f"default-src 'none'; img-src 'self'; style-src 'sha256-{_STYLE_HASH}'; "
       "base-uri 'none'; form-action 'none'")

_PAGE_FILE = re.compile(r"^report-(\d+)\.html$")


def page_name(number: int) -> str:
    """``report.html`` for page 1, ``report-<n>.html`` after it."""
    return "report.html" if number == 1 else f"report-{number}.html"


def href(relative: str) -> str:
    """A relative link to a file of the output folder, safe in an HTML attribute: each path
    segment percent-encoded (``:``, ``?``, ``#`` included) and prefixed with ``./``."""
    return html.escape("./" + "/".join(quote(part, safe="") for part in relative.split("/")),
                       quote=True)


def _row(record: InputRecord) -> str:
    esc = html.escape
    stem = record.stem or ""
    cells = []
    for kind in ("image", "overlay"):
        if "overlay" in record.files:  # an analysed image has thumbnails
            thumb = href(f"{THUMBS_DIR}/{stem}.{kind}.png")
            cells.append(f'<a href="{href(stem + ".overlay.png")}"><img src="{thumb}" '
                         f'alt="{kind} of {esc(stem, quote=True)}"></a>')
        else:
            cells.append("")
    decision = record.decision or ""
    css = {"flagged": "flagged", "not flagged": "clear"}.get(decision, "unjudged")
    words = f'<span class="{css}">{esc(decision)}</span><br><small>{esc(record.verdict or "")}'
    if decision == "flagged" and record.evidence:
        words += f"<br>set by: {esc(record.evidence)}"
    words += "</small>"
    score = "" if record.score is None else f"{record.score:.3f}"
    seconds = "" if record.seconds is None else f"{record.seconds:.1f}"
    return (f"<tr><td>{cells[0]}</td><td>{cells[1]}</td><td>{score}</td><td>{words}</td>"
            f"<td>{seconds}</td><td>{esc(record.display)}</td></tr>")


def _nav(current: int, pages: int) -> str:
    """Links to the first, previous, nearby, next and last pages."""
    if pages <= 1:
        return ""
    shown = sorted({1, pages, *range(max(1, current - 5), min(pages, current + 5) + 1)})
    parts = []
    if current > 1:
        parts.append(f'<a href="{href(page_name(current - 1))}">previous</a>')
    last = 0
    for n in shown:
        if n > last + 1:
            parts.append("…")
        parts.append(f"<b>{n}</b>" if n == current
                     else f'<a href="{href(page_name(n))}">{n}</a>')
        last = n
    if current < pages:
        parts.append(f'<a href="{href(page_name(current + 1))}">next</a>')
    return f"<nav>Page {' '.join(parts)}</nav>"


def _page(number: int, pages: int, rows: Iterable[InputRecord], header: str,
          failures: str) -> str:
    nav = _nav(number, pages)
    table = ("<table><tr><th>image</th><th>overlay</th><th>score</th><th>decision</th>"
             "<th>seconds</th><th>file</th></tr>" + "".join(_row(r) for r in rows)
             + "</table>")
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>noisead report ({number}/{pages})</title><style>{_STYLE}</style></head>"
            f"<body>{header}{nav}{table}{nav}{failures if number == 1 else ''}</body></html>")


def _chunks(records: Iterator[InputRecord], size: int) -> Iterator[list[InputRecord]]:
    while chunk := list(itertools.islice(records, size)):
        yield chunk


def write_report(state: BatchState, out_dir: Path, *, model: str,
                 rows_per_page: int = ROWS_PER_PAGE) -> list[Path]:
    """Rebuild the report pages of ``out_dir`` from ``state`` (each written atomically),
    remove pages left from a larger report, and return the pages' paths."""
    esc = html.escape
    n_results = state.count("done", "no-texture")
    n_failed = state.count("failed")
    pages = max(1, -(-n_results // rows_per_page))
    header = (f"<h1>noisead report</h1><p>Model of the last run <b>{esc(model)}</b>. "
              f"{n_results} images analysed, {n_failed} failed (all in "
              f'<a href="{href("summary.csv")}">summary.csv</a> and '
              f'<a href="{href("failures.csv")}">failures.csv</a>). '
              "<small>A score is evidence, not proof: read the heatmap with the image."
              "</small></p>")
    failures = ""
    if n_failed:
        items = "".join(f"<li>{esc(r.display)}: <span class='err'>{esc(r.error or '')}"
                        "</span></li>"
                        for r in itertools.islice(state.failures(), FAILURES_SHOWN))
        more = (f"<p>{n_failed - FAILURES_SHOWN} more in failures.csv</p>"
                if n_failed > FAILURES_SHOWN else "")
        failures = f"<h2>Failed files</h2><ul>{items}</ul>{more}"
    written = []
    chunks = _chunks(state.results(), rows_per_page)
    for number in range(1, pages + 1):
        path = out_dir / page_name(number)
        with atomic_text_file(path) as fh:
            fh.write(_page(number, pages, next(chunks, []), header, failures))
        written.append(path)
    for stale in out_dir.glob("report-*.html"):
        match = _PAGE_FILE.match(stale.name)
        if match and int(match.group(1)) > pages:
            stale.unlink(missing_ok=True)
    return written
