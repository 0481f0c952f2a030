"""Localization and detection metrics: pixel AUC, MCC, F1, IoU, the boundary band, image AUC.

Conventions (the same in every function here):

- A heatmap is a real ``H x W`` array, higher = more suspicious; a mask is ``bool`` ``H x W``,
  ``True`` = tampered (ints/floats holding only 0 and 1 are accepted). ``ignore`` is an
  optional ``bool`` ``H x W`` array of pixels left out of every count (e.g. the boundary band
  of :func:`boundary_ignore_mask`).
- A threshold ``t`` predicts *tampered* where ``heatmap >= t`` (as scikit-learn's ROC curve
  does), so a fixed threshold and the best-threshold sweep agree on what a threshold means,
  and the best MCC is never below the MCC at any fixed threshold.
- Localization metrics need both classes among the counted pixels. For an all-pristine (or
  all-tampered) mask every localization metric is ``NaN``; :func:`aggregate` skips ``NaN``
  and reports how many values it averaged, so pristine images never drag a mean down and
  never vanish silently. Scores are computed per image, then averaged over forged images.
- MCC and F1 follow scikit-learn where a ratio is 0/0 (a prediction with no positives):
  the value is 0.
- Sign-agnostic scores, ``max(metric(map), metric(-map))``, are always returned under their
  own ``*_sign_agnostic`` keys and never replace the plain value: they forgive a detector
  that ranks the host region as the odd one out (a real ambiguity in splicing benchmarks
  such as Columbia, and for blind methods that cannot tell which cluster is foreign), but a
  method's own orientation is what a user sees.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from noisead.evaluate.masks import as_mask, boundary_ignore_mask, counted_pixels

__all__ = [
    "aggregate",
    "best_threshold_scores",
    "detection_auc",
    "fixed_threshold_scores",
    "localization_metrics",
    "pixel_auc",
    "sign_agnostic",
]

_NAN = float("nan")


def _both_classes(labels: np.ndarray) -> bool:
    n_pos = int(np.count_nonzero(labels))
    return 0 < n_pos < labels.size


# --------------------------------------------------------------------------- counts -> scores


def _just_above(value: float, dtype: np.dtype) -> float:
    """The smallest threshold above ``value`` that still compares right in ``dtype``.

    NumPy compares a float32 map with a Python float in float32, so a float64 ``nextafter``
    would round back down to the maximum and predict it; step in the map's own precision.
    """
    if np.issubdtype(dtype, np.floating):
        t = dtype.type
        return float(np.nextafter(t(value), t(np.inf)))
    return float(value) + 1.0  # integer and bool maps


def _as_threshold(threshold: float, dtype: np.dtype) -> float:
    """``threshold`` as NumPy uses it against a map of ``dtype`` (rounded to float32 for one).

    ``heatmap >= 0.1`` on a float32 map compares in float32; rounding the threshold the same
    way makes these metrics score exactly the mask the tool would produce.
    """
    if np.issubdtype(dtype, np.floating):
        return float(dtype.type(threshold))
    return float(threshold)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 0``, else 0 (scikit-learn's value for a 0/0 score)."""
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _mcc(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
    # In-place steps: these arrays have one entry per distinct heatmap value (millions).
    tp, fp, fn, tn = (np.atleast_1d(np.asarray(x, dtype=np.float64)) for x in (tp, fp, fn, tn))
    den = tp + fp
    den *= tp + fn
    other = tn + fp
    other *= tn + fn
    den *= other
    np.sqrt(den, out=den)
    num = tp * tn
    num -= fp * fn
    return _ratio(num, den)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    tp, fp, fn = (np.atleast_1d(np.asarray(x, dtype=np.float64)) for x in (tp, fp, fn))
    num = 2.0 * tp
    return _ratio(num, num + fp + fn)


def _iou(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    tp, fp, fn = (np.atleast_1d(np.asarray(x, dtype=np.float64)) for x in (tp, fp, fn))
    return _ratio(tp, tp + fp + fn)


def _sweep(
    scores: np.ndarray, labels: np.ndarray, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confusion counts at every distinct threshold, from "predict none" to "predict all".

    ``thresholds[k]`` predicts ``scores >= t`` with ``tp[k]`` true and ``fp[k]`` false
    positives, thresholds decreasing. Point 0 is a threshold just above the maximum (nothing
    predicted), so flat or inverted maps are scored fairly too; tied scores share one point,
    since no threshold can split them. Two plain sorts and a ``searchsorted``: an index sort
    (``argsort``) of a 12-megapixel map is several times slower, from its random access.
    """
    n = scores.size
    s = np.sort(scores)
    starts = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]
    values = s[starts]
    n_ge = n - starts  # pixels scoring >= each distinct value
    n_pos = int(np.count_nonzero(labels))
    if n_pos <= n - n_pos:  # sort the smaller class
        pos = np.sort(scores[labels])
        tp_ge = n_pos - np.searchsorted(pos, values, side="left")
        fp_ge = n_ge - tp_ge
    else:
        neg = np.sort(scores[~labels])
        fp_ge = (n - n_pos) - np.searchsorted(neg, values, side="left")
        tp_ge = n_ge - fp_ge
    thresholds = np.r_[_just_above(float(values[-1]), dtype), values[::-1].astype(np.float64)]
    zero = np.zeros(1, dtype=np.int64)
    tp = np.r_[zero, tp_ge[::-1].astype(np.int64)]
    fp = np.r_[zero, fp_ge[::-1].astype(np.int64)]
    return thresholds, tp, fp


def _auc_from_sweep(tp: np.ndarray, fp: np.ndarray) -> float:
    """Trapezoidal area under the ROC points of :func:`_sweep` (ties count half a pair).

    The same number as scikit-learn's ``roc_auc_score`` (its ROC curve has the same points,
    and dropping collinear ones does not change the area), without a second sort.
    """
    n_pos, n_neg = float(tp[-1]), float(fp[-1])
    tpf, fpf = tp.astype(np.float64), fp.astype(np.float64)
    area = float(np.sum(np.diff(fpf) * (tpf[1:] + tpf[:-1]))) / 2.0
    return area / (n_pos * n_neg)


# --------------------------------------------------------------------------- public metrics


def pixel_auc(heatmap: np.ndarray, mask: np.ndarray, *, ignore: np.ndarray | None = None) -> float:
    """Area under the pixel-level ROC curve; equals scikit-learn's ``roc_auc_score``.

    Threshold-free, so it measures how well the map *ranks* tampered above pristine pixels
    regardless of calibration; tied scores count half a correctly ordered pair. ``NaN`` when
    the counted pixels hold a single class. Computed from the sort-based sweep of the
    best-threshold scores (the tests check it against ``roc_auc_score``), which is several
    times faster on multi-megapixel maps.
    """
    scores, labels, dtype = counted_pixels(heatmap, mask, ignore)
    if not _both_classes(labels):
        return _NAN
    _, tp, fp = _sweep(scores, labels, dtype)
    return _auc_from_sweep(tp, fp)


def best_threshold_scores(
    heatmap: np.ndarray, mask: np.ndarray, *, ignore: np.ndarray | None = None
) -> dict[str, float]:
    """MCC and F1 at their best thresholds, swept over every distinct heatmap value.

    This is the oracle-threshold protocol of the Noiseprint / TruFor literature: it shows what
    the map could reach with a per-image threshold, separately from calibration. Keys:
    ``mcc`` (best MCC), ``threshold`` (the threshold reaching it, predicting ``heatmap >= t``),
    ``f1`` (best F1) and ``threshold_f1`` (its threshold; F1 and MCC may peak at different
    thresholds). All ``NaN`` for a single-class mask. ``O(n log n)``: two sorts.
    """
    scores, labels, dtype = counted_pixels(heatmap, mask, ignore)
    if not _both_classes(labels):
        return {"mcc": _NAN, "threshold": _NAN, "f1": _NAN, "threshold_f1": _NAN}
    thresholds, tp, fp = _sweep(scores, labels, dtype)
    n_pos = int(np.count_nonzero(labels))
    n_neg = labels.size - n_pos
    fn, tn = n_pos - tp, n_neg - fp
    mcc = _mcc(tp, fp, fn, tn)
    f1 = _f1(tp, fp, fn)
    i_mcc, i_f1 = int(np.argmax(mcc)), int(np.argmax(f1))
    return {
        "mcc": float(mcc[i_mcc]),
        "threshold": float(thresholds[i_mcc]),
        "f1": float(f1[i_f1]),
        "threshold_f1": float(thresholds[i_f1]),
    }


def fixed_threshold_scores(
    heatmap: np.ndarray,
    mask: np.ndarray,
    threshold: float = 0.5,
    *,
    ignore: np.ndarray | None = None,
) -> dict[str, float]:
    """MCC, F1 and IoU of the binary mask ``heatmap >= threshold``.

    What a user actually gets from a calibrated map with the tool's default threshold
    (0.5 for maps calibrated to ``[0, 1]``). Keys ``mcc``, ``f1``, ``iou``; ``NaN`` for a
    single-class mask.
    """
    scores, labels, dtype = counted_pixels(heatmap, mask, ignore)
    if not _both_classes(labels):
        return {"mcc": _NAN, "f1": _NAN, "iou": _NAN}
    pred = scores >= _as_threshold(threshold, dtype)
    tp = int(np.count_nonzero(pred & labels))
    fp = int(np.count_nonzero(pred & ~labels))
    fn = int(np.count_nonzero(~pred & labels))
    tn = labels.size - tp - fp - fn
    return {
        "mcc": float(_mcc(tp, fp, fn, tn)[0]),
        "f1": float(_f1(tp, fp, fn)[0]),
        "iou": float(_iou(tp, fp, fn)[0]),
    }


def sign_agnostic(metric_fn: Callable[..., float]) -> Callable[..., float]:
    """Wrap a scalar metric ``f(heatmap, mask, ...)`` into ``max(f(map), f(-map))``.

    Use the result under a name that says so (``auc_sign_agnostic``): it measures whether
    the map *separates* the regions, not whether it points at the right one. ``NaN`` if
    either orientation is ``NaN``.
    """

    @wraps(metric_fn)
    def wrapped(heatmap: np.ndarray, mask: np.ndarray, *args: Any, **kwargs: Any) -> float:
        arr = np.asarray(heatmap)
        # Keep a float map's precision; negate other maps (unsigned ones wrap) in float64.
        flipped = -arr if np.issubdtype(arr.dtype, np.floating) else -arr.astype(np.float64)
        a = float(metric_fn(heatmap, mask, *args, **kwargs))
        b = float(metric_fn(flipped, mask, *args, **kwargs))
        if math.isnan(a) or math.isnan(b):
            return _NAN
        return max(a, b)

    wrapped.__name__ = f"{getattr(metric_fn, '__name__', 'metric')}_sign_agnostic"
    return wrapped


#: The keys of :func:`localization_metrics`, in table order.
METRIC_KEYS: tuple[str, ...] = (
    "auc",
    "mcc_best",
    "f1_best",
    "threshold_best",
    "mcc_fixed",
    "f1_fixed",
    "iou_fixed",
    "auc_sign_agnostic",
    "mcc_best_sign_agnostic",
    "f1_best_sign_agnostic",
)


def localization_metrics(
    heatmap: np.ndarray,
    mask: np.ndarray,
    *,
    threshold: float = 0.5,
    band: bool = False,
    erode_px: int = 15,
    dilate_px: int = 11,
    ignore: np.ndarray | None = None,
) -> dict[str, float]:
    """Every per-image localization score at once, for one heatmap and its mask.

    Keys: ``auc``, ``mcc_best``, ``f1_best``, ``threshold_best`` (the MCC-optimal threshold),
    ``mcc_fixed``, ``f1_fixed``, ``iou_fixed`` (at ``threshold``), and the sign-agnostic
    ``auc_sign_agnostic``, ``mcc_best_sign_agnostic``, ``f1_best_sign_agnostic``. With
    ``band=True`` the boundary band of :func:`boundary_ignore_mask` is left out (merged with
    any ``ignore``); the key names stay the same, so label banded results where they are
    tabulated. All ``NaN`` when the counted pixels hold a single class.
    """
    if band:
        banded = boundary_ignore_mask(mask, erode_px=erode_px, dilate_px=dilate_px)
        ignore = banded if ignore is None else banded | as_mask(ignore, "ignore")
    scores, labels, dtype = counted_pixels(heatmap, mask, ignore)
    keys = METRIC_KEYS
    if not _both_classes(labels):
        return dict.fromkeys(keys, _NAN)

    thresholds, tp, fp = _sweep(scores, labels, dtype)
    auc = _auc_from_sweep(tp, fp)
    n_pos = int(np.count_nonzero(labels))
    n_neg = labels.size - n_pos
    fn, tn = n_pos - tp, n_neg - fp
    mcc = _mcc(tp, fp, fn, tn)
    f1 = _f1(tp, fp, fn)
    # The thresholds of -map predict exactly the complements of the sets above: a
    # complement negates MCC and swaps the roles in F1 (tp' = fn, fp' = tn, fn' = tp).
    f1_flipped = _f1(fn, tn, tp)
    i_mcc = int(np.argmax(mcc))

    pred = scores >= _as_threshold(threshold, dtype)
    tp_f = int(np.count_nonzero(pred & labels))
    fp_f = int(np.count_nonzero(pred & ~labels))
    fn_f = n_pos - tp_f
    tn_f = n_neg - fp_f
    return {
        "auc": auc,
        "mcc_best": float(mcc[i_mcc]),
        "f1_best": float(f1.max()),
        "threshold_best": float(thresholds[i_mcc]),
        "mcc_fixed": float(_mcc(tp_f, fp_f, fn_f, tn_f)[0]),
        "f1_fixed": float(_f1(tp_f, fp_f, fn_f)[0]),
        "iou_fixed": float(_iou(tp_f, fp_f, fn_f)[0]),
        "auc_sign_agnostic": max(auc, 1.0 - auc),
        "mcc_best_sign_agnostic": float(np.abs(mcc).max()),
        "f1_best_sign_agnostic": float(max(f1.max(), f1_flipped.max())),
    }


def detection_auc(scores_forged: Iterable[float], scores_pristine: Iterable[float]) -> float:
    """Image-level ROC AUC: how well image scores rank forged above pristine images.

    ``NaN`` when either list is empty (a dataset without pristine images cannot measure
    detection). Raises ``ValueError`` on non-finite scores.
    """
    pos = np.asarray(list(scores_forged), dtype=np.float64).ravel()
    neg = np.asarray(list(scores_pristine), dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        return _NAN
    scores = np.r_[pos, neg]
    if not np.isfinite(scores).all():
        raise ValueError("image scores hold NaN or infinite values")
    labels = np.r_[np.ones(pos.size, bool), np.zeros(neg.size, bool)]
    return float(roc_auc_score(labels, scores))


def aggregate(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Mean of each numeric key over rows, skipping ``NaN``, with ``<key>_n`` valid counts.

    Per-image metrics are averaged over the images where they are defined; the count beside
    each mean says how many that was, so a mean over 3 of 50 images cannot pass for a mean
    over 50. Non-numeric values (names, paths) and booleans are ignored; a key with no valid
    value gets ``NaN`` and count 0. Keys keep their first-seen order.
    """
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for row in rows:
        for key, value in row.items():
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                continue
            sums.setdefault(key, 0.0)
            counts.setdefault(key, 0)
            v = float(value)
            if not math.isnan(v):
                sums[key] += v
                counts[key] += 1
    out: dict[str, float] = {}
    for key in sums:
        n = counts[key]
        out[key] = sums[key] / n if n else _NAN
        out[f"{key}_n"] = n
    return out
