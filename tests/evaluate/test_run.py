"""Tests for the evaluation runner (noisead.evaluate.run) and its rendering (report)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisead.anomaly.detector import DetectorConfig
from noisead.anomaly.fit import fit_detector
from noisead.data.augment import postprocess_image
from noisead.data.datasets import open_dataset
from noisead.evaluate import baselines
from noisead.evaluate.config import Condition, EvalConfig, apply_condition, conditions_for
from noisead.evaluate.methods import METHODS, BaselineMethod, normalize_heatmap
from noisead.evaluate.metrics import METRIC_KEYS, localization_metrics
from noisead.evaluate.run import evaluate, format_markdown
from noisead.models.registry import create_model

SIZE = 96
BASELINE_METHODS = ("noi1", "noise_residual_variance")


def _smooth(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    a, b = rng.uniform(0.1, 0.3, 2)
    base = 0.35 + a * xx + b * np.sin(2 * np.pi * yy) * np.cos(np.pi * xx)
    return np.stack([base, 0.9 * base + 0.05, 1.05 * base - 0.03], axis=2)


def _u8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


def _make_image(seed: int, square: tuple[int, int, int] | None):
    """Noise sigma 0.01 everywhere; inside ``square`` (y, x, side) sigma 0.07."""
    rng = np.random.default_rng(seed)
    sigma = np.full((SIZE, SIZE, 1), 0.01)
    mask = np.zeros((SIZE, SIZE), bool)
    if square is not None:
        y, x, s = square
        mask[y:y + s, x:x + s] = True
        sigma[mask] = 0.07
    image = _smooth(rng) + sigma * rng.standard_normal((SIZE, SIZE, 3))
    return _u8(image), mask


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    for d in ("images", "masks", "pristine"):
        (root / d).mkdir()
    squares = [(16, 16, 40), (40, 40, 36), (8, 48, 40), (50, 10, 34)]
    for i, sq in enumerate(squares):
        image, mask = _make_image(i, sq)
        Image.fromarray(image).save(root / "images" / f"f{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"f{i}.png")
    for i in range(2):
        image, _ = _make_image(100 + i, None)
        Image.fromarray(image).save(root / "pristine" / f"p{i}.png")
    return root


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- conditions


def test_conditions_are_one_at_a_time() -> None:
    conds = conditions_for(EvalConfig(jpeg=(None, 95, 90), resize=(None, 0.8, 1.2)))
    assert [c.name for c in conds] == ["clean", "jpeg95", "jpeg90", "resize0.8", "resize1.2"]
    assert all(c.jpeg is None or c.scale is None for c in conds)
    # No None anywhere: no clean condition.
    assert [c.name for c in conditions_for(EvalConfig(jpeg=(90,), resize=(0.8,)))] == [
        "jpeg90", "resize0.8"]


def test_apply_condition_changes_the_input(dataset_root: Path) -> None:
    ds = open_dataset(dataset_root)
    image, mask = ds.load(ds.forged[0])
    same, same_mask = apply_condition(image, mask, Condition("clean", "clean"))
    assert same is image and same_mask is mask

    jpg, jpg_mask = apply_condition(image, mask, Condition("jpeg90", "jpeg", jpeg=90))
    assert jpg.shape == image.shape and np.array_equal(jpg_mask, mask)
    assert np.abs(jpg - image).mean() > 1e-3

    small, small_mask = apply_condition(image, mask, Condition("resize0.8", "resize",
                                                               scale=0.8))
    n = round(SIZE * 0.8)
    assert small.shape == (n, n, 3) and small_mask.shape == (n, n)
    assert small_mask.dtype == bool
    assert small_mask.mean() == pytest.approx(mask.mean(), abs=0.03)
    assert np.array_equal(small, postprocess_image(image, scale=0.8))

    with pytest.raises(ValueError, match="mask is"):
        apply_condition(image, mask[:-1], Condition("clean", "clean"))


# --------------------------------------------------------------------------- baselines run


@pytest.fixture(scope="module")
def baseline_run(dataset_root: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("eval")
    config = EvalConfig(methods=BASELINE_METHODS, jpeg=(None, 90), resize=(None, 0.8),
                        n_figures=2)
    results = evaluate(dataset_root, out, config=config, progress=False)
    return out, results


def test_files_and_tables(baseline_run) -> None:
    out, results = baseline_run
    for name in ("results.json", "config.json", "rows.jsonl", "rows.csv", "summary.csv",
                 "summary.md", "roc_clean.png", "examples.png"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp"))

    conds = ["clean", "jpeg90", "resize0.8"]
    assert [c["name"] for c in results["conditions"]] == conds
    summary = _read_csv(out / "summary.csv")
    assert [(r["condition"], r["method"]) for r in summary] == [
        (c, m) for c in conds for m in BASELINE_METHODS]
    for r in summary:
        assert int(r["n_forged"]) == 4 and int(r["n_pristine"]) == 2
        assert int(r["auc_n"]) == 4
        assert 0.0 <= float(r["detection_auc"]) <= 1.0
    rows = _read_csv(out / "rows.csv")
    assert len(rows) == 3 * 2 * 6
    assert {r["image"] for r in rows} == {"images/f0", "images/f1", "images/f2", "images/f3",
                                          "pristine/p0", "pristine/p1"}
    assert all(r["auc"] == "" for r in rows if r["forged"] == "False")

    # The planted noisy square is easy for NOI1 on clean images.
    clean_noi1 = next(s for s in results["summary"]
                      if s["condition"] == "clean" and s["method"] == "noi1")
    assert clean_noi1["auc"] > 0.9

    md = (out / "summary.md").read_text()
    lines = md.splitlines()
    headers = (("JPEG", "| Method | none | 90 |"), ("resize", "| Method | none | 0.80 |"))
    for sweep, header in headers:
        for title in ("Pixel AUC", "MCC (best threshold)"):
            i = next(k for k, line in enumerate(lines)
                     if line.startswith(f"## {title}") and sweep in line)
            assert lines[i + 2] == header
            body = lines[i + 4:i + 4 + len(BASELINE_METHODS)]
            assert [b.split("|")[1].strip() for b in body] == list(BASELINE_METHODS)
            assert all(len(b.split("|")) == len(header.split("|")) for b in body)
    assert "## Condition: clean" in md and "## Condition: resize x0.8" in md
    assert "AUC (sign-agn.)" in md and "MCC@0.50" in md


def test_markdown_renders_from_saved_json(baseline_run) -> None:
    out, results = baseline_run
    saved = json.loads((out / "results.json").read_text())
    assert format_markdown(saved) == (out / "summary.md").read_text()
    assert format_markdown(saved) == format_markdown(results)


def test_row_metrics_equal_direct_call(dataset_root: Path, baseline_run) -> None:
    out, _ = baseline_run
    rows = {(r["condition"], r["method"], r["image"]): r for r in _jsonl(out / "rows.jsonl")}
    ds = open_dataset(dataset_root)
    sample = ds.forged[1]
    image, mask = ds.load(sample)
    for cond in (Condition("clean", "clean"), Condition("resize0.8", "resize", scale=0.8)):
        img_c, mask_c = apply_condition(image, mask, cond)
        raw = baselines.noi1(img_c)
        norm = ((raw - raw.min()) / (raw.max() - raw.min())).astype(np.float32)
        assert np.allclose(norm, normalize_heatmap(raw), atol=1e-6)
        direct = localization_metrics(normalize_heatmap(raw), mask_c, threshold=0.5)
        row = rows[(cond.name, "noi1", sample.name)]
        for k in METRIC_KEYS:
            assert row[k] == pytest.approx(direct[k], abs=1e-12), k
        assert row["score"] == pytest.approx(float(np.quantile(raw, 0.99)))
        assert (row["height"], row["width"]) == img_c.shape[:2]
    # The post-processing reached the method: other sizes and other scores.
    r80 = rows[("resize0.8", "noi1", sample.name)]
    assert (r80["height"], r80["width"]) == (round(SIZE * 0.8),) * 2
    assert rows[("jpeg90", "noi1", sample.name)]["score"] != rows[("clean", "noi1",
                                                                   sample.name)]["score"]


# --------------------------------------------------------------------------- resume


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    original = METHODS[name].heatmap

    def counted(image: np.ndarray) -> np.ndarray:
        calls.append(1)
        return original(image)

    monkeypatch.setitem(METHODS, name, BaselineMethod(name, counted))
    return calls


def _untimed(summary: list[dict]) -> list[dict]:
    return [{k: v for k, v in s.items() if k != "seconds"} for s in summary]


def test_resume_skips_finished_rows(dataset_root: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    config = EvalConfig(methods=("noi1",), jpeg=(None, 95), n_figures=0, max_images=3)
    first = evaluate(dataset_root, tmp_path, config=config, progress=False)
    calls = _counting(monkeypatch, "noi1")
    n_rows = 2 * (3 + 2)  # conditions x (3 forged + 2 pristine)

    again = evaluate(dataset_root, tmp_path, config=config, progress=False)
    assert calls == []
    assert again["summary"] == first["summary"]

    # Interrupted run: the last rows are lost and the last line is cut in half.
    path = tmp_path / "rows.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == n_rows
    path.write_text("".join(lines[:-3]) + lines[-3][:20])
    resumed = evaluate(dataset_root, tmp_path, config=config, progress=False)
    assert len(calls) == 3
    assert len(_jsonl(path)) == n_rows
    assert _untimed(resumed["summary"]) == _untimed(first["summary"])

    # Other settings (the boundary band) invalidate the cache; resume=False recomputes.
    calls.clear()
    banded = evaluate(dataset_root, tmp_path, config=EvalConfig(
        methods=("noi1",), jpeg=(None, 95), n_figures=0, max_images=3, band=True),
        progress=False)
    assert len(calls) == n_rows
    assert any("other settings" in n for n in banded["notes"])
    calls.clear()
    evaluate(dataset_root, tmp_path, config=config, progress=False, resume=False)
    assert len(calls) == n_rows
    assert len(_jsonl(path)) == n_rows


# --------------------------------------------------------------------------- errors, edge cases


def test_heatmap_size_mismatch_raises(dataset_root: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(METHODS, "noi1",
                        BaselineMethod("noi1", lambda im: np.zeros((5, 5), np.float32)))
    with pytest.raises(ValueError, match="heatmap"):
        evaluate(dataset_root, tmp_path, config=EvalConfig(methods=("noi1",), n_figures=0),
                 progress=False)


def test_unknown_method_and_no_pristine(dataset_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown method"):
        evaluate(dataset_root, tmp_path, config=EvalConfig(methods=("nope",)), progress=False)
    ds = open_dataset(dataset_root)
    ds.samples = ds.forged[:2]
    res = evaluate(ds, tmp_path / "np", config=EvalConfig(methods=("noi1",), n_figures=1),
                   progress=False)
    entry = res["summary"][0]
    assert math.isnan(entry["detection_auc"]) and entry["n_pristine"] == 0
    assert any("no pristine" in n for n in res["notes"])
    assert "–" in (tmp_path / "np" / "summary.md").read_text()


# --------------------------------------------------------------------------- noisead detector


def test_tiny_noisead_detector(dataset_root: Path, tmp_path: Path) -> None:
    import torch

    torch.manual_seed(0)
    pristine = [_make_image(200 + i, None)[0].astype(np.float32) / 255 for i in range(2)]
    # Random weights: it only has to run. 16 embedding channels keep the fit fast on 2 cores.
    detector = fit_detector(create_model("dncnn-tiny"), pristine,
                            DetectorConfig(patch_size=32, crop_size=64, tile=128,
                                           n_features=16),
                            progress=False)
    methods = ("noisead", "noisead-reference", "noi1")
    config = EvalConfig(methods=methods, resize=(None, 0.8), n_figures=1, max_images=2)
    res = evaluate(dataset_root, tmp_path, detector, config, progress=False)
    assert [(s["condition"], s["method"]) for s in res["summary"]] == [
        (c, m) for c in ("clean", "resize0.8") for m in methods]
    for s in res["summary"]:
        assert s["n_forged"] == 2 and s["auc_n"] == 2
        assert 0.0 <= s["auc"] <= 1.0
    assert res["detector"]["fingerprint"]
    rows = _jsonl(tmp_path / "rows.jsonl")
    assert all(0.0 <= r["score"] <= 1.0 for r in rows if r["method"].startswith("noisead"))
    assert (tmp_path / "examples.png").is_file() and (tmp_path / "roc_clean.png").is_file()
    md = (tmp_path / "summary.md").read_text()
    assert "| noisead-reference |" in md and "Detector:" in md
