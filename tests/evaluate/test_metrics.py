"""Metrics checked against scikit-learn, hand-computed cases and the properties they promise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage
from sklearn.metrics import f1_score, jaccard_score, matthews_corrcoef, roc_auc_score

from noisead.evaluate.masks import boundary_ignore_mask, disk
from noisead.evaluate.metrics import (
    aggregate,
    best_threshold_scores,
    detection_auc,
    fixed_threshold_scores,
    localization_metrics,
    pixel_auc,
    sign_agnostic,
)


def _random_case(rng: np.random.Generator, shape=(12, 15), levels: int | None = None):
    """A heatmap loosely correlated with a random two-class mask; ``levels`` forces ties."""
    mask = rng.random(shape) < rng.uniform(0.1, 0.6)
    mask.flat[0], mask.flat[1] = True, False  # both classes, always
    heat = rng.normal(size=shape) + rng.uniform(-1, 2) * mask
    if levels is not None:
        heat = np.round(heat * levels / 4) / levels
    return heat.astype(np.float32), mask


def _brute_force_best(heat: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Best MCC and F1 with scikit-learn over every threshold that changes the prediction."""
    y = mask.ravel()
    candidates = np.r_[np.unique(heat), np.inf]
    mccs, f1s = [], []
    for t in candidates:
        pred = heat.ravel() >= t
        mccs.append(matthews_corrcoef(y, pred))
        f1s.append(f1_score(y, pred, zero_division=0))
    return max(mccs), max(f1s)


# --------------------------------------------------------------------------- vs scikit-learn


@pytest.mark.parametrize("levels", [None, 3])
def test_pixel_auc_matches_sklearn(rng, levels):
    for _ in range(20):
        heat, mask = _random_case(rng, levels=levels)
        assert pixel_auc(heat, mask) == pytest.approx(roc_auc_score(mask.ravel(), heat.ravel()))


@pytest.mark.parametrize("levels", [None, 2, 5])
def test_best_threshold_matches_sklearn_sweep(rng, levels):
    # Small maps: the scikit-learn reference costs two calls per distinct value.
    for _ in range(10):
        heat, mask = _random_case(rng, shape=(5, 7), levels=levels)
        got = best_threshold_scores(heat, mask)
        best_mcc, best_f1 = _brute_force_best(heat, mask)
        assert got["mcc"] == pytest.approx(best_mcc, abs=1e-12)
        assert got["f1"] == pytest.approx(best_f1, abs=1e-12)
        # The reported thresholds reproduce the reported scores.
        pred = heat >= got["threshold"]
        assert matthews_corrcoef(mask.ravel(), pred.ravel()) == pytest.approx(got["mcc"])
        pred_f1 = heat >= got["threshold_f1"]
        assert f1_score(mask.ravel(), pred_f1.ravel(), zero_division=0) == pytest.approx(got["f1"])


@pytest.mark.parametrize("threshold", [-0.5, 0.0, 0.5, 1.5, 10.0])
def test_fixed_threshold_matches_sklearn(rng, threshold):
    for _ in range(10):
        heat, mask = _random_case(rng, levels=4)
        got = fixed_threshold_scores(heat, mask, threshold)
        y, pred = mask.ravel(), heat.ravel() >= threshold
        assert got["mcc"] == pytest.approx(matthews_corrcoef(y, pred), abs=1e-12)
        assert got["f1"] == pytest.approx(f1_score(y, pred, zero_division=0), abs=1e-12)
        assert got["iou"] == pytest.approx(jaccard_score(y, pred, zero_division=0), abs=1e-12)


def test_fixed_threshold_scores_the_mask_numpy_makes_on_a_float32_map():
    # float32(0.1) < 0.1 in float64, but a float32 map compares with 0.1 in float32.
    heat = np.array([[np.float32(0.1), 0.0], [0.9, 0.0]], dtype=np.float32)
    mask = np.array([[True, False], [True, False]])
    assert (heat >= 0.1).sum() == 2
    got = fixed_threshold_scores(heat, mask, 0.1)
    assert got["iou"] == 1.0 and got["mcc"] == pytest.approx(1.0)
    assert localization_metrics(heat, mask, threshold=0.1)["iou_fixed"] == 1.0


def test_ignore_drops_pixels_like_indexing(rng):
    heat, mask = _random_case(rng, shape=(20, 20))
    ignore = rng.random(heat.shape) < 0.3
    keep = ~ignore
    ref = roc_auc_score(mask[keep], heat[keep])
    assert pixel_auc(heat, mask, ignore=ignore) == pytest.approx(ref)
    got = fixed_threshold_scores(heat, mask, 0.3, ignore=ignore)
    assert got["mcc"] == pytest.approx(matthews_corrcoef(mask[keep], heat[keep] >= 0.3))


