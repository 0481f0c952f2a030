"""Item 1: every output of a batch run shows the decision of ``Analysis.verdict``.

The pixel mask draws the mask and nothing else: an image with pixels above the pixel
threshold but a score below the decision threshold is "not flagged" everywhere (the old
CLI line said "TAMPERED?" whenever any pixel reached the threshold).
"""

from __future__ import annotations

import json

import numpy as np
from batch_support import CheapAnalysis, read_csv, run, write_image
from PIL import Image

from noisead.anomaly.detector import DetectorConfig
from noisead.anomaly.fit import fit_detector
from noisead.cli import main
from noisead.models.registry import create_model


def test_mask_pixels_do_not_flag_an_image_the_verdict_clears(tmp_path):
    image = write_image(tmp_path / "in" / "photo.png", seed=1)
    out = tmp_path / "out"
    report = run([image], out, CheapAnalysis(score=0.5, mask_all=True))
    saved = json.loads((out / "photo.json").read_text())
    assert saved["tampered_fraction"] == 1.0  # every pixel is above the pixel threshold
    verdict = saved["decision"]
    assert verdict["decision"] == "not flagged" and verdict["text"].startswith("Not flagged")
    (row,) = read_csv(out / "summary.csv")
    assert row["decision"] == "not flagged" and row["verdict"] == verdict["text"]
    assert row["score"] == "0.500000"
    page = (out / "report.html").read_text()
    assert "not flagged" in page and "above threshold" not in page
    assert report.done[0].verdict == verdict["text"]


def test_a_flagged_image_is_flagged_everywhere(tmp_path):
    image = write_image(tmp_path / "in" / "photo.png", seed=1)
    out = tmp_path / "out"
    run([image], out, CheapAnalysis(score=0.999))
    verdict = json.loads((out / "photo.json").read_text())["decision"]
    assert verdict["decision"] == "flagged"
    (row,) = read_csv(out / "summary.csv")
    assert row["decision"] == "flagged" and row["verdict"] == verdict["text"]
    assert 'class="flagged">flagged<' in (out / "report.html").read_text()


def test_an_image_smaller_than_a_patch_is_unjudged_not_failed(tmp_path):
    tiny = write_image(tmp_path / "in" / "tiny.png", seed=2, size=8)
    out = tmp_path / "out"
    report = run([tiny], out)
    assert not report.failed
    (row,) = read_csv(out / "summary.csv")
    assert row["decision"] == "not enough texture to judge" and row["score"] == ""
    assert "at least 16x16" in row["verdict"] and "No score" in row["verdict"]
    assert read_csv(out / "failures.csv") == []
    saved = json.loads((out / "tiny.json").read_text())
    assert saved["score"] is None
    assert saved["decision"]["decision"] == "not enough texture to judge"
    assert saved["input"]["sha256"] and saved["input"]["size"] == tiny.stat().st_size


def test_cli_line_is_the_verdict_sentence(tmp_path, capsys):
    """The real CLI and a real (tiny) detector: whatever the scores, the line printed for
    each image is its JSON's verdict sentence, never the old mask-based words."""
    torch = __import__("torch")
    torch.manual_seed(0)
    pristine = [np.random.default_rng(i).random((96, 96, 3), dtype=np.float32)
                for i in range(3)]
    det = fit_detector(create_model("dncnn-tiny"), pristine,
                       DetectorConfig(patch_size=32, crop_size=64, tile=128), progress=False)
    model = det.save(tmp_path / "tiny.safetensors", name="tiny")
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(folder / "a.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "small.png")
    out = tmp_path / "out"
    code = main(["--quiet", "analyze", str(folder), "-o", str(out), "--model", str(model),
                 "--threshold", "0.0"])  # every pixel in the mask
    printed = capsys.readouterr().out
    assert code == 0
    assert "TAMPERED?" not in printed and "no detection" not in printed
    for stem in ("a", "small"):
        text = json.loads((out / f"{stem}.json").read_text())["decision"]["text"]
        assert f"{folder / stem}.png: {text}" in printed
