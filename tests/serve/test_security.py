"""No web page but the viewer's own may use it: Host, Origin and token checks, on the real
server on 127.0.0.1 (each request is what a hostile page could make a browser send)."""

from __future__ import annotations

import pytest

pytest.importorskip("flask")

from noisead.serve.app import create_app  # noqa: E402
from noisead.serve.security import CSP, TOKEN_HEADER, RequestGuard  # noqa: E402

NOT_AN_IMAGE = b"plain text, not pixels"  # reaches the worker only when let in: 400


def _refused(r) -> str:
    assert r.status == 403, r.data[:500]
    return r.json()["error"]


def _port(viewer) -> str:
    return viewer.base.rsplit(":", 1)[1]


def test_the_page_itself_gets_in(viewer):
    r = viewer.post(NOT_AN_IMAGE)
    assert r.status == 400 and "not a recognised image format" in r.json()["error"]


def test_an_upload_without_the_token_is_403(viewer):
    message = _refused(viewer.post(NOT_AN_IMAGE, headers={"Origin": viewer.base}))
    assert "token" in message


def test_an_upload_with_a_wrong_token_is_403(viewer):
    forged = {"Origin": viewer.base, TOKEN_HEADER: "x" * len(viewer.token)}
    assert "token" in _refused(viewer.post(NOT_AN_IMAGE, headers=forged))


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:1", "null",
                                    "http://localhost.evil.example"])
def test_an_upload_from_another_origin_is_403_even_with_the_token(viewer, origin):
    r = viewer.post(NOT_AN_IMAGE, headers={"Origin": origin, TOKEN_HEADER: viewer.token})
    assert "origin" in _refused(r)


def test_a_cross_site_form_is_403(viewer):
    """What a plain HTML form on another site submits: no token, that site's origin."""
    r = viewer.http.request("POST", viewer.base + "/api/analyze",
                            fields={"image": ("x.png", NOT_AN_IMAGE)},
                            headers={"Origin": "https://evil.example",
                                     "Referer": "https://evil.example/page"})
    _refused(r)


def test_the_referer_stands_in_for_a_missing_origin(viewer):
    own = viewer.post(NOT_AN_IMAGE, headers={"Referer": viewer.base + "/",
                                             TOKEN_HEADER: viewer.token})
    assert own.status == 400
    other = viewer.post(NOT_AN_IMAGE, headers={"Referer": "https://evil.example/x",
                                               TOKEN_HEADER: viewer.token})
    _refused(other)
    neither = viewer.post(NOT_AN_IMAGE, headers={TOKEN_HEADER: viewer.token})
    assert "neither an Origin nor a Referer" in _refused(neither)


def test_a_rebound_host_is_refused_and_never_sees_the_token(viewer):
    """DNS rebinding: a page's own name pointed at 127.0.0.1 is same-origin for the
    browser, so only the Host header tells it apart."""
    port = _port(viewer)
    page = viewer.get("/", headers={"Host": f"rebound.example:{port}"})
    _refused(page)
    assert viewer.token.encode() not in page.data
    rebound = {"Host": f"rebound.example:{port}", "Origin": f"http://rebound.example:{port}",
               TOKEN_HEADER: viewer.token}
    _refused(viewer.post(NOT_AN_IMAGE, headers=rebound))
    _refused(viewer.get("/api/info", headers={"Host": f"rebound.example:{port}"}))


@pytest.mark.parametrize("host", ["127.0.0.1:1", "127.0.0.1", "127.0.0.2:{port}",
                                  "evil@127.0.0.1:{port}", "127.0.0.1:{port}/x", ""])
def test_only_the_bound_address_is_answered(viewer, host):
    _refused(viewer.get("/api/info", headers={"Host": host.format(port=_port(viewer))}))


def test_localhost_on_the_bound_port_is_answered(viewer):
    port = _port(viewer)
    assert viewer.get("/", headers={"Host": f"localhost:{port}"}).status == 200
    page_of_localhost = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}",
                         TOKEN_HEADER: viewer.token}
    assert viewer.post(NOT_AN_IMAGE, headers=page_of_localhost).status == 400


def test_security_headers(viewer):
    headers = viewer.get("/").headers
    assert headers["Content-Security-Policy"] == CSP
    assert "default-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
    assert headers["X-Frame-Options"] == "DENY"
    # under no-referrer, the Fetch standard sends "Origin: null" with the page's uploads
    assert headers["Referrer-Policy"] == "same-origin"
    assert viewer.get("/api/info").headers["Cache-Control"] == "no-store"


def test_each_server_start_has_its_own_token(tiny_detector):
    tokens = {create_app(tiny_detector).extensions["noisead"]["guard"].token
              for _ in range(3)}
    assert len(tokens) == 3


def test_guard_on_all_interfaces_answers_addresses_never_names():
    guard = RequestGuard("0.0.0.0", 8765)
    assert guard.host_allowed("192.168.1.20:8765")
    assert guard.host_allowed("localhost:8765")
    assert guard.host_allowed("[::1]:8765")
    assert not guard.host_allowed("rebound.example:8765")
    assert not guard.host_allowed("192.168.1.20:8766")


def test_guard_on_ipv6_loopback():
    guard = RequestGuard("::1", 8765)
    assert guard.host_allowed("[::1]:8765")
    assert guard.host_allowed("localhost:8765")
    assert not guard.host_allowed("127.0.0.1:8765")
    assert not guard.host_allowed("[::1]:80")
