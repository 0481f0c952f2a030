"""Tests of the forgery builders: exact masks, edits confined to them, reproducible folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from noisead.data.forge import (
    GENERATIVE_METHODS,
    copy_move,
    generative_like_edit,
    make_benchmark,
    object_like_mask,
    random_blob_mask,
    random_polygon_mask,
    splice,
)

MAKERS = [random_blob_mask, random_polygon_mask, object_like_mask]


def _img(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


# -- masks -------------------------------------------------------------------------------


@pytest.mark.parametrize("maker", MAKERS)
@pytest.mark.parametrize("shape", [(96, 128), (200, 64), (40, 40)])
def test_masks_are_bool_and_in_the_area_range(maker, shape):
    g = np.random.default_rng(0)
    fracs = []
    for rng_range in [(0.05, 0.25), (0.02, 0.04), (0.3, 0.35)]:
        for _ in range(4):
            m = maker(shape, g, area_fraction=rng_range)
            assert m.dtype == bool and m.shape == shape
            assert rng_range[0] <= m.mean() <= rng_range[1]
            fracs.append(m.mean())
    assert len(set(fracs)) > 4  # the area is drawn, not fixed


@pytest.mark.parametrize("maker", MAKERS)
def test_masks_are_reproducible_and_compact(maker):
    a = maker((120, 160), np.random.default_rng(7))
    b = maker((120, 160), np.random.default_rng(7))
    c = maker((120, 160), np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    labels, n = ndimage.label(a)
    sizes = np.bincount(labels.ravel())[1:]
    assert sizes.max() >= 0.95 * a.sum()  # essentially one region, no speckle
    assert not a.all()


def test_mask_area_range_is_validated():
    with pytest.raises(ValueError):
        random_blob_mask((64, 64), np.random.default_rng(0), area_fraction=(0.3, 0.1))
    with pytest.raises(ValueError):
        random_blob_mask((64, 64), np.random.default_rng(0), area_fraction=(0.0, 0.1))


# -- splice ------------------------------------------------------------------------------


def test_splice_changes_only_the_mask_and_copies_the_donor():
    g = np.random.default_rng(0)
    target, donor = _img(96, 128, 1), _img(150, 170, 2)
    mask = random_blob_mask(target.shape[:2], g)
    forged, (dy, dx) = splice(target, donor, mask, g, return_offset=True)
    assert forged.dtype == np.float32 and forged.shape == target.shape
    assert np.array_equal(forged[~mask], target[~mask])
    ys, xs = np.nonzero(mask)
    assert np.array_equal(forged[ys, xs], donor[ys + dy, xs + dx])
    assert not np.array_equal(forged[mask], target[mask])


def test_splice_offset_grid_and_errors():
    g = np.random.default_rng(1)
    target, donor = _img(64, 64, 1), _img(200, 200, 2)
    mask = random_blob_mask((64, 64), g)
    for _ in range(5):
        _, (dy, dx) = splice(target, donor, mask, g, grid=8, return_offset=True)
        assert dy % 8 == 0 and dx % 8 == 0
    out = splice(target, donor, mask, g, offset=(10, 20))
    ys, xs = np.nonzero(mask)
    assert np.array_equal(out[ys, xs], donor[ys + 10, xs + 20])
    with pytest.raises(ValueError):
        splice(target, _img(8, 8, 3), np.ones((64, 64), bool), g)
    with pytest.raises(ValueError):
        splice(target, donor, np.zeros((64, 64), bool), g)


# -- copy-move ---------------------------------------------------------------------------


def test_copy_move_target_equals_source_content():
    g = np.random.default_rng(2)
    image = _img(128, 160, 4)
    for _ in range(5):
        mask = random_blob_mask(image.shape[:2], g, area_fraction=(0.03, 0.12))
        forged, target, source = copy_move(image, mask, g, return_source_mask=True)
        assert target.dtype == bool and target.sum() == mask.sum()
        assert np.array_equal(source, mask)
        assert not (target & source).any()  # moved somewhere else, no overlap
        assert np.array_equal(forged[target], image[source])
        assert np.array_equal(forged[~target], image[~target])
        assert np.array_equal(forged[source], image[source])  # source left intact


def test_copy_move_explicit_offset():
    image = _img(64, 64, 5)
    mask = np.zeros((64, 64), bool)
    mask[4:12, 6:20] = True
    forged, target = copy_move(image, mask, np.random.default_rng(0), offset=(30, 10))
    assert target[34:42, 16:30].all() and target.sum() == mask.sum()
    assert np.array_equal(forged[34:42, 16:30], image[4:12, 6:20])
    with pytest.raises(ValueError):
        copy_move(image, mask, np.random.default_rng(0), offset=(60, 0))


# -- generative-like edits -----------------------------------------------------------------


def _cfa_textured(h: int, w: int) -> np.ndarray:
    """Smooth content plus a strong 2x2-periodic (CFA-like) and 8x8 (JPEG-grid-like) trace."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.2 * np.sin(yy / 9.0)[..., None] * np.array([1.0, 0.8, 0.6])
    cfa = 0.05 * ((yy % 2) ^ (xx % 2))[..., None] * np.array([1.0, -1.0, 1.0])
    grid = 0.03 * ((yy % 8 == 0) | (xx % 8 == 0))[..., None]
    return np.clip(base + cfa + grid, 0, 1).astype(np.float32)


