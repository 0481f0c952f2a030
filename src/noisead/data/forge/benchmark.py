"""Benchmark folders: forged, pristine and mask triplets with a manifest
(:func:`make_benchmark`; the layout and the variants: the package's docstring)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from noisead.data.forge.edits import GENERATIVE_METHODS, copy_move, generative_like_edit, splice
from noisead.data.forge.masks import MASK_MAKERS
from noisead.io import IMAGE_EXTENSIONS, PNG_SMALL, atomic_write_bytes, encode_png, to_uint8
from noisead.io.jpeg import jpeg_round_trip

__all__ = ["KINDS", "VARIANTS", "make_benchmark"]

KINDS: tuple[str, ...] = ("splice", "generative", "copymove")
VARIANTS: tuple[str, ...] = ("png", "jpeg")

# Stable ids so that choosing a subset of kinds does not change the others' content.
_KIND_IDS = {"splice": 0, "generative": 1, "copymove": 2}
_MASK_SHAPES = ("blob", "polygon", "object")


def _list_cameras(camera_root: Path) -> dict[str, list[Path]]:
    cams: dict[str, list[Path]] = {}
    for d in sorted(p for p in Path(camera_root).iterdir() if p.is_dir()):
        if d.name.startswith("."):
            continue
        files = sorted(
            p
            for p in d.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        if files:
            cams[d.name] = files
    return cams


def _load_rgb(path: Path) -> np.ndarray:
    # PIL directly, no EXIF transpose (see the module docstring): the pixel grid as stored.
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0



def _jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    return jpeg_round_trip(to_uint8(img), quality, subsampling="4:2:0").astype(np.float32) / 255.0


def _write_png(path: Path, array: np.ndarray) -> None:
    atomic_write_bytes(path, encode_png(array, compress_level=PNG_SMALL))


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _plan_sample(
    kind: str,
    i: int,
    cams: dict[str, list[Path]],
    camera_root: Path,
    seed: int,
    crop_size: int,
    area_fraction: tuple[float, float],
    generative_methods: Sequence[str],
) -> dict[str, Any]:
    """Draw everything about sample ``i`` of ``kind`` that does not depend on the variant."""
    ss = [seed, _KIND_IDS[kind], i]
    rng = np.random.default_rng(np.random.SeedSequence(ss + [0]))
    names = sorted(cams)
    tgt_model = names[int(rng.integers(len(names)))]
    tgt_path = cams[tgt_model][int(rng.integers(len(cams[tgt_model])))]
    plan: dict[str, Any] = {
        "kind": kind,
        "seed_entropy": ss,
        "target_model": tgt_model,
        "target_file": _rel(tgt_path, camera_root),
        "target_path": tgt_path,
    }
    if kind == "splice":
        others = [n for n in names if n != tgt_model]
        donor_model = others[int(rng.integers(len(others)))]
        donor_path = cams[donor_model][int(rng.integers(len(cams[donor_model])))]
        plan.update(
            donor_model=donor_model, donor_file=_rel(donor_path, camera_root), donor_path=donor_path
        )
    plan["mask_shape"] = _MASK_SHAPES[int(rng.integers(len(_MASK_SHAPES)))]
    if kind == "generative":
        plan["method"] = generative_methods[i % len(generative_methods)]
    else:
        plan["method"] = kind
    plan["mask_rng"] = rng  # continues the same stream for the mask
    plan["crop_size"] = crop_size
    plan["area_fraction"] = area_fraction
    return plan


def make_benchmark(
    camera_root: Path,
    out_dir: Path,
    kinds: Sequence[str] = ("splice", "generative", "copymove"),
    variants: Sequence[str] = ("png", "jpeg"),
    n_per_kind: int = 20,
    seed: int = 0,
    jpeg_quality_range: tuple[int, int] = (75, 95),
    progress: bool = True,
    *,
    crop_size: int = 512,
    area_fraction: tuple[float, float] = (0.05, 0.25),
    copymove_area_fraction: tuple[float, float] = (0.03, 0.12),
    generative_methods: Sequence[str] = GENERATIVE_METHODS,
) -> Path:
    """Build forged/pristine/mask triplets from a camera-labelled folder; returns ``out_dir``.

    ``camera_root`` is ``ROOT/<camera-model>/<images>`` (``../shared/cameras`` or a
    :func:`~noisead.data.simulate.simulate_cameras` output; other files are ignored). Splices
    need at least two camera models. See the module docstring for the layout and for what
    the ``"png"`` and ``"jpeg"`` variants mean exactly. Copy-moves use the smaller
    ``copymove_area_fraction`` (a region and its copy must fit side by side). Generative
    edits cycle through ``generative_methods``. Everything is drawn from
    ``SeedSequence([seed, kind, index, ...])``: reproducible, and paired across variants.
    """
    camera_root, out_dir = Path(camera_root), Path(out_dir)
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown kind {k!r}; expected some of {KINDS}")
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; expected some of {VARIANTS}")
    for m in generative_methods:
        if m not in GENERATIVE_METHODS:
            raise ValueError(f"unknown generative method {m!r}")
    q_lo, q_hi = int(jpeg_quality_range[0]), int(jpeg_quality_range[1])
    if not 1 <= q_lo <= q_hi <= 100:
        raise ValueError("jpeg_quality_range must satisfy 1 <= lo <= hi <= 100")
    cams = _list_cameras(camera_root)
    if not cams:
        raise FileNotFoundError(f"no camera folders with images under {camera_root}")
    if "splice" in kinds and len(cams) < 2:
        raise ValueError("splicing needs at least two camera models under camera_root")

    config = {
        "generator": "noisead.data.forge.make_benchmark",
        "camera_root": str(camera_root),
        "camera_models": sorted(cams),
        "n_per_kind": n_per_kind,
        "seed": seed,
        "jpeg_quality_range": [q_lo, q_hi],
        "crop_size": crop_size,
        "area_fraction": list(area_fraction),
        "copymove_area_fraction": list(copymove_area_fraction),
        "generative_methods": list(generative_methods),
    }
    records: dict[tuple[str, str], list[dict[str, Any]]] = {
        (k, v): [] for k in kinds for v in variants
    }
    bar = tqdm(total=len(kinds) * n_per_kind, desc="forge", unit="img", disable=not progress)
    for kind in kinds:
        af = copymove_area_fraction if kind == "copymove" else area_fraction
        for i in range(n_per_kind):
            plan = _plan_sample(kind, i, cams, camera_root, seed, crop_size, af, generative_methods)
            full = _load_rgb(plan["target_path"])
            ch, cw = min(crop_size, full.shape[0]), min(crop_size, full.shape[1])
            target0 = full[:ch, :cw]
            donor0 = _load_rgb(plan["donor_path"]) if kind == "splice" else None
            if donor0 is not None and (donor0.shape[0] < ch or donor0.shape[1] < cw):
                # A donor smaller than the crop could not cover every mask: use the
                # overlapping top-left area for the mask instead (keeps donor unscaled).
                ch, cw = min(ch, donor0.shape[0]), min(cw, donor0.shape[1])
                target0 = full[:ch, :cw]
            mask = MASK_MAKERS[plan["mask_shape"]]((ch, cw), plan["mask_rng"], af)
            q_rng = np.random.default_rng(np.random.SeedSequence(plan["seed_entropy"] + [2]))
            q_target = int(q_rng.integers(q_lo, q_hi + 1))
            q_donor = int(q_rng.integers(q_lo, q_hi + 1))
            name = f"{kind}-{i:04d}"
            for variant in variants:
                if variant == "jpeg":
                    target = _jpeg_roundtrip(target0, q_target)
                    donor = _jpeg_roundtrip(donor0, q_donor) if donor0 is not None else None
                else:
                    target, donor = target0, donor0
                edit_rng = np.random.default_rng(np.random.SeedSequence(plan["seed_entropy"] + [1]))
                rec: dict[str, Any] = {
                    "name": name,
                    "image": f"images/{name}.png",
                    "mask": f"masks/{name}.png",
                    "pristine": f"pristine/{name}.png",
                    "kind": kind,
                    "variant": variant,
                    "method": plan["method"],
                    "target_file": plan["target_file"],
                    "target_model": plan["target_model"],
                    "crop": [0, 0, ch, cw],
                    "mask_shape": plan["mask_shape"],
                    "mask_fraction": round(float(mask.mean()), 6),
                    "seed_entropy": plan["seed_entropy"],
                }
                if kind == "splice":
                    assert donor is not None
                    forged, (dy, dx) = splice(target, donor, mask, edit_rng, return_offset=True)
                    out_mask = mask
                    rec.update(
                        donor_file=plan["donor_file"],
                        donor_model=plan["donor_model"],
                        donor_offset=[dy, dx],
                    )
                elif kind == "generative":
                    forged = generative_like_edit(target, mask, edit_rng, plan["method"])
                    out_mask = mask
                else:
                    forged, out_mask, src = copy_move(
                        target, mask, edit_rng, return_source_mask=True
                    )
                    ys, xs = np.nonzero(src)
                    ty, tx = np.nonzero(out_mask)
                    rec.update(
                        copy_offset=[int(ty[0] - ys[0]), int(tx[0] - xs[0])],
                        source_overlap=int((src & out_mask).sum()),
                        mask_fraction=round(float(out_mask.mean()), 6),
                        mask_marks="target",
                    )
                if variant == "jpeg":
                    rec["jpeg_quality_target"] = q_target
                    if kind == "splice":
                        rec["jpeg_quality_donor"] = q_donor
                d = out_dir / f"{kind}-{variant}"
                _write_png(d / rec["image"], to_uint8(forged))
                _write_png(d / rec["mask"], out_mask)
                _write_png(d / rec["pristine"], to_uint8(target))
                records[(kind, variant)].append(rec)
            bar.update(1)
    bar.close()

    for (kind, variant), recs in records.items():
        manifest = {
            "kind": kind,
            "variant": variant,
            "config": config,
            "n_images": len(recs),
            "images": recs,
        }
        atomic_write_bytes(
            out_dir / f"{kind}-{variant}" / "manifest.json",
            (json.dumps(manifest, indent=1) + "\n").encode(),
        )
    return out_dir
