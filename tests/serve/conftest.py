"""Fixtures of the viewer tests: a tiny fitted detector, a photo with a spliced square,
hostile PNGs, the real server on 127.0.0.1 with a client that talks to it as its page
does (same origin, with the page's token), batch runs to open in it, and the photos of the
browser tests (``browser_support`` starts the browser)."""

from __future__ import annotations

import io
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

TEST_MODEL_NAME = "test-tiny"


@pytest.fixture(scope="session")
def tiny_detector():
    """A detector fitted in seconds on random images: scores are meaningless, shapes real."""
    from noisead.anomaly.detector import DetectorConfig
    from noisead.anomaly.fit import fit_detector
    from noisead.models.registry import create_model

    pristine = [np.random.default_rng(i).random((96, 96, 3), dtype=np.float32)
                for i in range(4)]
    det = fit_detector(create_model("dncnn-tiny"), pristine,
                       DetectorConfig(patch_size=32, crop_size=64, tile=128,
                                      evidence=("noise-level", "noise-spectrum", "jpeg-lattice")),
                       progress=False)
    det.info["name"] = TEST_MODEL_NAME
    return det


def spliced_image(size: int = 128, seed: int = 0) -> np.ndarray:
    """uint8 RGB: smooth gradient with weak noise, its central square with strong noise.

    The square covers a ninth of the image, less than the share the blind mode trims
    before refitting, so even the untrained test detector finds it.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([0.3 + 0.4 * x, 0.3 + 0.3 * y, 0.5 - 0.2 * x], axis=2)
    img = base + rng.normal(0, 0.03, base.shape).astype(np.float32)
    q = size // 3
    img[q:-q, q:-q] += rng.normal(0, 0.15, (size - 2 * q, size - 2 * q, 3)).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def make_spliced():
    """``make_spliced(size, seed)``: see :func:`spliced_image`."""
    return spliced_image


@pytest.fixture(scope="session")
def spliced_png() -> bytes:
    return png_bytes(spliced_image())


@pytest.fixture(scope="session")
def to_png():
    """The PNG encoder above, for tests that build their own images."""
    return png_bytes


@pytest.fixture(scope="session")
def spliced_array() -> np.ndarray:
    return spliced_image()


def declared_png(width: int, height: int) -> bytes:
    """A real 1-bit black PNG of ``width`` x ``height``: a few hundred bytes for 2 MP, about
    24 KB for 196 MP, because rows of zeros compress to almost nothing. What a hostile
    upload looks like: tiny on the wire, huge once decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    rows = b"".join(packer.compress(row * min(1024, height - y)) for y in range(0, height, 1024))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", rows + packer.flush()) + chunk(b"IEND", b""))


@pytest.fixture(scope="session")
def hostile_png():
    """``hostile_png(width, height)``: see :func:`declared_png`."""
    return declared_png


class Viewer:
    """An HTTP client of a running viewer that behaves like the viewer's own page: it reads
    the token from the page and sends it, with the page's origin, on every upload."""

    def __init__(self, base: str, app=None) -> None:
        import urllib3

        self.base = base
        self.app = app
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(300))
        page = self.get("/").data.decode()
        found = re.search(r'<meta name="noisead-token" content="([^"]+)"', page)
        assert found, "the page carries no token"
        self.token = found.group(1)

    def get(self, path: str, headers: dict[str, str] | None = None):
        return self.http.request("GET", self.base + path, headers=headers or {})

    def page_headers(self) -> dict[str, str]:
        return {"Origin": self.base, "X-Noisead-Token": self.token}

    def post(self, data: bytes, name: str = "photo.png", *,
             headers: dict[str, str] | None = None, **fields: str):
        """Upload ``data`` as the page does; ``headers`` replace the page's own."""
        return self.http.request(
            "POST", self.base + "/api/analyze",
            fields={"image": (name, data, "application/octet-stream"), **fields},
            headers=self.page_headers() if headers is None else headers)


@contextmanager
def serving(app) -> Iterator[Viewer]:
    """``app`` served by werkzeug on a free port of 127.0.0.1 from a background thread;
    afterwards the server and the app's worker process are stopped."""
    from werkzeug.serving import make_server

    from noisead.serve.app import restrict_hosts, shutdown

    server = make_server("127.0.0.1", 0, app, threaded=True)
    restrict_hosts(app, "127.0.0.1", server.server_port)
    thread = threading.Thread(target=server.serve_forever, name="viewer-under-test",
                              daemon=True)
    thread.start()
    try:
        yield Viewer(f"http://127.0.0.1:{server.server_port}", app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        shutdown(app)


@pytest.fixture(scope="session")
def serve():
    """``with serve(app) as viewer:``: see :func:`serving`."""
    return serving


@pytest.fixture(scope="session")
def viewer(tiny_detector):
    """One viewer with the tiny detector and default limits, served for the whole session
    (its worker process starts once)."""
    from noisead.serve.app import create_app

    with serving(create_app(tiny_detector)) as running:
        yield running


# -- batch folders and the browser --------------------------------------------------------

def run_tiny_batch(folder, out, detector) -> None:
    """``noisead analyze folder -o out --outputs all`` with ``detector``."""
    import functools

    from noisead.batch import run_batch
    from noisead.batch.outputs import OUTPUT_CHOICES, OutputOptions
    from noisead.infer import analyze

    run_batch([folder], out, functools.partial(analyze, detector=detector), model="test",
              progress=False, outputs=OutputOptions(kinds=frozenset(OUTPUT_CHOICES)))


@pytest.fixture(scope="session")
def batch_run():
    """``batch_run(folder, out, detector)``: see :func:`run_tiny_batch`."""
    return run_tiny_batch


def write_casework_photos(folder) -> dict:
    """The photos of the browser tests, made from the bundled example, by name: a region
    resampled (down and up again, as a retouch does: it scores above the example with the
    default model), the example itself (a splice), a flat grey picture (not enough
    texture) and a file that is not an image."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "src" / "noisead" / "examples" / "spliced.png"
    photo = Image.open(example).convert("RGB")
    region = photo.crop((60, 300, 200, 420))
    resampled = photo.copy()
    resampled.paste(region.resize((70, 60), Image.Resampling.BICUBIC)
                    .resize(region.size, Image.Resampling.BICUBIC), (60, 300))
    paths = {"resampled": folder / "resampled.png", "spliced": folder / "spliced.png",
             "flat": folder / "flat.png", "not-a-photo": folder / "not-a-photo.png"}
    resampled.save(paths["resampled"])
    photo.save(paths["spliced"])
    Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(paths["flat"])
    paths["not-a-photo"].write_bytes(b"plain text, not pixels")
    return paths


#: The decision threshold of the casework browser tests: between the resampled photo's score
#: and the bundled example's with the default model (whose own threshold is higher), so
#: that both decisions are on the page.
CASEWORK_THRESHOLD = 0.97


@pytest.fixture(scope="session")
def casework_model(tmp_path_factory):
    """The default model with its decision threshold at ``CASEWORK_THRESHOLD``, saved."""
    from noisead.infer import load_detector
    from noisead.verdict import OperatingPoint

    detector = load_detector()
    point = OperatingPoint(CASEWORK_THRESHOLD, 1, 100, "a threshold set for the tests")
    detector.info["decision"] = {detector.config.mode: point.to_dict()}
    return detector.save(tmp_path_factory.mktemp("casework-model") / "casework.safetensors")


@pytest.fixture(scope="session")
def casework_photos():
    """``casework_photos(folder)``: see :func:`write_casework_photos`."""
    return write_casework_photos
