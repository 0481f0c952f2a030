"""Dataset readers on tiny fixtures written in each dataset's own layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisead.data.datasets import (
    DATASET_KINDS,
    MASK_COLUMBIA_GREEN,
    MASK_INVERTED,
    MASK_NONE,
    MASK_NONZERO,
    MASK_THRESHOLD,
    ForgeryDataset,
    Sample,
    binarize_mask,
    detect_kind,
    open_dataset,
    read_casia2,
    read_columbia,
    read_dso1,
    read_folder,
    read_imdlbenco,
    read_korus,
)

SIZE = 16


def _image(path: Path, seed: int = 0, size: tuple[int, int] = (SIZE, SIZE)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _gray(path: Path, values: np.ndarray, **save_kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint8), mode="L").save(path, **save_kwargs)
    return path


def _square(lo: int = 4, hi: int = 10) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), bool)
    mask[lo:hi, lo:hi] = True
    return mask


def _by_name(dataset: ForgeryDataset) -> dict[str, Sample]:
    return {s.name: s for s in dataset}


# --------------------------------------------------------------------------- conventions


def test_binarize_mask_conventions():
    px = np.zeros((2, 3, 3), np.float32)
    px[0, 0] = 1.0  # white
    px[0, 1] = 2 / 255  # faint noise
    px[0, 2] = [0.8, 0.1, 0.1]  # red
    px[1, 0] = [0.1, 0.8, 0.1]  # green
    px[1, 1] = [0.0, 0.2, 0.0]  # dark green
    px[1, 2] = 0.5  # mid grey
    assert binarize_mask(px, MASK_NONZERO).tolist() == [[True, True, True], [True, True, True]]
    assert binarize_mask(px, MASK_THRESHOLD).tolist() == [[True, False, True], [True, False, False]]
    assert binarize_mask(px, MASK_INVERTED).tolist() == [[False, True, False], [False, True, False]]
    assert binarize_mask(px, MASK_COLUMBIA_GREEN).tolist() == [
        [False, False, False],
        [True, False, False],
    ]
    assert binarize_mask(np.zeros((2, 2)), MASK_NONZERO).shape == (2, 2)
    with pytest.raises(ValueError, match="unknown mask convention"):
        binarize_mask(px, "bogus")
    with pytest.raises(ValueError, match="pristine"):
        binarize_mask(px, MASK_NONE)


def test_dataset_rejects_inconsistent_samples(tmp_path):
    a = Sample(tmp_path / "a.png", tmp_path / "m.png", "a", True, MASK_NONZERO)
    with pytest.raises(ValueError, match="duplicate"):
        ForgeryDataset("x", tmp_path, [a, a])
    with pytest.raises(ValueError, match="pristine"):
        ForgeryDataset("x", tmp_path, [Sample(tmp_path / "b.png", None, "b", True, MASK_NONZERO)])
    with pytest.raises(ValueError, match="pristine"):
        ForgeryDataset("x", tmp_path, [Sample(tmp_path / "b.png", None, "b", False, MASK_NONZERO)])


# --------------------------------------------------------------------------- generic folder


def test_folder_layout(tmp_path):
    root = tmp_path / "bench"
    _image(root / "images" / "a.png", 1)
    _image(root / "images" / "b.png", 2)
    _image(root / "images" / "c.png", 3)
    _image(root / "images" / "e.png", 5)
    _image(root / "pristine" / "d.png", 4)
    (root / "images" / "notes.txt").write_text("not an image")
    _gray(root / "masks" / "a.png", _square() * 255)
    _gray(root / "masks" / "b_mask.png", _square(0, 3) * 1)  # nonzero, not 255
    _gray(root / "masks" / "e_gt.jpg", _square() * 255, quality=90)
    _gray(root / "masks" / "orphan.png", _square() * 255)

    dataset = open_dataset(root)
    assert dataset.kind == "folder" and len(dataset) == 5
    by = _by_name(dataset)
    assert set(by) == {"images/a", "images/b", "images/c", "images/e", "pristine/d"}
    assert by["images/a"].is_forged and by["images/a"].mask_convention == MASK_NONZERO
    assert by["images/b"].mask_path.name == "b_mask.png"
    assert by["images/e"].mask_convention == MASK_THRESHOLD  # JPEG mask: threshold, not nonzero
    assert not by["images/c"].is_forged and by["images/c"].mask_path is None
    assert not by["pristine/d"].is_forged
    assert [s.name for s in dataset.forged] == ["images/a", "images/b", "images/e"]
    assert len(dataset.pristine) == 2

    assert np.array_equal(dataset.load_mask(by["images/a"]), _square())
    assert np.array_equal(dataset.load_mask(by["images/b"]), _square(0, 3))
    assert np.array_equal(dataset.load_mask(by["images/e"]), _square())
    assert dataset.load_mask(by["images/c"]) is None
    image, mask = dataset.load(by["images/a"])
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.float32
    assert mask.dtype == bool and mask.shape == (SIZE, SIZE)


def test_mask_size_mismatch_raises(tmp_path):
    root = tmp_path / "bench"
    _image(root / "images" / "a.png")
    _gray(root / "masks" / "a.png", np.full((8, 8), 255))
    dataset = read_folder(root)
    with pytest.raises(ValueError, match="never resized"):
        dataset.load_mask(dataset[0])
    with pytest.raises(ValueError, match="never resized"):
        dataset.load_mask(dataset[0], image_shape=(SIZE, SIZE, 3))
    assert dataset.load_mask(dataset[0], image_shape=(8, 8)).all()


def test_shared_cvip_copymove_reads_as_a_folder(shared_dir):
    dataset = open_dataset(shared_dir / "forgeries" / "cvip-copymove")
    assert dataset.kind == "folder"
    assert len(dataset.forged) == 50 and not dataset.pristine
    assert all(s.mask_convention == MASK_NONZERO for s in dataset)


# --------------------------------------------------------------------------- DSO-1


def test_dso1_inverted_masks(tmp_path):
    root = tmp_path / "tifs-database"
    _image(root / "DSO-1" / "splicing-01.png", 1)
    _image(root / "DSO-1" / "splicing-02.png", 2)  # no mask: skipped
    _image(root / "DSO-1" / "normal-01.png", 3)
    tampered = _square(3, 12)
    # DSO-1 masks are BLACK where tampered, white elsewhere.
    _gray(root / "DSO-1-Fake-Images-Masks" / "splicing-01.png", np.where(tampered, 0, 255))

    assert detect_kind(root) == "dso1"
    with pytest.warns(UserWarning, match="skipped 1"):
        dataset = open_dataset(root)
    assert dataset.name == "DSO-1"
    assert [s.name for s in dataset] == ["DSO-1/splicing-01", "DSO-1/normal-01"]
    assert [s.name for s in dataset.skipped] == ["splicing-02.png"]
    forged = dataset[0]
    assert forged.is_forged and forged.mask_convention == MASK_INVERTED
    assert np.array_equal(dataset.load_mask(forged), tampered)
    assert dataset.load_mask(dataset[1]) is None


def test_dso1_folder_itself_with_masks_subfolder(tmp_path):
    root = tmp_path / "DSO-1"
    _image(root / "splicing-07.png")
    _image(root / "normal-07.png")
    _gray(root / "masks" / "splicing-07.png", np.where(_square(), 0, 255))
    assert detect_kind(root) == "dso1"
    dataset = read_dso1(root)
    assert [s.name for s in dataset] == ["splicing-07", "normal-07"]
    assert np.array_equal(dataset.load_mask(dataset[0]), _square())


# --------------------------------------------------------------------------- Columbia


def _edgemask(path: Path) -> np.ndarray:
    """Left half camera 1 (red, bright near the boundary), right half camera 2 (green)."""
    rgb = np.zeros((SIZE, SIZE, 3), np.uint8)
    rgb[:, :8] = (200, 0, 0)
    rgb[:, 6:8] = (255, 0, 0)
    rgb[:, 8:] = (0, 200, 0)
    rgb[:, 8:10] = (0, 255, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 4:4:4 keeps the colours of each 8x8 block apart, as in the dataset's own masks.
    Image.fromarray(rgb).save(path, quality=90, subsampling=0)
    expected = np.zeros((SIZE, SIZE), bool)
    expected[:, 8:] = True
    return expected


@pytest.mark.parametrize("nested", [False, True])
def test_columbia_green_region_is_tampered(tmp_path, nested):
    root = tmp_path / "columbia"
    splc = root / "4cam_splc" / "4cam_splc" if nested else root / "4cam_splc"
    auth = root / "4cam_auth" / "4cam_auth" if nested else root / "4cam_auth"
    _image(splc / "canong3_kodakdcs330_sub_01.tif", 1)
    _image(splc / "nikond70_canonxt_sub_05.bmp", 2)  # no edge mask: skipped
    expected = _edgemask(splc / "edgemask" / "canong3_kodakdcs330_sub_01_edgemask.jpg")
    _image(auth / "canong3_02_sub_01.tif", 3)

    assert detect_kind(root) == "columbia"
    with pytest.warns(UserWarning, match="skipped 1"):
        dataset = open_dataset(root, kind="Columbia") if nested else read_columbia(root)
    assert len(dataset) == 2
    forged, pristine = dataset.forged, dataset.pristine
    assert len(forged) == 1 and len(pristine) == 1
    assert forged[0].mask_convention == MASK_COLUMBIA_GREEN
    assert forged[0].name.endswith("4cam_splc/canong3_kodakdcs330_sub_01")
    assert np.array_equal(dataset.load_mask(forged[0]), expected)
    assert pristine[0].name.endswith("4cam_auth/canong3_02_sub_01")


# --------------------------------------------------------------------------- CASIA v2


def test_casia2_layout(tmp_path):
    root = tmp_path / "CASIA2.0"
    splice = "Tp_D_CRN_S_N_cha00063_art00014_11818"
    copymove = "Tp_S_NRN_S_N_pla00005_pla00005_10937"
    _image(root / "Tp" / f"{splice}.jpg", 1)
    _image(root / "Tp" / f"{copymove}.tif", 2)
    _image(root / "Tp" / "Tp_D_NNN_S_B_art00097_cha00047_01384.tif", 3)  # no ground truth
    _image(root / "Au" / "Au_ani_00001.jpg", 4)
    (root / "Au" / "Thumbs.db").write_bytes(b"\0\1")
    noisy = np.where(_square(), 255, 3)  # faint noise outside the forgery
    _gray(root / "CASIA 2 Groundtruth" / f"{splice}_gt.png", noisy)
    _gray(root / "CASIA 2 Groundtruth" / f"{copymove}_gt.png", _square(1, 5) * 255)

    assert detect_kind(root) == "casia2"
    with pytest.warns(UserWarning, match="skipped 1"):
        dataset = open_dataset(root, kind="casia")
    by = _by_name(dataset)
    assert set(by) == {f"Tp/{splice}", f"Tp/{copymove}", "Au/Au_ani_00001"}
    assert by[f"Tp/{splice}"].mask_convention == MASK_THRESHOLD
    assert np.array_equal(dataset.load_mask(by[f"Tp/{splice}"]), _square())
    assert np.array_equal(dataset.load_mask(by[f"Tp/{copymove}"]), _square(1, 5))
    assert not by["Au/Au_ani_00001"].is_forged


def test_casia2_benco_gt_folder(tmp_path):
    root = tmp_path / "casia"
    _image(root / "Tp" / "Tp_x.jpg")
    _gray(root / "Gt" / "Tp_x_gt.png", _square() * 255)
    dataset = read_casia2(root)
    assert len(dataset.forged) == 1 and not dataset.pristine


# --------------------------------------------------------------------------- Korus


def test_korus_three_level_ground_truth_per_camera(tmp_path):
    root = tmp_path / "realistic-tampering-dataset"
    levels = np.zeros((SIZE, SIZE), np.uint8)
    levels[2:6, 2:6] = 255  # semantic change
    levels[6:8, 2:6] = 128  # collateral damage
    for cam, seed in (("Canon_60D", 1), ("Sony_A57", 5)):
        _image(root / cam / "tampered-realistic" / "r0a4e0f4bt.TIF", seed)
        _image(root / cam / "pristine" / "r0a4e0f4bt.TIF", seed + 1)
        _gray(root / cam / "ground-truth" / "r0a4e0f4bt.PNG", levels)
    _image(root / "Sony_A57" / "tampered-realistic" / "lonely.TIF", 9)  # no ground truth
    (root / "readme.md").write_text("# Realistic Tampering Dataset")

    assert detect_kind(root) == "korus"
    with pytest.warns(UserWarning, match="skipped 1"):
        dataset = open_dataset(root)
    names = [s.name for s in dataset]
    assert names == [
        "Canon_60D/tampered-realistic/r0a4e0f4bt",
        "Canon_60D/pristine/r0a4e0f4bt",
        "Sony_A57/tampered-realistic/r0a4e0f4bt",
        "Sony_A57/pristine/r0a4e0f4bt",
    ]
    forged = dataset[0]
    assert forged.mask_convention == MASK_NONZERO
    assert np.array_equal(dataset.load_mask(forged), levels > 0)  # grey counts as tampered


def test_korus_without_camera_folders(tmp_path):
    root = tmp_path / "korus"
    _image(root / "tampered-realistic" / "a.TIF")
    _gray(root / "ground-truth" / "a.PNG", _square() * 255)
    _image(root / "pristine" / "a.TIF")
    dataset = read_korus(root)
    assert [s.name for s in dataset] == ["tampered-realistic/a", "pristine/a"]


# --------------------------------------------------------------------------- IMDL-BenCo JSON


def test_imdlbenco_json_with_negative_entries(tmp_path):
    root = tmp_path / "lists"
    _image(root / "Tp" / "a.png", 1)
    _gray(root / "Gt" / "a_gt.png", _square() * 255)
    _image(root / "Au" / "b.png", 2)
    outside = _image(tmp_path / "elsewhere" / "c.png", 3)
    outside_mask = _gray(tmp_path / "elsewhere" / "c_gt.png", _square(0, 2) * 255)
    entries = [
        ["Tp/a.png", "Gt/a_gt.png"],
        ["Au/b.png", "Negative"],
        [str(outside), str(outside_mask)],
        ["Tp/missing.png", "Negative"],
    ]
    json_path = root / "test_list.json"
    json_path.write_text(json.dumps(entries))

    assert detect_kind(json_path) == "imdlbenco"
    with pytest.warns(UserWarning, match="skipped 1"):
        dataset = open_dataset(json_path)
    assert dataset.name == "test_list" and dataset.kind == "imdlbenco"
    assert len(dataset) == 3
    a, b, c = dataset
    assert a.name == "Tp/a" and a.is_forged and a.image_path == (root / "Tp" / "a.png").resolve()
    assert b.name == "Au/b" and not b.is_forged and b.mask_path is None
    assert c.is_forged and c.image_path == outside
    assert np.array_equal(dataset.load_mask(a), _square())
    assert np.array_equal(dataset.load_mask(c), _square(0, 2))
    assert dataset.load_mask(b) is None


@pytest.mark.parametrize(
    "content",
    ['{"a": 1}', '[["only-one"]]', '[["a.png", 3]]', "not json"],
)
def test_imdlbenco_rejects_malformed_lists(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError):
        read_imdlbenco(path)


# --------------------------------------------------------------------------- dispatch


def test_open_dataset_kinds_and_errors(tmp_path):
    assert DATASET_KINDS == ("folder", "dso1", "columbia", "casia2", "korus", "imdlbenco")
    root = tmp_path / "bench"
    _image(root / "images" / "a.png")
    assert open_dataset(root, kind="folder").kind == "folder"
    assert open_dataset(root, kind="Generic").kind == "folder"
    with pytest.raises(ValueError, match="unknown dataset kind"):
        open_dataset(root, kind="nist16")
    with pytest.raises(ValueError, match="holds neither"):
        open_dataset(root, kind="columbia")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="cannot tell the layout"):
        open_dataset(empty)
    with pytest.raises(ValueError, match="does not exist"):
        detect_kind(tmp_path / "nowhere")
    (empty / "images").mkdir()
    with pytest.raises(ValueError, match="no folder samples"):
        open_dataset(empty)
