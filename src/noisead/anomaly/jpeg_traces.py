"""JPEG lattice consistency: which 8x8 blocks were *not* quantized like the rest of the image.

Why this module exists: a photo that was once a JPEG keeps, in every 8x8 block of its grid,
DCT coefficients that sit on the lattice of that JPEG's quantization steps — also after it is
decoded and saved losslessly. A region pasted from another image (its own grid at another
phase, other steps, or no JPEG at all) or re-synthesized by an editor does not. This is the
classic JPEG-forensics cue of Lin et al. (2009) and Bianchi & Piva (2012, "aligned and
non-aligned double JPEG"), here in its simplest, training-free form:

1. :func:`find_jpeg_grid` — the grid phase: the offset at which the most AC coefficients
   of the luma's 8x8 DCT are (near) zero;
2. :func:`estimate_quantization` — per DCT frequency, the largest step ``q`` on whose
   lattice the coefficients that were not quantized to zero lie, up to rounding noise;
3. :func:`block_log_likelihood_ratio` — per block, the log-likelihood ratio of "foreign"
   (coefficient uniform between lattice points) against "host" (on the lattice up to the
   decoder's rounding noise), summed over the block's informative coefficients (those far
   enough from zero that a lattice point other than 0 is the nearest);
4. :func:`jpeg_lattice_deviation` — the windowed sum of those ratios, as a signed z-like
   score ``sign(L) * sqrt(2 |L|)`` (the value of a standard normal deviate whose likelihood
   ratio is ``L``), upsampled to pixels.

When the image shows no JPEG lattice — never compressed, resized, rotated, recompressed at
quality 100, a 16-bit source — :func:`jpeg_lattice_deviation` returns ``None`` and a
detector simply goes without it. It cannot see an edit that was itself JPEG-compressed
afterwards on the same grid (the last compression puts every block on one lattice again):
that is double-compression analysis, not done here.

House types: images are ``float`` ``H x W x 3`` RGB in ``[0, 1]`` as decoded from 8 bits
(``H x W`` gray too); maps are ``float32`` ``H x W``, higher = more suspicious.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

from noisead.anomaly.noise_statistics import as_rgb

__all__ = [
    "JpegLattice",
    "block_dct",
    "block_log_likelihood_ratio",
    "estimate_quantization",
    "find_jpeg_grid",
    "jpeg_lattice",
    "jpeg_lattice_deviation",
]

BLOCK = 8
#: Largest quantization step looked for (IJG quality 50 has luma steps up to 121; steps
#: this coarse leave few informative coefficients, and the estimate needs many).
MAX_STEP = 64
#: The smallest step that is evidence: at steps 1-2 the decoder's rounding noise (sigma
#: about 0.4 in DCT units) already covers half the lattice spacing.
MIN_STEP = 3
#: The DC coefficient is left out everywhere: in a flat block every pixel rounds the same
#: way, so the decoded DC sits up to 8 x 0.5 = 4 off its lattice point — a smooth sky would
#: look foreign. The 63 AC coefficients carry the evidence.
#: Coefficients smaller than this were quantized to zero (for any step >= MIN_STEP) and
#: say nothing about the step.
ZERO_BIN = 1.5
#: At most this many non-zero coefficients per frequency enter the step estimate.
MAX_FIT_SAMPLES = 5000
#: A coefficient within this of a lattice point is on the lattice (the decoder's rounding
#: noise has a sigma near 0.4 in DCT units, so nearly all host coefficients are).
ON_LATTICE = 1.0
#: Least excess share of on-lattice coefficients for a step to be found.
MIN_EXCESS = 0.5
#: Steps whose excess is within this of the best tie (divisors of the true step).
EXCESS_TIE = 0.1
#: Fewest informative coefficients for a frequency's step to be estimated.
MIN_COEFFICIENTS = 50
#: Fewest frequencies with a step >= MIN_STEP for the image to count as JPEG-decoded.
MIN_FREQUENCIES = 3
#: Weight of the uniform component in the host model: a host coefficient can be off its
#: lattice (clipped pixels, the encoder's integer DCT), and one such must not be decisive.
HOST_OUTLIER = 0.05


@dataclass(frozen=True)
class JpegLattice:
    """What the image's JPEG history looks like: grid phase, steps and rounding noise.

    ``steps[u, v]`` is the estimated quantization step of DCT frequency ``(u, v)`` of the
    luma, 0 where it could not be estimated or is below :data:`MIN_STEP`; ``noise[u, v]``
    the spread (sigma) of coefficients around their lattice point. ``offset`` is the (row,
    column) of the first full block's top-left pixel.
    """

    offset: tuple[int, int]
    steps: np.ndarray
    noise: np.ndarray

    @property
    def n_frequencies(self) -> int:
        return int((self.steps >= MIN_STEP).sum())


def _decoded_planes(image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """JPEG's luma (BT.601, full range) minus 128, and the saturated pixels (a channel at 0
    or 255), of an image in [0, 1]; ``None`` when the image is too small to hold a lattice
    or its values are not 8-bit ones (``k / 255``: 16-bit, resampled floats)."""
    img = as_rgb(image, np.float32)  # validates: H x W (x 1 or 3), finite, not empty
    if img.shape[0] < 4 * BLOCK or img.shape[1] < 4 * BLOCK:
        return None
    sample = img[::7, ::7] * np.float32(255.0)
    if np.abs(sample - np.round(sample)).mean() > 0.01:
        return None
    luma = img @ (np.array([0.299, 0.587, 0.114], np.float32) * np.float32(255.0))
    luma -= np.float32(128.0)
    saturated = (img <= np.float32(0.5 / 255)).any(axis=-1)
    saturated |= (img >= np.float32(254.5 / 255)).any(axis=-1)
    return luma, saturated


def block_dct(luma: np.ndarray, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Orthonormal 8x8 DCT-II of every full block from ``offset``: ``(rows, cols, 8, 8)``.

    The orthonormal 2-D DCT-II of an 8x8 block is exactly the JPEG forward DCT, so the
    coefficients are in the units of JPEG's quantization tables.
    """
    dy, dx = offset
    h = (luma.shape[0] - dy) // BLOCK
    w = (luma.shape[1] - dx) // BLOCK
    if h < 1 or w < 1:
        return np.zeros((0, 0, BLOCK, BLOCK), np.float32)
    crop = luma[dy:dy + h * BLOCK, dx:dx + w * BLOCK]
    blocks = crop.reshape(h, BLOCK, w, BLOCK).transpose(0, 2, 1, 3)
    return fft.dctn(blocks, axes=(2, 3), norm="ortho", workers=-1).astype(np.float32,
                                                                           copy=False)


