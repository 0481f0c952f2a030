"""Forgery benchmark builders: splice, generative-like edit, copy-move — with exact masks.

Why: public splicing benchmarks cannot be had here, and even where they can, their masks
and source cameras are approximate. Building forgeries ourselves from camera-labelled
images (``../shared/cameras`` or a :func:`noisead.data.simulate.simulate_cameras` folder)
gives pixel-exact masks, known source and donor camera models, and the untouched pristine
counterpart of every forged image, so false positives can be measured on the same content.

Array functions (``float32 HxWx3 [0, 1]`` images, ``bool HxW`` masks, ``True`` = tampered):

- mask makers :func:`random_blob_mask`, :func:`random_polygon_mask`, :func:`object_like_mask`
  (a seeded ``rng`` in, a mask whose tampered fraction lies in ``area_fraction`` out);
- :func:`splice` — the masked region comes from a donor image of *another* camera model,
  not rescaled, so the donor's CFA/demosaicing/JPEG traces survive (at a random phase);
- :func:`generative_like_edit` — the region is re-synthesized so its camera traces are gone
  (our stand-in for generative inpainting such as DALL-E edits);
- :func:`copy_move` — the region is copied elsewhere in the same image; the returned mask
  marks the pasted **target** only (the source is pristine content, and a camera-trace
  detector can only be expected to flag the pasted copy when it breaks the local trace
  phase; ``return_source_mask=True`` also returns the source).

All three edits change pixels **only inside the mask** (outside, the result is bit-equal to
the input), so ``forged == pristine`` wherever ``mask`` is False.

:func:`make_benchmark` writes a folder per (kind, variant)::

    out_dir/<kind>-<variant>/images/NAME.png     forged image (lossless PNG)
    out_dir/<kind>-<variant>/masks/NAME.png      0 / 255 (255 = tampered)
    out_dir/<kind>-<variant>/pristine/NAME.png   the same crop without the edit
    out_dir/<kind>-<variant>/manifest.json       per image: sources, camera models, mask
                                                 fraction, method, parameters, seed

Variants — precisely:

- ``"png"``: the sources are the decoded camera images **as they are** (for real cameras
  and JPEG-output simulated models they carry the camera's own JPEG; for PNG-output
  simulated models none). Nothing is compressed by the benchmark.
- ``"jpeg"``: each source (target crop and, for splices, the donor image) is additionally
  JPEG-compressed by the benchmark **before** the edit, with a random quality drawn from
  ``jpeg_quality_range`` (4:2:0, grid aligned at (0, 0)), and decoded back; the edit is
  applied to that decoded image. This mimics editing a photo that was shared once.

In both variants the results (forged, pristine, mask) are always saved losslessly (PNG),
never re-compressed after the edit. Forged images are top-left crops (``crop_size``, default
512x512, or the whole image if smaller), so the JPEG 8x8 grid and the CFA phase of the
target stay aligned at (0, 0). The same ``(seed, kind, index)`` gives the same sources,
mask and edit in both variants (paired), and the same seed gives byte-identical files.

Images are decoded with PIL directly and **without** EXIF transposition, on purpose:
rotating would move the CFA phase and the JPEG grid away from (0, 0).

One module a job: :mod:`~noisead.data.forge.masks`, :mod:`~noisead.data.forge.edits` and
:mod:`~noisead.data.forge.benchmark` (the folders).
"""

from noisead.data.forge.benchmark import KINDS, VARIANTS, make_benchmark
from noisead.data.forge.edits import GENERATIVE_METHODS, copy_move, generative_like_edit, splice
from noisead.data.forge.masks import object_like_mask, random_blob_mask, random_polygon_mask

__all__ = [
    "GENERATIVE_METHODS",
    "KINDS",
    "VARIANTS",
    "copy_move",
    "generative_like_edit",
    "make_benchmark",
    "object_like_mask",
    "random_blob_mask",
    "random_polygon_mask",
    "splice",
]