def _harmonic_energy(x: np.ndarray, k: int, period: int) -> float:
    """Energy of a high-pass residual at frequency k/period along rows plus along columns."""
    r = x - ndimage.uniform_filter(x, 3)
    f = np.abs(np.fft.fft2(r - r.mean()))
    h, w = x.shape
    return float(f[0, k * w // period] + f[k * h // period, 0])


@pytest.mark.parametrize("method", GENERATIVE_METHODS)
def test_generative_edit_changes_only_inside_the_mask(method):
    g = np.random.default_rng(3)
    image = _cfa_textured(96, 128)
    mask = object_like_mask(image.shape[:2], g)
    out = generative_like_edit(image, mask, g, method)
    assert out.dtype == np.float32 and out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])
    assert np.abs(out[mask] - image[mask]).mean() > 0.005
    feathered = generative_like_edit(image, mask, g, method, feather=2.0)
    assert np.array_equal(feathered[~mask], image[~mask])


def test_resynth_removes_cfa_and_grid_traces_but_keeps_content():
    g = np.random.default_rng(4)
    image = _cfa_textured(128, 128)
    mask = np.ones((128, 128), bool)
    mask[:2] = False  # a mask must leave something untouched to be a local edit
    out = generative_like_edit(image, mask, g, "resynth")
    for ch in range(3):
        before, after = image[16:112, 16:112, ch], out[16:112, 16:112, ch]
        # The 2x2 (CFA) period is gone ...
        assert _harmonic_energy(after, 1, 2) < 0.05 * _harmonic_energy(before, 1, 2)
        # ... and so are the high harmonics of the 8x8 grid (its fundamental, 1/8, is
        # low-frequency content that any content-keeping resynthesis keeps).
        for k in (3, 4):
            assert _harmonic_energy(after, k, 8) < 0.1 * _harmonic_energy(before, k, 8)
        assert _harmonic_energy(after, 2, 8) < 0.5 * _harmonic_energy(before, 2, 8)
    # The low-frequency content survives.
    smooth = ndimage.gaussian_filter(image, (4, 4, 0))[16:112, 16:112]
    assert np.abs(ndimage.gaussian_filter(out, (4, 4, 0))[16:112, 16:112] - smooth).mean() < 0.03


def test_generative_edit_rejects_unknown_method():
    with pytest.raises(ValueError):
        generative_like_edit(
            _img(),
            random_blob_mask((96, 128), np.random.default_rng(0)),
            np.random.default_rng(0),
            "dall-e",
        )


# -- benchmark folders ---------------------------------------------------------------------