def test_localization_metrics_agree_with_the_single_functions(rng):
    for levels in (None, 3):
        heat, mask = _random_case(rng, levels=levels)
        got = localization_metrics(heat, mask, threshold=0.4)
        best = best_threshold_scores(heat, mask)
        fixed = fixed_threshold_scores(heat, mask, 0.4)
        assert got["auc"] == pytest.approx(pixel_auc(heat, mask))
        assert got["mcc_best"] == pytest.approx(best["mcc"])
        assert got["f1_best"] == pytest.approx(best["f1"])
        assert got["threshold_best"] == best["threshold"]
        assert got["mcc_fixed"] == pytest.approx(fixed["mcc"])
        assert got["f1_fixed"] == pytest.approx(fixed["f1"])
        assert got["iou_fixed"] == pytest.approx(fixed["iou"])


def test_sign_agnostic_keys_match_the_generic_wrapper(rng):
    auc_sa = sign_agnostic(pixel_auc)
    mcc_sa = sign_agnostic(lambda h, m: best_threshold_scores(h, m)["mcc"])
    f1_sa = sign_agnostic(lambda h, m: best_threshold_scores(h, m)["f1"])
    for levels in (None, 3):
        for _ in range(8):
            heat, mask = _random_case(rng, levels=levels)
            heat = -heat if rng.random() < 0.5 else heat  # both orientations
            got = localization_metrics(heat, mask)
            assert got["auc_sign_agnostic"] == pytest.approx(auc_sa(heat, mask))
            assert got["mcc_best_sign_agnostic"] == pytest.approx(mcc_sa(heat, mask))
            assert got["f1_best_sign_agnostic"] == pytest.approx(f1_sa(heat, mask))
            # Reported beside the plain values, never instead of them.
            assert got["auc_sign_agnostic"] >= got["auc"]
            assert got["mcc_best_sign_agnostic"] >= got["mcc_best"]
            assert got["f1_best_sign_agnostic"] >= got["f1_best"]


def test_detection_auc_matches_sklearn(rng):
    forged = rng.normal(1.0, 1.0, size=30)
    pristine = np.round(rng.normal(0.0, 1.0, size=20), 1)
    ref = roc_auc_score(np.r_[np.ones(30), np.zeros(20)], np.r_[forged, pristine])
    assert detection_auc(forged, pristine) == pytest.approx(ref)
    assert detection_auc([1.0, 2.0], [0.0]) == 1.0
    assert detection_auc([0.0], [1.0, 2.0]) == 0.0
    assert math.isnan(detection_auc([], [0.1]))
    assert math.isnan(detection_auc([0.1], []))
    with pytest.raises(ValueError):
        detection_auc([float("nan")], [0.0])


# --------------------------------------------------------------------------- hand-computed


def test_two_by_two_by_hand():
    heat = np.array([[0.8, 0.7], [0.3, 0.1]], dtype=np.float32)
    mask = np.array([[True, False], [True, False]])
    # Positives score 0.8 and 0.3, negatives 0.7 and 0.1: 3 of 4 pairs ordered right.
    assert pixel_auc(heat, mask) == pytest.approx(0.75)
    # heat >= 0.5 predicts the top row: TP=1 FP=1 FN=1 TN=1.
    fixed = fixed_threshold_scores(heat, mask, 0.5)
    assert fixed == pytest.approx({"mcc": 0.0, "f1": 0.5, "iou": 1 / 3})
    # t=0.8: TP1 FP0 FN1 TN2 -> MCC 2/sqrt(12), F1 2/3; t=0.3: TP2 FP1 FN0 TN1 -> MCC
    # 2/sqrt(12), F1 4/5. The first (highest) threshold wins the MCC tie.
    best = best_threshold_scores(heat, mask)
    assert best["mcc"] == pytest.approx(2 / math.sqrt(12))
    assert best["threshold"] == pytest.approx(0.8)
    assert best["f1"] == pytest.approx(0.8)
    assert best["threshold_f1"] == pytest.approx(0.3)
    loc = localization_metrics(heat, mask)
    assert loc["auc_sign_agnostic"] == pytest.approx(0.75)
    assert loc["mcc_best_sign_agnostic"] == pytest.approx(2 / math.sqrt(12))
    assert loc["f1_best_sign_agnostic"] == pytest.approx(0.8)


