"""A localization loss on simulated splices: two cameras inside one patch.

The DBL loss (:mod:`noisead.train.loss`) compares whole patches, each from one camera.
The detector, though, compares the fingerprint *within* one image: its Gaussians mark
the part that does not belong. This term trains that directly. From a training batch it
builds composites: a host patch of camera A whose cell-aligned region (whole cells of
``cell`` pixels, 20-50 % of the patch, a rectangle or a blob) is replaced by the pixels
at the same place in a patch of another camera B. All patches of a batch lie on the
8-pixel grid, so host and donor share the colour-filter and JPEG phases: what tells the
two parts apart is the cameras' traces, not a shifted grid.

The network's fingerprint of each composite is cut into its cells, each cell is
standardized (as :func:`noisead.train.loss.standardize_patches` does for patches), and the
DBL loss is applied among the cells of that composite alone: a cell's positives are the
other cells from the same source. Cells of other composites are left out: two composites
may share a camera, and pushing them apart would be wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from noisead.train.loss import dbl_loss, standardize_patches

MIN_SHARE, MAX_SHARE = 0.2, 0.5  # of the patch's area taken by the donor


@dataclass(frozen=True)
class Composites:
    """Simulated splices built from a batch's patches."""

    patches: Tensor  # K x 3 x P x P: host pixels outside the region, donor pixels inside
    donor: Tensor    # K x P x P bool: True where the pixels come from the donor
    hosts: Tensor    # K indices into the batch: the host patch of each composite
    donors: Tensor   # K indices into the batch: the donor patch (another camera)


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """A uniform integer in [low, high] (both included)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def _rectangle(side: int, count_range: tuple[int, int],
               generator: torch.Generator | None) -> Tensor:
    """A ``side x side`` cell mask holding one rectangle whose area is in ``count_range``."""
    lo, hi = count_range
    shapes = [(h, w) for h in range(1, side + 1) for w in range(1, side + 1) if lo <= h * w <= hi]
    h, w = shapes[_randint(0, len(shapes) - 1, generator)]
    y, x = _randint(0, side - h, generator), _randint(0, side - w, generator)
    mask = torch.zeros(side, side, dtype=torch.bool)
    mask[y:y + h, x:x + w] = True
    return mask


def _blob(side: int, count: int, generator: torch.Generator | None) -> Tensor:
    """A ``side x side`` cell mask holding one 4-connected blob of ``count`` cells, grown
    from a random cell by adding a random neighbour at a time."""
    mask = torch.zeros(side, side, dtype=torch.bool)
    mask[_randint(0, side - 1, generator), _randint(0, side - 1, generator)] = True
    while int(mask.sum()) < count:
        grown = mask.clone()
        grown[1:] |= mask[:-1]
        grown[:-1] |= mask[1:]
        grown[:, 1:] |= mask[:, :-1]
        grown[:, :-1] |= mask[:, 1:]
        frontier = (grown & ~mask).flatten().nonzero().flatten()
        pick = frontier[_randint(0, len(frontier) - 1, generator)]
        mask.view(-1)[pick] = True
    return mask


def splice_region(patch_size: int, cell: int,
                  generator: torch.Generator | None = None) -> Tensor:
    """A random donor region: ``patch_size x patch_size`` bool, made of whole cells of
    ``cell`` pixels, covering 20-50 % of the patch, a rectangle or a blob (even odds)."""
    if cell <= 0 or patch_size % cell:
        raise ValueError(f"the cell ({cell}) must divide the patch size ({patch_size})")
    side = patch_size // cell
    total = side * side
    lo, hi = math.ceil(MIN_SHARE * total - 1e-9), math.floor(MAX_SHARE * total + 1e-9)
    if side < 2 or lo > hi:
        raise ValueError(f"a {patch_size}-pixel patch holds too few {cell}-pixel cells "
                         f"({total}) for a region of 20-50 %")
    if _randint(0, 1, generator):
        cells = _rectangle(side, (lo, hi), generator)
    else:
        cells = _blob(side, _randint(lo, hi, generator), generator)
    return cells.repeat_interleave(cell, 0).repeat_interleave(cell, 1)


def make_composites(patches: Tensor, cameras: list[str], count: int, cell: int,
                    generator: torch.Generator | None = None) -> Composites:
    """``count`` simulated splices from a batch (N x 3 x P x P, ``cameras`` its N labels).

    Each takes a random host patch and a random donor patch of another camera, and copies
    the donor's pixels into a random cell-aligned region (:func:`splice_region`).
    """
    n, _, p, p2 = patches.shape
    if p != p2 or len(cameras) != n:
        raise ValueError(f"need N x 3 x P x P patches and N camera labels, got "
                         f"{tuple(patches.shape)} and {len(cameras)} labels")
    index = {c: i for i, c in enumerate(dict.fromkeys(cameras))}
    model = torch.tensor([index[c] for c in cameras])
    if len(index) < 2:
        raise ValueError("simulated splices need patches of at least two cameras")
    hosts = torch.randint(0, n, (count,), generator=generator)
    donors = torch.empty_like(hosts)
    for k, h in enumerate(hosts.tolist()):
        others = (model != model[h]).nonzero().flatten()
        donors[k] = others[_randint(0, len(others) - 1, generator)]
    donor = torch.stack([splice_region(p, cell, generator) for _ in range(count)])
    inside = donor[:, None].to(patches.device)
    mixed = torch.where(inside, patches[donors.to(patches.device)],
                        patches[hosts.to(patches.device)])
    return Composites(mixed, donor, hosts, donors)


def cells_of(maps: Tensor, cell: int) -> Tensor:
    """K x C x P x P maps as K x M x C x cell x cell, the M = (P / cell)^2 cells in
    row-major order."""
    k, c, p, _ = maps.shape
    side = p // cell
    grid = maps.reshape(k, c, side, cell, side, cell).permute(0, 2, 4, 1, 3, 5)
    return grid.reshape(k, side * side, c, cell, cell)


def localization_loss(fingerprints: Tensor, donor: Tensor, cell: int, *,
                      temperature: float = 0.1) -> Tensor:
    """Mean over composites of the DBL loss among each composite's standardized cells,
    positives being the cells from the same source (host or donor).

    ``fingerprints``: K x C x P x P, the network's output on the composites;
    ``donor``: K x P x P bool, where the donor's pixels are (cell-aligned).
    """
    k, _, p, _ = fingerprints.shape
    if donor.shape != (k, p, p):
        raise ValueError(f"donor mask must be {k}x{p}x{p}, got {tuple(donor.shape)}")
    cells = cells_of(fingerprints.float(), cell)
    m = cells.shape[1]
    features = standardize_patches(cells.reshape(k * m, *cells.shape[2:])).reshape(cells.shape)
    source = cells_of(donor[:, None].float(), cell).flatten(2).mean(dim=2) > 0.5  # K x M
    same = source[:, :, None] == source[:, None, :]
    terms = [dbl_loss(features[i], same[i].to(features.device), temperature=temperature)
             for i in range(k)]
    return torch.stack(terms).mean()
