"""The bad-input corpus, end to end: every case ends in a clear error or a correct result.

Each file is handed to the batch analysis (the path analysts use): a bad file must be
reported in failures.csv with a readable reason, the good files must still be analysed,
and nothing already written may be lost. A property test throws random bytes and random
shapes at ``analyze`` directly.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from noisead.anomaly.detector import DetectorConfig
from noisead.anomaly.fit import fit_detector
from noisead.batch import run_batch
from noisead.batch.state import BatchState
from noisead.infer import ImageTooSmallError, analyze
from noisead.io import ImageLoadError
from noisead.models.registry import create_model

PATCH = 32


@pytest.fixture(scope="module")
def detector():
    import torch

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pristine = [rng.random((96, 96, 3), dtype=np.float32) for _ in range(4)]
    return fit_detector(create_model("dncnn-tiny"), pristine,
                        DetectorConfig(patch_size=PATCH, crop_size=64, tile=128,
                                       n_features=12), progress=False)


def analyze_paths(paths, out, detector):
    """The batch run analysts use, with ``detector``."""
    return run_batch(paths, out, functools.partial(analyze, detector=detector), model="test",
                     progress=False)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG that declares an enormous image."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b""))


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _corpus(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, expected outcome: "ok", "unjudged" (smaller than one patch: recorded
    as not enough texture to judge) or a fragment of the error message)."""
    rng = np.random.default_rng(1)
    rgb = Image.fromarray((rng.random((80, 96, 3)) * 255).astype(np.uint8))
    jpeg = _save(rgb, "JPEG", quality=90)
    png = _save(rgb, "PNG")
    exif = Image.Exif()
    exif[0x0112] = 6
    cases = {
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "truncated.png": (png[: len(png) // 2], "cannot decode"),
        "empty.png": (b"", "empty"),
        "random.jpg": (rng.bytes(2000), "cannot decode"),
        "text.png": (b"hello, this is not an image\n" * 20, "cannot decode"),
        "bomb.png": (_png_bomb(100_000, 100_000), "pixels"),
        "one-pixel.png": (_save(Image.new("RGB", (1, 1)), "PNG"), "unjudged"),
        "jpeg-named.png": (jpeg, "ok"),
        "gray16.png": (_save(Image.fromarray((rng.random((80, 96)) * 65535).astype(np.uint16)),
                             "PNG"), "ok"),
        "cmyk.jpg": (_save(rgb.convert("CMYK"), "JPEG"), "ok"),
        "palette.png": (_save(rgb.convert("P"), "PNG"), "ok"),
        "alpha.png": (_save(rgb.convert("RGBA"), "PNG"), "ok"),
        "gray.png": (_save(rgb.convert("L"), "PNG"), "ok"),
        "animated.gif": (_save(rgb.convert("P"), "GIF", save_all=True,
                               append_images=[rgb.convert("P").rotate(90)]), "ok"),
        "rotated.jpg": (_save(rgb, "JPEG", exif=exif), "ok"),
    }
    out = {}
    for name, (data, expect) in cases.items():
        path = tmp / name
        path.write_bytes(data)
        out[name] = (path, expect)
    return out


def test_corpus_in_one_batch_run(detector, tmp_path):
    (tmp_path / "in").mkdir()
    corpus = _corpus(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    sentinel = out / "notes.txt"
    sentinel.write_text("an analyst's notes")
    report = analyze_paths([p for p, _ in corpus.values()], out, detector)
    with BatchState(out) as state:  # the run's records (its report keeps counts only)
        failed = {Path(f.display).name: f.error for f in state.failures()}
        done = {Path(d.display).name: d for d in state.results()}
    assert (report.done, report.failed) == (len(done), len(failed))
    for name, (_, expect) in corpus.items():
        if expect == "ok":
            assert name in done, (name, failed.get(name))
            stem = Path(name).stem
            assert (out / f"{stem}.heatmap.png").is_file()
        elif expect == "unjudged":
            assert done[name].decision == "not enough texture to judge", name
            assert done[name].score is None and "at least" in done[name].verdict
        else:
            assert name in failed, name
            assert expect in failed[name].lower(), (name, failed[name])
    assert sentinel.read_text() == "an analyst's notes"
    # EXIF orientation 6 turns the 96x80 image into 80x96
    rotated = Image.open(out / "rotated.mask.png")
    assert rotated.size == (80, 96)


def test_unwritable_output_is_a_clear_error(detector, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(img)
    with pytest.raises(OSError, match="file"):
        analyze_paths([img], blocker / "sub", detector)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_random_bytes_never_crash(detector, data):
    try:
        result = analyze(_write_tmp(data), detector)
    except (ImageLoadError, ImageTooSmallError):
        return
    assert result.heatmap.ndim == 2


_TMP_FILES: list[Path] = []


def _write_tmp(data: bytes) -> Path:
    import tempfile

    f = tempfile.NamedTemporaryFile(delete=False, suffix=".img")
    f.write(data)
    f.close()
    _TMP_FILES.append(Path(f.name))
    return Path(f.name)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 80), st.integers(1, 80), st.sampled_from([1, 3, 4]),
       st.sampled_from(["uint8", "uint16", "float32"]))
def test_random_shapes_give_a_result_or_a_clear_error(detector, h, w, c, dtype):
    rng = np.random.default_rng(h * 100 + w)
    if dtype == "float32":
        arr = rng.random((h, w, c), dtype=np.float32)
    else:
        arr = rng.integers(0, np.iinfo(dtype).max, (h, w, c), dtype=dtype)
    if c == 1:
        arr = arr[..., 0]
    if h < PATCH or w < PATCH:
        with pytest.raises(ImageTooSmallError, match="at least"):
            analyze(arr, detector)
        return
    result = analyze(arr, detector)
    assert result.heatmap.shape == (h, w) and result.mask.shape == (h, w)
    assert np.isfinite(result.heatmap).all() and 0.0 <= result.score <= 1.0
