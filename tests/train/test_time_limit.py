"""A run's time limit in CPU seconds: what a campaign at equal CPU time needs."""

from __future__ import annotations

import numpy as np
from PIL import Image

from noisead.data.patches import BatchSpec
from noisead.train.extractor import TrainConfig, train_extractor


def test_cpu_time_limit_stops_the_run_and_logs_cpu_seconds(tmp_path):
    rng = np.random.default_rng(0)
    for m in range(3):
        (tmp_path / "cams" / f"cam{m}").mkdir(parents=True)
        for i in range(3):
            img = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / "cams" / f"cam{m}" / f"{i}.png")
    config = TrainConfig(model="dncnn-tiny", steps=1000, val_fraction=0.0, precision="fp32",
                         time_limit_s=0.0, time_limit_cpu=True, scale_penalty=0.01,
                         batch=BatchSpec(patch_size=16, models_per_batch=3,
                                         images_per_model=2, positions_per_model=2))
    result = train_extractor([tmp_path / "cams"], tmp_path / "run", config, progress=False)
    assert [h["step"] for h in result.history] == [1]  # over the limit after one step
    record = result.history[0]
    assert record["cpu_seconds"] > 0 and np.isfinite(record["loss"])
    assert (tmp_path / "run" / "checkpoint.safetensors").is_file()
