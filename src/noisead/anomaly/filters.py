"""Separable box means and small correlations on float32 maps, with reflecting borders.

The noise statistics take local means of whole-image residual maps in sliding windows
(:mod:`noisead.anomaly.noise_statistics`). OpenCV's box filter does this as two running
sums (one per axis) in double precision, several times faster than SciPy's
``uniform_filter`` on the same data. The functions here give SciPy's results (the same
windows and borders: ``mode="reflect"`` is OpenCV's ``BORDER_REFLECT``), to float32
rounding; the tests compare them with SciPy on every size and window used.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

__all__ = ["box_mean", "correlate"]

#: OpenCV's name for SciPy's ``mode="reflect"`` (``dcba|abcd|dcba``).
_REFLECT = cv2.BORDER_REFLECT


def _cv2_takes(x: np.ndarray, reach: int) -> bool:
    """Whether OpenCV can filter ``x``: a 2-D float32/float64 map at least as large as
    the filter's reach (smaller maps reflect more than once, which SciPy does its own way)."""
    return (x.ndim == 2 and x.dtype in (np.float32, np.float64)
            and min(x.shape) > reach)


def box_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of ``x`` in a ``window x window`` box around every pixel, reflecting borders.

    SciPy's ``ndimage.uniform_filter(x, window, mode="reflect")``: for an even window the
    box reaches ``window // 2`` pixels up and left and one fewer down and right.
    """
    x = np.asarray(x)
    if not _cv2_takes(x, window):
        return ndimage.uniform_filter(x, size=window, mode="reflect")
    return cv2.blur(np.ascontiguousarray(x), (window, window), borderType=_REFLECT)


def correlate(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``x`` correlated with a small 1-D or 2-D ``kernel`` (a 1-D kernel runs along rows:
    pass it as ``k[None]`` for rows, ``k[:, None]`` for columns), reflecting borders.

    SciPy's ``ndimage.correlate(x, kernel, mode="reflect")``: the kernel's centre is
    element ``size // 2`` on each axis. float32 in, float32 out.
    """
    x = np.asarray(x)
    kernel = np.atleast_2d(np.asarray(kernel, dtype=x.dtype if x.dtype.kind == "f"
                                      else np.float64))
    if not _cv2_takes(x, max(kernel.shape)):
        return ndimage.correlate(x, kernel, mode="reflect")
    anchor = (kernel.shape[1] // 2, kernel.shape[0] // 2)  # OpenCV: (x, y)
    return cv2.filter2D(np.ascontiguousarray(x), -1, kernel, anchor=anchor,
                        borderType=_REFLECT)
