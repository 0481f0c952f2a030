"""Camera-pipeline simulator: synthetic "camera models" rendered over natural scenes.

Why: camera-labelled photographs are scarce (``../shared/cameras`` holds 32 models), yet a
Noiseprint-style extractor learns *camera-model* traces (colour-filter array, demosaicing,
sensor noise, in-camera processing, JPEG tables) from many models. A simulated camera model
is a fixed, seeded pipeline; rendering the same scenes through many such pipelines gives as
many labelled "cameras" as we like, with the traces known exactly.

Pipeline of :func:`render` (one :class:`CameraModelSpec`):

1. crop the scene top-left to multiples of 16, so that the CFA period (2) and the JPEG 8x8
   grid (and the 16x16 MCU of 4:2:0) start at (0, 0);
2. linearize (inverse sRGB: the scenes are display-referred sRGB);
3. undo the colour matrix and the white-balance gains (scene → camera raw);
4. mosaic with the model's CFA pattern (RGGB, BGGR, GRBG, GBRG);
5. fixed-pattern PRNU-like multiplicative noise (per model, seeded, optional);
6. Poisson-Gaussian signal-dependent sensor noise, variance ``a * x + b**2``;
7. clip to the sensor range [0, 1] and demosaic (bilinear, Malvar-He-Cutler 2004, Menon 2007);
8. optional denoising (edge-preserving, in camera space);
9. white-balance gains and the 3x3 colour matrix (rows sum to 1: white stays white);
10. tone curve (sRGB, power-law gamma, or sRGB followed by an S-curve);
11. optional sharpening (unsharp mask, per-model radius and amount);
12. 8-bit quantization and JPEG with the model's quality or custom quantization tables and
    chroma subsampling — or lossless PNG output.

Scenes are first downscaled (:func:`downscale_scene`, antialiased area filter, default factor
2) to wash out the traces of the camera and codec they came from. The scenes in
``../shared/scenes/cvip`` are **already downscaled 2x** (Lanczos): pass ``downscale=1`` for
them (a second 2x would only cost resolution).

Reproducibility: a model is a pure function of its seed (:func:`random_camera_model`); a
rendered image is a pure function of (scene, spec, rng state); :func:`simulate_cameras`
derives every random stream from ``SeedSequence([seed, ...])``, so the same seed writes
byte-identical files whatever the number of worker processes.

One module a job: :mod:`~noisead.data.simulate.spec` (the model), :mod:`~.stages` (the
pipeline's stages), :mod:`~.photograph` (one photograph, :func:`render`), :mod:`~.draw`
(random models) and :mod:`~.folders` (whole folders); JPEG tables and encoding are
:mod:`noisead.io.jpeg`'s.
"""

# Each module lists its public names in __all__; the package re-exports them all.
from noisead.data.simulate import draw, folders, photograph, spec, stages
from noisead.data.simulate.draw import *  # noqa: F403
from noisead.data.simulate.folders import *  # noqa: F403
from noisead.data.simulate.photograph import *  # noqa: F403
from noisead.data.simulate.spec import *  # noqa: F403
from noisead.data.simulate.stages import *  # noqa: F403

__all__ = [*spec.__all__, *stages.__all__, *photograph.__all__, *draw.__all__, *folders.__all__]