def _clipped_blocks(saturated: np.ndarray, offset: tuple[int, int],
                    shape: tuple[int, int]) -> np.ndarray:
    """Blocks with a saturated pixel (0 or 255): clipping moves them off their lattice."""
    dy, dx = offset
    h, w = shape
    sat = saturated[dy:dy + h * BLOCK, dx:dx + w * BLOCK].reshape(h, BLOCK, w, BLOCK)
    return sat.any(axis=(1, 3))


def find_jpeg_grid(luma: np.ndarray, *, max_blocks: int = 4000, seed: int = 0
                   ) -> tuple[int, int]:
    """The grid phase at which the most AC coefficients are near zero.

    Quantization sends most high-frequency coefficients to exactly zero on the true grid;
    on any other phase a block straddles two blocks' edges and those coefficients are not
    small. Counted on a fixed random sample of block positions, so the cost does not grow
    with the image.
    """
    rng = np.random.default_rng(seed)
    rows = (luma.shape[0] - BLOCK) // BLOCK
    cols = (luma.shape[1] - BLOCK) // BLOCK
    if rows < 1 or cols < 1:
        return (0, 0)
    n = min(max_blocks, rows * cols)
    pick = rng.choice(rows * cols, size=n, replace=False)
    ys, xs = (pick // cols) * BLOCK, (pick % cols) * BLOCK
    ii = np.arange(BLOCK)
    best, best_score = (0, 0), -1.0
    for dy in range(BLOCK):
        for dx in range(BLOCK):
            patches = luma[(ys + dy)[:, None, None] + ii[None, :, None],
                           (xs + dx)[:, None, None] + ii[None, None, :]]
            coef = fft.dctn(patches, axes=(1, 2), norm="ortho")
            small = np.abs(coef) < 0.5
            small[:, 0, 0] = False
            score = float(small.mean())
            if score > best_score:
                best, best_score = (dy, dx), score
    return best


def estimate_quantization(coefficients: np.ndarray, *, max_blocks: int = 20000, seed: int = 0
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Per frequency, the lattice step the coefficients lie on, and their spread.

    ``coefficients``: ``(N, 8, 8)`` block DCTs. Returns ``(steps, noise)``, both 8x8;
    ``steps`` is 0 where no step >= :data:`MIN_STEP` is found. Only coefficients that were
    *not* quantized to zero count (``|c| >= ZERO_BIN``, the same set for every step). For a
    step ``q``, the share of them within :data:`ON_LATTICE` of a multiple of ``q``, minus
    the share that chance puts there (``2 ON_LATTICE / q``), over ``1 -`` that chance, is an
    estimate of the share of blocks quantized with ``q`` (or a multiple of it): call it the
    *excess*. The true step and all its divisors have the same excess, a foreign region
    lowers all of them alike, and a larger step or a non-divisor has far less; so the step is
    the largest whose excess is within :data:`EXCESS_TIE` of the best, if the best exceeds
    :data:`MIN_EXCESS`. After an aligned recompression with finer steps this finds the first
    compression's steps (multiples of the second's), so a region compressed only once, by
    the second, still stands out.
    """
    c = coefficients.reshape(-1, BLOCK * BLOCK)
    if c.shape[0] > max_blocks:
        rng = np.random.default_rng(seed)
        c = c[rng.choice(c.shape[0], size=max_blocks, replace=False)]
    steps = np.zeros(BLOCK * BLOCK, np.int32)
    noise = np.zeros(BLOCK * BLOCK, np.float32)
    candidates = np.arange(2, MAX_STEP + 1, dtype=np.float32)
    chance = np.minimum(2 * ON_LATTICE / candidates, 1.0)
    for f in range(1, BLOCK * BLOCK):  # not DC: see the note on the DC coefficient above
        values = c[:, f].astype(np.float32)
        values = values[np.abs(values) >= ZERO_BIN]
        if values.size < MIN_COEFFICIENTS:
            continue
        if values.size > MAX_FIT_SAMPLES:
            values = values[:MAX_FIT_SAMPLES]
        ratio = values[:, None] / candidates[None, :]
        d = np.abs(ratio - np.round(ratio)) * candidates[None, :]
        on = (d < ON_LATTICE).mean(axis=0)
        excess = (on - chance) / np.maximum(1.0 - chance, 1e-6)
        best = float(excess.max())
        if best <= MIN_EXCESS:
            continue
        q = float(candidates[np.flatnonzero(excess >= best - EXCESS_TIE)[-1]])
        if q < MIN_STEP:
            continue
        dist = np.abs(values - q * np.round(values / q))
        # Median of a half-normal is 0.674 sigma; the floor is the decoder's rounding.
        sigma = max(float(np.median(dist)) / 0.674, 0.3)
        steps[f] = int(q)
        noise[f] = min(sigma, q / 4)
    return steps.reshape(BLOCK, BLOCK), noise.reshape(BLOCK, BLOCK)


def _find_lattice(luma: np.ndarray, saturated: np.ndarray
                  ) -> tuple[JpegLattice, np.ndarray, np.ndarray] | None:
    """The lattice, with the block DCTs and clipped blocks computed on the way."""
    offset = find_jpeg_grid(luma)
    coef = block_dct(luma, offset)
    clipped = _clipped_blocks(saturated, offset, coef.shape[:2])
    usable = np.flatnonzero(~clipped.ravel())
    if usable.size < MIN_COEFFICIENTS:
        return None
    steps, noise = estimate_quantization(_sampled_blocks(coef, usable))
    lattice = JpegLattice(offset, steps, noise)
    if lattice.n_frequencies < MIN_FREQUENCIES:
        return None
    return lattice, coef, clipped


def _sampled_blocks(coef: np.ndarray, usable: np.ndarray, max_blocks: int = 20000,
                    seed: int = 0) -> np.ndarray:
    """The blocks ``usable`` (flat indices) of ``coef``, or the random sample of them that
    :func:`estimate_quantization` would draw: only those are copied."""
    if usable.size > max_blocks:
        usable = usable[np.random.default_rng(seed).choice(usable.size, size=max_blocks,
                                                           replace=False)]
    return coef.reshape(-1, BLOCK, BLOCK)[usable]


def jpeg_lattice(image: np.ndarray) -> JpegLattice | None:
    """The image's JPEG grid and steps, or ``None`` when it shows no JPEG lattice.

    Pixel values must be the decoded 8-bit ones (``k / 255``); an image that is not on
    that grid (16-bit, resampled floats) has no lattice to find and gives ``None``.
    """
    planes = _decoded_planes(image)
    found = None if planes is None else _find_lattice(*planes)
    return None if found is None else found[0]


def block_log_likelihood_ratio(coefficients: np.ndarray, lattice: JpegLattice
                               ) -> tuple[np.ndarray, np.ndarray]:
    """Per block: the log-likelihood ratio "foreign" : "host", and how many coefficients
    were informative. ``coefficients``: ``(rows, cols, 8, 8)``; returns two ``(rows, cols)``.

    For a frequency with step ``q`` and a coefficient ``|c| >= q / 2``, the distance ``d``
    to the nearest lattice point is uniform on ``[0, q/2]`` for a foreign block and
    half-normal with the lattice's noise for a host block (with a :data:`HOST_OUTLIER`
    share of uniform). Coefficients quantized to zero say nothing either way: a smooth
    region is neutral, not suspicious. Computed a band of block rows at a time, so the
    temporaries stay small whatever the image size.
    """
    rows, cols = coefficients.shape[:2]
    llr = np.empty((rows, cols), np.float32)
    informative = np.empty((rows, cols), np.int32)
    band = max(1, _LLR_VALUES // max(1, cols * BLOCK * BLOCK))
    for r0 in range(0, rows, band):
        llr[r0:r0 + band], informative[r0:r0 + band] = _band_llr(
            coefficients[r0:r0 + band], lattice)
    return llr, informative


#: Coefficients per band in :func:`block_log_likelihood_ratio` (a few MB of temporaries).
_LLR_VALUES = 1 << 20


def _band_llr(coefficients: np.ndarray, lattice: JpegLattice) -> tuple[np.ndarray, np.ndarray]:
    """:func:`block_log_likelihood_ratio` of one band of block rows."""
    steps = lattice.steps.astype(np.float32)
    use = steps >= MIN_STEP
    q = steps[use]
    sigma = lattice.noise[use]
    c = coefficients[..., use]                                   # rows x cols x F
    informative = np.abs(c) >= q / 2
    d = np.abs(c - q * np.round(c / q))
    uniform = 2.0 / q
    half_normal = (2.0 / (sigma * np.sqrt(2 * np.pi))) * np.exp(-0.5 * (d / sigma) ** 2)
    host = (1 - HOST_OUTLIER) * half_normal + HOST_OUTLIER * uniform
    llr = np.where(informative, np.log(uniform) - np.log(host), 0.0)
    return llr.sum(axis=-1).astype(np.float32), informative.sum(axis=-1).astype(np.int32)


def jpeg_lattice_deviation(image: np.ndarray, *, window: int = 3,
                           lattice: JpegLattice | None = None) -> np.ndarray | None:
    """A per-pixel score of how far the local blocks are from the image's JPEG lattice.

    The log-likelihood ratios of the ``window x window`` blocks around each block are
    summed (independent coefficients: the ratios add) and mapped to a signed z-like score,
    ``sign(L) * sqrt(2 |L|)``, so a region with much evidence of being foreign scores high,
    host regions score below zero, and smooth regions (no informative coefficient) score 0.
    Blocks with a saturated pixel are left neutral. Pixels outside the full-block grid take
    the nearest block's score. ``None`` when the image shows no JPEG lattice.
    """
    h, w = np.asarray(image).shape[:2]
    planes = _decoded_planes(image)
    if planes is None:
        return None
    luma, saturated = planes
    if lattice is None:
        found = _find_lattice(luma, saturated)
        if found is None:
            return None
        lattice, coef, clipped = found
    else:
        coef = block_dct(luma, lattice.offset)
        clipped = _clipped_blocks(saturated, lattice.offset, coef.shape[:2])
    del luma, saturated
    llr, _ = block_log_likelihood_ratio(coef, lattice)
    del coef
    llr[clipped] = 0.0
    total = ndimage.uniform_filter(llr, size=window, mode="constant") * np.float32(window ** 2)
    z = np.sign(total) * np.sqrt(2.0 * np.abs(total))
    # Blocks to pixels: each pixel takes its block's value; borders the nearest block's.
    dy, dx = lattice.offset
    rows = np.clip((np.arange(h) - dy) // BLOCK, 0, z.shape[0] - 1)
    cols = np.clip((np.arange(w) - dx) // BLOCK, 0, z.shape[1] - 1)
    return z[rows[:, None], cols[None, :]].astype(np.float32, copy=False)