def test_perfect_and_inverted_maps():
    mask = np.zeros((8, 8), bool)
    mask[2:5, 3:7] = True
    perfect = mask.astype(np.float32)
    inverted = 1.0 - perfect
    good = localization_metrics(perfect, mask)
    bad = localization_metrics(inverted, mask)
    assert good["auc"] == 1.0 and bad["auc"] == 0.0
    assert good["mcc_best"] == pytest.approx(1.0) and good["f1_best"] == pytest.approx(1.0)
    assert good["mcc_fixed"] == pytest.approx(1.0) and good["iou_fixed"] == pytest.approx(1.0)
    assert bad["mcc_fixed"] == pytest.approx(-1.0) and bad["iou_fixed"] == 0.0
    # Inverted: no threshold beats predicting nothing (MCC 0), and the reported threshold
    # really predicts nothing on the float32 map.
    assert bad["mcc_best"] == pytest.approx(0.0)
    assert not (inverted >= bad["threshold_best"]).any()
    for row in (good, bad):
        assert row["auc_sign_agnostic"] == 1.0
        assert row["mcc_best_sign_agnostic"] == pytest.approx(1.0)
        assert row["f1_best_sign_agnostic"] == pytest.approx(1.0)


def test_constant_map_is_all_ties():
    mask = np.zeros((4, 5), bool)
    mask[:, :2] = True  # 8 positives, 12 negatives
    heat = np.full(mask.shape, 0.7, dtype=np.float32)
    got = localization_metrics(heat, mask)
    assert got["auc"] == 0.5 and got["auc_sign_agnostic"] == 0.5
    assert got["mcc_best"] == 0.0 and got["mcc_best_sign_agnostic"] == 0.0
    assert got["f1_best"] == pytest.approx(16 / (16 + 12))  # predict everything
    assert got["mcc_fixed"] == 0.0 and got["f1_fixed"] == pytest.approx(16 / 28)


def test_ties_straddling_the_classes():
    # Two positives and one negative share 0.5: no threshold can split them.
    heat = np.array([[0.9, 0.5, 0.5], [0.5, 0.1, 0.1]])
    mask = np.array([[True, True, False], [True, False, False]])
    best = best_threshold_scores(heat, mask)
    brute_mcc, brute_f1 = _brute_force_best(heat, mask)
    assert best["mcc"] == pytest.approx(brute_mcc) and best["f1"] == pytest.approx(brute_f1)
    # A tie counts as half a correct pair: 0.9 beats all 3 negatives, each positive 0.5
    # beats both 0.1s and ties the negative 0.5 -> (3 + 2.5 + 2.5) / 9.
    assert pixel_auc(heat, mask) == pytest.approx(roc_auc_score(mask.ravel(), heat.ravel()))
    assert pixel_auc(heat, mask) == pytest.approx((3 + 2.5 + 2.5) / 9)


# --------------------------------------------------------------------------- single class, NaN


def test_all_pristine_mask_gives_nan_and_aggregate_skips_it(rng):
    heat = rng.random((6, 6)).astype(np.float32)
    empty = np.zeros((6, 6), bool)
    assert math.isnan(pixel_auc(heat, empty))
    assert all(math.isnan(v) for v in best_threshold_scores(heat, empty).values())
    assert all(math.isnan(v) for v in fixed_threshold_scores(heat, empty).values())
    row_nan = localization_metrics(heat, empty)
    assert all(math.isnan(v) for v in row_nan.values())
    full = np.ones((6, 6), bool)
    assert all(math.isnan(v) for v in localization_metrics(heat, full).values())

    mask = np.zeros((6, 6), bool)
    mask[:3] = True
    row_ok = localization_metrics(mask.astype(np.float32), mask)
    summary = aggregate([row_ok, row_nan, {**row_ok, "name": "x", "forged": True}])
    assert summary["auc"] == 1.0 and summary["auc_n"] == 2
    assert set(summary) == {k for key in row_ok for k in (key, f"{key}_n")}


def test_aggregate_means_counts_and_all_nan():
    rows = [{"a": 1.0, "b": float("nan")}, {"a": 3, "b": float("nan")}, {"a": np.float32(5)}]
    got = aggregate(rows)
    assert got["a"] == pytest.approx(3.0) and got["a_n"] == 3
    assert math.isnan(got["b"]) and got["b_n"] == 0
    assert aggregate([]) == {}


