"""Box means, Gaussian blurs and small correlations of float32 maps, reflecting borders.

Every analysis filters several whole-image maps: local means of the noise residuals in
sliding windows (:mod:`noisead.anomaly.noise_statistics`), the Gaussian smoothing of the
distance map and of the JPEG lattice evidence. OpenCV's separable filters do these several
times faster than SciPy's ``ndimage`` on the same float32 data (the box filter as running
sums in double precision, the Gaussian as two 1-D passes in float32). The functions here
give SciPy's results (the same windows, kernels and borders: ``mode="reflect"`` is
OpenCV's ``BORDER_REFLECT``) to float32 rounding, and fall back to SciPy itself where
OpenCV would treat the data otherwise (maps smaller than the filter, other types); the
tests compare them with SciPy.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from scipy import ndimage

__all__ = ["box_mean", "box_mean_of_squares", "correlate", "gaussian_blur"]

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


def box_mean_of_squares(x: np.ndarray, window: int) -> np.ndarray:
    """:func:`box_mean` of ``x * x``, without a squared copy of ``x`` (OpenCV squares as
    it sums, in double precision); in ``x``'s float type."""
    x = np.asarray(x)
    if not _cv2_takes(x, window):
        return ndimage.uniform_filter(x * x, size=window, mode="reflect")
    depth = cv2.CV_32F if x.dtype == np.float32 else cv2.CV_64F
    return cv2.sqrBoxFilter(np.ascontiguousarray(x), depth, (window, window), normalize=True,
                            borderType=_REFLECT)


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


def gaussian_blur(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """SciPy's ``ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=truncate)`` of
    a 2-D map: its kernel (``2 r + 1`` taps, ``r = int(truncate * sigma + 0.5)``), applied
    as two 1-D passes. float32 in, float32 out."""
    x = np.asarray(x)
    radius = int(truncate * float(sigma) + 0.5)
    if x.dtype != np.float32 or not _cv2_takes(x, 2 * radius + 1):
        return ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=truncate)
    return cv2.sepFilter2D(np.ascontiguousarray(x), -1, _gaussian_kernel(float(sigma), radius),
                           _gaussian_kernel(float(sigma), radius), borderType=_REFLECT)


@functools.lru_cache(maxsize=16)
def _gaussian_kernel(sigma: float, radius: int) -> np.ndarray:
    """SciPy's normalised Gaussian kernel of ``2 radius + 1`` taps, as float32."""
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 / (sigma * sigma) * taps ** 2)
    return (kernel / kernel.sum()).astype(np.float32)
