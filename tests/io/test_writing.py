"""Atomic writers: the old file or the complete new one, never a half-written result;
PNG and JSON encodings."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisead.io import (
    PNG_FAST,
    PNG_SMALL,
    OutputError,
    atomic_write_bytes,
    encode_png,
    ensure_writable_dir,
    jsonable,
    load_image,
    save_json,
    save_png,
    to_uint8,
)


def test_atomic_write_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "dir" / "out.bin"
    atomic_write_bytes(target, b"one")
    assert target.read_bytes() == b"one"
    atomic_write_bytes(str(target), b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_atomic_write_honours_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "perm.bin", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "perm.bin").stat().st_mode & 0o777 == 0o644


def test_atomic_write_failure_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "result.json"
    target.write_bytes(b"good old result")

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OutputError, match="result.json"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"good old result"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # temp file removed


def test_atomic_write_failure_in_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "mask.png"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(OSError):
        save_png(target, np.zeros((2, 2), bool))
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["mask.png"]


def test_atomic_write_under_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="file.txt"):
        atomic_write_bytes(blocker / "out.bin", b"data")
    assert blocker.read_text() == "x"


def test_ensure_writable_dir(tmp_path: Path) -> None:
    d = ensure_writable_dir(tmp_path / "a" / "b")
    assert d.is_dir() and list(d.iterdir()) == []  # probe removed
    assert ensure_writable_dir(str(d)) == d
    blocker = tmp_path / "plain_file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="plain_file") as info:
        ensure_writable_dir(blocker / "sub")  # root cannot create a dir under a file either
    assert isinstance(info.value, OSError)
    with pytest.raises(OutputError, match="plain_file"):
        ensure_writable_dir(blocker)


def test_save_png_bool_mask(tmp_path: Path) -> None:
    mask = np.zeros((3, 4), bool)
    mask[1, 2] = True
    path = tmp_path / "mask.png"
    save_png(path, mask)
    with Image.open(path) as im:
        assert im.mode == "L"
        arr = np.asarray(im)
    assert set(np.unique(arr).tolist()) == {0, 255}
    assert ((arr > 127) == mask).all()


def test_save_png_float_and_uint8(tmp_path: Path, rgb8: np.ndarray) -> None:
    save_png(tmp_path / "rgb.png", rgb8.astype(np.float32) / 255)
    assert to_uint8(load_image(tmp_path / "rgb.png").pixels).tolist() == rgb8.tolist()
    heat = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    save_png(tmp_path / "heat.png", heat)
    with Image.open(tmp_path / "heat.png") as im:
        assert im.mode == "L"
        assert np.asarray(im).tolist() == to_uint8(heat).tolist()
    rgba = np.dstack([rgb8, np.full(rgb8.shape[:2], 7, np.uint8)])
    save_png(tmp_path / "rgba.png", rgba)
    with Image.open(tmp_path / "rgba.png") as im:
        assert im.mode == "RGBA" and np.asarray(im).tolist() == rgba.tolist()
    save_png(tmp_path / "g1.png", rgb8[..., :1])
    with Image.open(tmp_path / "g1.png") as im:
        assert im.mode == "L"


def test_save_png_uint16_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    rgb = rng.integers(0, 65536, size=(4, 5, 3), dtype=np.uint16)
    save_png(tmp_path / "c16.png", rgb)
    np.testing.assert_allclose(load_image(tmp_path / "c16.png").pixels, rgb / 65535.0, atol=1e-7)
    gray = rng.integers(0, 65536, size=(4, 5), dtype=np.uint16)
    save_png(tmp_path / "g16.png", gray)
    np.testing.assert_allclose(
        load_image(tmp_path / "g16.png").pixels[..., 0], gray / 65535.0, atol=1e-7
    )


def test_save_png_rejects_bad_input(tmp_path: Path) -> None:
    for bad in (
        np.zeros((2, 2), np.int64),
        np.zeros((2, 2, 2), np.uint8),
        np.zeros((0, 3)),
        np.zeros((2, 2, 3), bool),
    ):
        with pytest.raises(ValueError):
            save_png(tmp_path / "bad.png", bad)
    assert list(tmp_path.iterdir()) == []


@dataclass
class _Cfg:
    name: str = "x"
    out: Path = Path("/tmp/out")


def test_save_json(tmp_path: Path) -> None:
    obj = {
        "z_first": 1,
        "a_second": np.float32(0.5),
        "int": np.int64(7),
        "bool": np.bool_(True),
        "arr": np.arange(4).reshape(2, 2),
        "path": Path("/data/img.jpg"),
        "nan": float("nan"),
        "inf": np.float64("inf"),
        "tuple": (1, 2),
        "cfg": _Cfg(),
        "unicode": "caf\u00e9",
        np.int64(3): "numpy key",
    }
    path = tmp_path / "r.json"
    save_json(path, obj)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert '\n  "z_first": 1,' in text  # indent=2
    loaded = json.loads(text)
    assert list(loaded) == [
        "z_first",
        "a_second",
        "int",
        "bool",
        "arr",
        "path",
        "nan",
        "inf",
        "tuple",
        "cfg",
        "unicode",
        "3",
    ]
    assert loaded["a_second"] == 0.5 and loaded["int"] == 7 and loaded["bool"] is True
    assert loaded["arr"] == [[0, 1], [2, 3]]
    assert loaded["path"] == "/data/img.jpg"
    assert loaded["nan"] is None and loaded["inf"] is None
    assert loaded["cfg"] == {"name": "x", "out": "/tmp/out"}
    assert loaded["unicode"] == "caf\u00e9"


def test_save_json_unserialisable_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("{}")
    with pytest.raises(TypeError):
        save_json(path, {"bad": object()})
    assert path.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_png_levels_change_the_size_never_the_pixels(rng: np.random.Generator) -> None:
    smooth = np.repeat(np.linspace(0, 1, 64, dtype=np.float32)[None, :], 48, axis=0)
    image = np.clip(smooth[..., None] + rng.normal(0, 0.01, (48, 64, 3)), 0, 1)
    fast = encode_png(image, compress_level=PNG_FAST)
    small = encode_png(image, compress_level=PNG_SMALL)
    assert fast != small and len(small) < len(fast)
    for data in (fast, small):
        assert to_uint8(load_image(data).pixels).tolist() == to_uint8(image).tolist()
    # both decode with Pillow too (another PNG reader than the one that wrote them)
    for data in (fast, small):
        assert np.asarray(Image.open(io.BytesIO(data))).tolist() == to_uint8(image).tolist()
    rgb16 = rng.integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    for level in (PNG_FAST, PNG_SMALL):
        pixels = load_image(encode_png(rgb16, compress_level=level)).pixels
        np.testing.assert_allclose(pixels, rgb16 / 65535.0, atol=1e-7)


def test_jsonable_is_the_one_rule_for_json() -> None:
    value = {"a": [1.0, float("nan"), np.float32(np.inf)], "b": {np.int64(2): (np.bool_(False),)},
             "c": {3, 1, 2}, "d": Path("x/y")}
    assert jsonable(value) == {"a": [1.0, None, None], "b": {2: [False]}, "c": [1, 2, 3],
                               "d": "x/y"}
    json.dumps(jsonable(value), allow_nan=False)  # strict JSON
    with pytest.raises(TypeError, match="object"):
        jsonable({"x": object()})
    with pytest.raises(TypeError, match="key"):
        jsonable({(1, 2): 0})