# --------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(
    heat=arrays(np.float64, (5, 6), elements=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, 2.0])),
    labels=arrays(bool, (5, 6)),
    threshold=st.floats(-1.0, 3.0),
)
def test_best_mcc_is_at_least_any_fixed_threshold(heat, labels, threshold):
    labels[0, 0], labels[0, 1] = True, False
    best = best_threshold_scores(heat, labels)
    fixed = fixed_threshold_scores(heat, labels, threshold)
    assert best["mcc"] >= fixed["mcc"] - 1e-12
    assert best["f1"] >= fixed["f1"] - 1e-12
    sa = localization_metrics(heat, labels)
    assert sa["mcc_best_sign_agnostic"] >= best["mcc"] - 1e-12
    assert 0.0 <= sa["auc_sign_agnostic"] <= 1.0 and sa["auc_sign_agnostic"] >= 0.5


# --------------------------------------------------------------------------- boundary band


def test_boundary_band_on_a_square_counts_exactly():
    mask = np.zeros((64, 64), bool)
    mask[12:52, 12:52] = True  # a 40 x 40 square, 12 px from every image edge
    ignore = boundary_ignore_mask(mask, erode_px=15, dilate_px=11)
    # Tampered pixels kept: those at least 15 px inside every side -> rows/cols 27..36.
    kept_tampered = mask & ~ignore
    assert kept_tampered.sum() == 10 * 10
    assert kept_tampered[27:37, 27:37].all()
    # Pristine pixels ignored: four 40 x 11 strips plus four quarter-disk corners, each
    # with the 83 lattice points (x, y >= 1) of x^2 + y^2 <= 121.
    quarter = sum(1 for x in range(1, 12) for y in range(1, 12) if x * x + y * y <= 121)
    assert quarter == 83
    assert (ignore & ~mask).sum() == 4 * 40 * 11 + 4 * 83
    assert ignore.sum() == (1600 - 100) + 2092


def test_boundary_band_equals_scipy_morphology_with_a_disk(rng):
    for _ in range(5):
        blobs = ndimage.gaussian_filter(rng.random((70, 90)), 4) > 0.5
        for erode_px, dilate_px in ((15, 11), (3, 0), (0, 5)):
            eroded = ndimage.binary_erosion(blobs, disk(erode_px), border_value=1)
            dilated = ndimage.binary_dilation(blobs, disk(dilate_px))
            expected = (blobs & ~eroded) | (~blobs & dilated)
            assert np.array_equal(boundary_ignore_mask(blobs, erode_px, dilate_px), expected)


def test_boundary_band_keeps_the_image_border_and_degenerate_masks():
    mask = np.zeros((40, 40), bool)
    mask[:, :20] = True  # touches three image edges
    ignore = boundary_ignore_mask(mask, erode_px=5, dilate_px=3)
    assert not ignore[:, :15].any()  # only the 5 columns next to the real boundary go
    assert ignore[:, 15:23].all() and not ignore[:, 23:].any()
    assert not boundary_ignore_mask(np.zeros((5, 5), bool)).any()
    assert not boundary_ignore_mask(np.ones((5, 5), bool)).any()
    assert np.array_equal(disk(1), np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool))


def test_localization_band_flag_uses_the_band(rng):
    mask = np.zeros((64, 64), bool)
    mask[12:52, 12:52] = True
    heat = mask.astype(np.float32) + rng.normal(0, 0.6, mask.shape).astype(np.float32)
    ignore = boundary_ignore_mask(mask)
    banded = localization_metrics(heat, mask, band=True)
    assert banded == localization_metrics(heat, mask, ignore=ignore)
    assert banded["auc"] == pytest.approx(roc_auc_score(mask[~ignore], heat[~ignore]))
    assert banded != localization_metrics(heat, mask)
    # A forgery smaller than the erosion leaves no tampered pixel: undefined, not zero.
    small = np.zeros((64, 64), bool)
    small[30:40, 30:40] = True
    assert math.isnan(localization_metrics(heat, small, band=True)["auc"])


# --------------------------------------------------------------------------- validation


def test_bad_inputs_raise():
    heat = np.zeros((3, 3))
    mask = np.eye(3, dtype=bool)
    with pytest.raises(ValueError, match="shape"):
        pixel_auc(heat, np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="NaN"):
        pixel_auc(np.full((3, 3), np.nan), mask)
    with pytest.raises(ValueError, match="2-D"):
        pixel_auc(np.zeros(9), mask.ravel())
    with pytest.raises(ValueError, match="bool"):
        pixel_auc(heat, mask * 255)
    # 0/1 integer masks are fine.
    assert pixel_auc(mask.astype(float), mask.astype(np.uint8)) == 1.0