def _camera_root(root: Path) -> Path:
    """Three tiny 'camera models': two JPEG, one PNG; one image smaller than the crop."""
    g = np.random.default_rng(0)
    for k, (name, ext) in enumerate([("camA", ".jpg"), ("camB", ".jpg"), ("camC", ".png")]):
        d = root / name
        d.mkdir(parents=True)
        for j in range(2):
            h, w = (80, 96) if (k, j) != (2, 1) else (56, 72)
            arr = (g.random((h, w, 3)) * 255).astype(np.uint8)
            arr = ndimage.uniform_filter(arr, (3, 3, 1))
            if ext == ".jpg":
                Image.fromarray(arr).save(d / f"img{j}{ext}", quality=90)
            else:
                Image.fromarray(arr).save(d / f"img{j}{ext}")
        (d / "model_card.json").write_text("{}")  # non-images are ignored
    (root / "models.json").write_text("{}")
    return root


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_make_benchmark_layout_manifest_and_reproducibility(tmp_path):
    cams = _camera_root(tmp_path / "cams")
    out = make_benchmark(
        cams, tmp_path / "bench", n_per_kind=3, seed=5, progress=False, crop_size=64
    )
    assert out == tmp_path / "bench"
    dirs = sorted(p.name for p in out.iterdir())
    assert dirs == sorted(
        f"{k}-{v}" for k in ("splice", "generative", "copymove") for v in ("png", "jpeg")
    )
    for d in dirs:
        man = json.loads((out / d / "manifest.json").read_text())
        kind, variant = d.split("-")
        assert man["kind"] == kind and man["variant"] == variant and man["n_images"] == 3
        for rec in man["images"]:
            img = _read(out / d / rec["image"])
            mask = _read(out / d / rec["mask"])
            pristine = _read(out / d / rec["pristine"])
            assert img.dtype == np.uint8 and img.ndim == 3
            assert mask.ndim == 2 and set(np.unique(mask)) <= {0, 255}
            assert img.shape[:2] == mask.shape == pristine.shape[:2]
            assert mask.shape[0] <= 64 and mask.shape[1] <= 64
            m = mask == 255
            assert rec["mask_fraction"] == pytest.approx(m.mean(), abs=1e-5)
            assert np.array_equal(img[~m], pristine[~m])
            assert (img[m] != pristine[m]).any()
            src_model, src_name = rec["target_file"].split("/")
            assert src_model == rec["target_model"]
            if variant == "png":  # pristine = the decoded camera image, cropped top-left
                src = _read(cams / rec["target_file"])
                assert np.array_equal(pristine, src[: m.shape[0], : m.shape[1]])
            else:
                assert 75 <= rec["jpeg_quality_target"] <= 95
            if kind == "splice":
                assert rec["donor_model"] != rec["target_model"]
                assert (cams / rec["donor_file"]).is_file()
            if kind == "copymove":
                assert rec["mask_marks"] == "target"
                assert 0.03 <= rec["mask_fraction"] <= 0.12 + 1e-9
            else:
                assert 0.05 <= rec["mask_fraction"] <= 0.25 + 1e-9
            assert rec["seed_entropy"][0] == 5
    # Variants are paired: same sources and mask; the jpeg pristine differs (compressed).
    png = json.loads((out / "splice-png" / "manifest.json").read_text())["images"]
    jpg = json.loads((out / "splice-jpeg" / "manifest.json").read_text())["images"]
    for a, b in zip(png, jpg, strict=True):
        assert a["target_file"] == b["target_file"] and a["donor_file"] == b["donor_file"]
        assert np.array_equal(
            _read(out / "splice-png" / a["mask"]), _read(out / "splice-jpeg" / b["mask"])
        )
        assert not np.array_equal(
            _read(out / "splice-png" / a["pristine"]), _read(out / "splice-jpeg" / b["pristine"])
        )
    # Same seed → byte-identical; another seed → different.
    out2 = make_benchmark(
        cams, tmp_path / "bench2", n_per_kind=3, seed=5, progress=False, crop_size=64
    )
    assert _tree_bytes(out) == _tree_bytes(out2)
    out3 = make_benchmark(
        cams, tmp_path / "bench3", n_per_kind=3, seed=6, progress=False, crop_size=64
    )
    assert _tree_bytes(out) != _tree_bytes(out3)


def test_make_benchmark_subset_and_errors(tmp_path):
    cams = _camera_root(tmp_path / "cams")
    out = make_benchmark(
        cams,
        tmp_path / "b",
        kinds=("generative",),
        variants=("png",),
        n_per_kind=3,
        seed=0,
        progress=False,
    )
    assert sorted(p.name for p in out.iterdir()) == ["generative-png"]
    methods = [
        r["method"]
        for r in json.loads((out / "generative-png" / "manifest.json").read_text())["images"]
    ]
    assert methods == list(GENERATIVE_METHODS)
    # The crop is the whole image when it is smaller than crop_size.
    rec = json.loads((out / "generative-png" / "manifest.json").read_text())["images"][0]
    src = _read(cams / rec["target_file"])
    assert _read(out / "generative-png" / rec["image"]).shape == src.shape
    one = tmp_path / "one"
    (one / "cam").mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(one / "cam" / "a.png")
    with pytest.raises(ValueError):
        make_benchmark(one, tmp_path / "x", kinds=("splice",), n_per_kind=1, progress=False)
    with pytest.raises(ValueError):
        make_benchmark(cams, tmp_path / "y", kinds=("morph",), progress=False)
