"""Who may use the viewer: its own page, at its own address, and nobody else.

The viewer listens on the analyst's machine, and every web page the analyst opens runs in
a browser on that same machine. Three checks keep those pages out:

* **Host** (every request): only the address the server is bound to is answered
  (``127.0.0.1:8765``, and ``localhost:8765`` on a loopback address). A page that points
  a name of its own at 127.0.0.1 (DNS rebinding) would otherwise be *same-origin* with
  the viewer and could read the page, its token and the results.
* **Origin** (every request that is not GET/HEAD/OPTIONS): the ``Origin`` header, or the
  ``Referer`` when a browser sent no Origin, must be the server's own origin. A form or a
  ``fetch`` from another site carries that site's origin and is refused before the upload
  is read.
* **A token** (same requests): a random secret made when the server starts, written into
  the page the server renders (which other origins cannot read) and sent back by the
  page's script in the ``X-Noisead-Token`` header. A request without it gets 403.

Reading a batch's results (``noisead serve --batch``) is private too: their URLs name
results by their file names, which another page could guess, so they are answered only to
a request that carries the token, or whose ``Sec-Fetch-Site`` header (set by the browser,
never by a page's script) says it comes from the viewer's own page or from the analyst
(``same-origin``, ``none``). Another site's ``<img>`` or ``fetch`` gets 403.

The page is served with ``Referrer-Policy: same-origin`` (not ``no-referrer``): under
``no-referrer`` the Fetch standard has a browser send ``Origin: null`` and no Referer with
the page's own uploads (Chromium sends the origin anyway), which the Origin check cannot
tell from a sandboxed attacker's; no URL leaves for another origin either way. The
Content-Security-Policy forbids every other origin, so the viewer works offline and never
leaks a case photo to a CDN.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import secrets
from urllib.parse import urlsplit

from flask import Flask, Request, Response, jsonify, request

__all__ = ["CSP", "FETCH_SITE_HEADER", "TOKEN_HEADER", "RequestGuard", "install"]

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Noisead-Token"
FETCH_SITE_HEADER = "Sec-Fetch-Site"
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
       "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
_WILDCARDS = ("", "0.0.0.0", "::")
_HOST_HEADER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")

Endpoint = tuple[str, str, int]  # scheme, lower-case host name, port


class RequestGuard:
    """The Host, Origin and token checks for a server bound to ``host:port``.

    The token is made here, once per server start (``secrets.token_urlsafe``), so a page
    from an earlier run of the viewer must be reloaded.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.token = secrets.token_urlsafe(32)
        self.bind(host, port)

    def bind(self, host: str, port: int) -> None:
        """Answer requests addressed to ``host:port`` (the port the server really got)."""
        name = host.strip("[]").lower()
        if name in _WILDCARDS:
            names: frozenset[str] | None = None  # any IP address, never a DNS name
            exposure = "all interfaces"
        elif name == "localhost":  # the server took one of its loopback addresses
            names, exposure = frozenset({"localhost", "127.0.0.1", "::1"}), None
        elif _is_loopback_ip(name):
            names, exposure = frozenset({name, "localhost"}), None
        else:
            names, exposure = frozenset({name}), host
        if exposure is not None and host != getattr(self, "host", None):
            log.warning("serving on %s: anyone who can reach it can open the viewer, upload "
                        "images and see the results", exposure)
        self.host, self.port, self._names = host, int(port), names

    def host_allowed(self, host_header: str) -> bool:
        """Whether a ``Host`` header names this server (see the module docstring)."""
        if not _HOST_HEADER.fullmatch(host_header):  # no user@, path or stray characters
            return False
        endpoint = _endpoint("http://" + host_header)
        if endpoint is None or endpoint[2] != self.port:
            return False
        if self._names is None:
            return endpoint[1] == "localhost" or _is_ip(endpoint[1])
        return endpoint[1] in self._names

    def refusal(self, req: Request) -> str | None:
        """Why ``req`` must be refused (a sentence for the client), or None to let it in."""
        host = req.headers.get("Host", "")
        if not self.host_allowed(host):
            return (f"this viewer answers only requests addressed to its own address "
                    f"(port {self.port}), not to {host[:80]!r}")
        if req.method in SAFE_METHODS:
            return None
        origin = req.headers.get("Origin")
        source = origin if origin is not None else req.headers.get("Referer")
        if source is None:
            return ("request refused: it carries neither an Origin nor a Referer header; "
                    "upload from the viewer's own page")
        if _endpoint(source) != _endpoint("http://" + host):
            return (f"request refused: it comes from another origin ({source[:80]!r}); "
                    "upload from the viewer's own page")
        if not self._has_token(req):
            return ("request refused: the viewer's token is missing or out of date "
                    "(reload the page: the token changes each time the viewer starts)")
        return None

    def private_read_refusal(self, req: Request) -> str | None:
        """Why a read of private data (a batch's results) must be refused, or None.

        Called after :meth:`refusal` let the request in (so the Host is ours).
        """
        if self._has_token(req) or req.headers.get(FETCH_SITE_HEADER) in _OWN_FETCH_SITES:
            return None
        return ("request refused: a batch's results are shown only to the viewer's own page "
                "(open the viewer, or send its token)")

    def _has_token(self, req: Request) -> bool:
        supplied = req.headers.get(TOKEN_HEADER, "")
        return hmac.compare_digest(supplied.encode(), self.token.encode())


def install(app: Flask, guard: RequestGuard) -> None:
    """Check every request of ``app`` with ``guard`` and add the security headers."""

    @app.before_request
    def check_request() -> Response | None:
        reason = guard.refusal(request)
        if reason is None:
            return None
        log.warning("refused %s %s: %s", request.method, request.path, reason)
        response = jsonify(error=reason)
        response.status_code = 403
        return response

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.path.startswith("/api/") and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response


def _endpoint(url: str) -> Endpoint | None:
    """``(scheme, host, port)`` of a URL or origin, default ports filled in; None if bad."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.scheme not in ("http", "https"):
        return None
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.lower(), port if port is not None else default


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback_ip(name: str) -> bool:
    return _is_ip(name) and ipaddress.ip_address(name).is_loopback
