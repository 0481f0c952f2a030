"""Build the bundled example forgery (src/noisead/examples/), reproducibly.

Sources: scikit-image's sample images "astronaut" (NASA, public domain) and "coffee"
(Rachel Michetti, CC0). Each is rendered through a different simulated camera pipeline
(noisead.data.simulate), then an object-like region of the coffee image is spliced into
the astronaut image. Needs scikit-image only here, not at run time:

    .venv/bin/pip install scikit-image && .venv/bin/python scripts/make_example.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import data

from noisead.data.forge import object_like_mask, splice
from noisead.data.simulate import random_camera_model, render
from noisead.io import save_json, save_png, to_uint8

OUT = Path(__file__).resolve().parents[1] / "src" / "noisead" / "examples"


def main() -> None:
    rng = np.random.default_rng(2026)
    target_scene = data.astronaut().astype(np.float32) / 255.0
    donor_scene = data.coffee().astype(np.float32) / 255.0
    cam_t = random_camera_model(101, "example-camera-a")
    cam_d = random_camera_model(202, "example-camera-b")
    target, _ = render(target_scene, cam_t, rng)
    donor, _ = render(donor_scene, cam_d, rng)
    mask = object_like_mask(target.shape[:2], rng, area_fraction=(0.06, 0.1))
    forged = splice(target, donor, mask, rng)
    save_png(OUT / "spliced.png", to_uint8(forged))
    save_png(OUT / "spliced.mask.png", mask)
    save_json(OUT / "spliced.json", {
        "description": "astronaut (camera A) with a region of coffee (camera B) spliced in",
        "sources": {"astronaut": "scikit-image data, NASA, public domain",
                    "coffee": "scikit-image data, Rachel Michetti, CC0"},
        "camera_a": cam_t.to_dict(), "camera_b": cam_d.to_dict(),
        "tampered_fraction": float(mask.mean())})
    print(f"wrote {OUT / 'spliced.png'} ({forged.shape[1]}x{forged.shape[0]}), "
          f"tampered fraction {mask.mean():.3f}")


if __name__ == "__main__":
    main()
