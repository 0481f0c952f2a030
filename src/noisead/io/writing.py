"""Atomic writers: every result noisead writes goes through :func:`atomic_write_bytes`.

An interrupted run never leaves a half-written mask or report beside the evidence, and
never clobbers a previous good result: the bytes go to a temporary file beside the target
and are renamed over it. :func:`encode_png` is the one PNG encoder (results, data sets and
the viewer) and :func:`jsonable` the one rule for what JSON can hold (NaN and infinities
become ``null``, so every file is strict JSON that browsers and ``jq`` accept).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from noisead.io.arrays import to_uint8
from noisead.io.errors import OutputError

__all__ = [
    "PNG_FAST",
    "PNG_SMALL",
    "atomic_write_bytes",
    "encode_png",
    "ensure_writable_dir",
    "jsonable",
    "save_json",
    "save_png",
]

PNG_FAST: int = 1
"""zlib level for results: written once per image, where write time matters more than
a few percent of size (figures: docs/BENCHMARKS.md, "Result files")."""

PNG_SMALL: int = 6
"""zlib's default level, for data sets: built once and read many times."""


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) if needed and prove we can write there.

    Checked with a real probe file (then removed) rather than ``os.access``, which lies
    for root, ACLs, read-only mounts and full disks. Failing here, before a long analysis,
    beats failing when the results are ready. Raises :class:`OutputError`.
    """
    p = Path(path).expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputError(f"cannot use {str(p)!r} as output directory: it is a file") from exc
    except OSError as exc:
        raise OutputError(
            f"cannot create output directory {str(p)!r}: {exc.strerror or exc}"
        ) from exc
    if not p.is_dir():
        raise OutputError(f"cannot use {str(p)!r} as output directory: not a directory")
    probe = p / f".noisead-write-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(
            f"output directory {str(p)!r} is not writable: {exc.strerror or exc}"
        ) from exc
    finally:
        with suppress(OSError):
            probe.unlink()
    return p


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the complete new one.

    The bytes go to a temporary file in the same directory (same filesystem, so the rename
    is atomic), are fsynced, then ``os.replace`` d over the target. On any failure the
    temporary file is removed and an existing target is left untouched. The new file gets
    the usual permissions (``0o666`` minus umask), unlike ``mkstemp``'s ``0o600``.
    Missing parent directories are created. Raises :class:`OutputError`.
    """
    target = Path(path).expanduser()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot write {str(target)!r}: cannot create directory {str(parent)!r} "
            f"({exc.strerror or exc})"
        ) from exc
    tmp: Path | None = None
    try:
        fd = -1
        for _ in range(100):
            candidate = parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
            try:
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            tmp = candidate
            break
        if tmp is None:
            raise FileExistsError("could not create a unique temporary file")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise OutputError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            with suppress(OSError):
                tmp.unlink()
    _fsync_dir(parent)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (best effort: not every platform can fsync a directory)."""
    with suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def encode_png(array: np.ndarray, *, compress_level: int = PNG_FAST) -> bytes:
    """A mask, heatmap or image as PNG bytes (in memory; nothing is written).

    * ``bool`` mask ``H x W`` -> 8-bit gray with 0/255 (viewable, and ``> 127`` recovers it);
    * float in [0, 1], gray or RGB(A) -> 8-bit via :func:`~noisead.io.to_uint8` (rounded,
      clipped);
    * ``uint8`` gray / RGB / RGBA as is; ``uint16`` gray / RGB / RGBA as 16-bit PNG.

    ``compress_level`` is zlib's (0-9): :data:`PNG_FAST` for results, :data:`PNG_SMALL`
    for data sets. PNG is lossless at every level: only the size and the time differ.
    Encoded by libpng through OpenCV, which releases the GIL (result files are encoded in
    threads: :func:`noisead.batch.outputs.write_outputs`).
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ValueError(
            f"a PNG takes HxW, HxWx1, HxWx3 or HxWx4, got shape {np.shape(array)}"
        )
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"cannot save an empty image (shape {np.shape(array)})")
    if a.dtype == np.bool_:
        if a.ndim != 2:
            raise ValueError(f"a bool mask must be HxW, got shape {np.shape(array)}")
        a = a.astype(np.uint8) * np.uint8(255)
    elif np.issubdtype(a.dtype, np.floating):
        a = to_uint8(a)
    if a.dtype in (np.uint8, np.uint16):
        return _libpng(a, int(compress_level))
    raise ValueError(
        f"a PNG cannot hold dtype {a.dtype}; use bool, uint8, uint16 or float in [0, 1]"
    )


def _libpng(a: np.ndarray, level: int) -> bytes:
    """PNG bytes of a uint8 / uint16 gray, RGB or RGBA array, by libpng (OpenCV).

    At :data:`PNG_FAST` and below no row filter is tried: on noise-like result images the
    filters cost more time than they save bytes (docs/BENCHMARKS.md, "Speed and memory",
    the PNG encoders). Above it, libpng chooses filters adaptively (smaller files).
    """
    import cv2

    if a.ndim == 3:  # OpenCV takes BGR(A)
        a = a[:, :, [2, 1, 0, 3][: a.shape[2]]]
    params = [cv2.IMWRITE_PNG_COMPRESSION, level]
    if level <= PNG_FAST:
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    ok, enc = cv2.imencode(".png", np.ascontiguousarray(a), params)
    if not ok:
        raise ValueError(f"libpng failed to encode a {a.dtype} array of shape {a.shape}")
    return enc.tobytes()


def save_png(path: str | Path, array: np.ndarray, *, compress_level: int = PNG_FAST) -> None:
    """Atomically write a mask, heatmap or image as PNG (what it takes: :func:`encode_png`)."""
    atomic_write_bytes(path, encode_png(array, compress_level=compress_level))


def save_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as UTF-8 JSON (indent 2, keys in insertion order).

    What it converts, and how: :func:`jsonable`. Other types raise ``TypeError``.
    """
    text = json.dumps(jsonable(obj), indent=2, sort_keys=False, ensure_ascii=False,
                      allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def jsonable(obj: Any) -> Any:
    """``obj`` as what ``json.dumps(..., allow_nan=False)`` accepts, converted all the way down.

    Converts what our results contain: numpy scalars and arrays, ``Path``, tuples, sets
    (sorted where they can be) and dataclasses (configs). Non-finite floats (NaN, inf)
    become ``None``: strict JSON has no NaN, and a reader takes ``null`` as "no value".
    Other types raise ``TypeError``.
    """
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        return {_json_key(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        items = [jsonable(v) for v in obj]
        with suppress(TypeError):
            items.sort()
        return items
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    raise TypeError(f"cannot write {type(obj).__name__} as JSON: {obj!r:.80}")


def _json_key(key: Any) -> str | int | float | bool | None:
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, os.PathLike):
        return os.fspath(key)
    if key is None or isinstance(key, (str, int, float, bool)):
        return key
    raise TypeError(f"cannot use {type(key).__name__} as a JSON key: {key!r:.80}")
