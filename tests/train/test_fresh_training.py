"""A training run whose batches bring freshly simulated camera models, and its resume."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from noisead.data.fresh_cameras import FreshCameraSpec
from noisead.data.patches import BatchSpec
from noisead.train.extractor import TrainConfig, read_training_log, train_extractor


def _write(root, rng, names, n_images=3, size=96):
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(n_images):
            small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
            img = Image.fromarray(small).resize((size, size), Image.BILINEAR)
            img.save(root / name / f"{i}.png")


def test_fresh_camera_run_trains_saves_its_config_and_resumes(tmp_path):
    rng = np.random.default_rng(0)
    _write(tmp_path / "cams", rng, ["camA", "camB", "camC"])
    _write(tmp_path, rng, ["scenes"], n_images=4)
    config = TrainConfig(
        model="dncnn-tiny", steps=2, lr=1e-3, val_fraction=0.0, precision="fp32",
        checkpoint_every=1, fingerprint_norm="patch",
        batch=BatchSpec(patch_size=16, models_per_batch=3, images_per_model=2,
                        positions_per_model=2),
        fresh_cameras=FreshCameraSpec(share=0.67, scenes=str(tmp_path / "scenes"), crop=80))
    run = tmp_path / "run"
    first = train_extractor([tmp_path / "cams"], run, config, progress=False)
    assert [h["step"] for h in first.history] == [1, 2]
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["fresh_cameras"] == {"share": 0.67, "scenes": str(tmp_path / "scenes"),
                                      "crop": 80}
    assert TrainConfig.from_dict(saved).fresh_cameras == config.fresh_cameras
    # the same run asked for more steps continues from its checkpoint
    config.steps = 4
    second = train_extractor([tmp_path / "cams"], run, config, progress=False)
    assert [h["step"] for h in second.history] == [1, 2, 3, 4]
    assert [h["step"] for h in read_training_log(run / "log.jsonl")] == [1, 2, 3, 4]
    assert all(np.isfinite(h["loss"]) for h in second.history)
