"""``noisead analyze`` with a real (tiny) detector: JSON lines on stdout, exit codes,
standard input, quoted globs, --outputs; and ``noisead export``. Every JSON it writes or
prints is validated against the shipped schema."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_support import json_lines, noise_image, results
from PIL import Image

from noisead.anomaly.detector import Detector
from noisead.cli import main


def test_json_lines_on_stdout_and_exit_codes(tmp_path, models, capsys):
    folder = tmp_path / "in"
    a, b = noise_image(folder / "a.png", 1), noise_image(folder / "b.png", 2)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out"
    code = main(["analyze", str(folder), "-o", str(out), "--model", str(models["flag_all"]),
                 "--json", "--quiet", "--fail-on-detection"])
    printed = capsys.readouterr()
    assert code == 1  # a failure wins over the detections
    lines = json_lines(printed.out)
    assert [(Path(d["input"]["path"]).name, d["outcome"]) for d in lines] == [
        ("a.png", "analysed"), ("b.png", "analysed"), ("broken.png", "failed")]
    saved = results(out)
    for line in lines[:2]:
        assert line["decision"]["decision"] == "flagged"
        assert {k: v for k, v in line.items() if k != "outcome"} == saved[line["output"]]
    assert "broken.png" in lines[2]["error"]
    assert "a.png: Flagged" in printed.err and "1 failed" in printed.err  # people: stderr

    code = main(["analyze", str(a), str(b), "-o", str(out), "--model",
                 str(models["flag_all"]), "--json", "--fail-on-detection"])
    printed = capsys.readouterr()
    assert code == 3  # flagged (skipped results count: they are this run's inputs)
    assert [d["outcome"] for d in json_lines(printed.out)] == ["skipped", "skipped"]
    assert main(["analyze", str(a), "-o", str(out), "--model", str(models["flag_all"]),
                 "--quiet"]) == 0  # without --fail-on-detection a detection is no error
    assert main(["analyze", str(a), "-o", str(tmp_path / "clear"), "--model",
                 str(models["flag_none"]), "--quiet", "--fail-on-detection"]) == 0


def test_without_json_lines_for_people_stay_on_stdout(tmp_path, models, capsys):
    image = noise_image(tmp_path / "a.png", 1)
    assert main(["analyze", str(image), "-o", str(tmp_path / "out"), "--model",
                 str(models["flag_none"]), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "a.png: Not flagged" in printed and "1 analysed" in printed
    assert not printed.lstrip().startswith("{")


class _Pipe(io.TextIOWrapper):
    """A standard input fed by a pipe: bytes in ``.buffer``, not a terminal."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))


def test_dash_reads_one_image_from_stdin(tmp_path, models, capsys, monkeypatch):
    data = noise_image(tmp_path / "a.png", 1).read_bytes()
    out = tmp_path / "out"
    argv = ["analyze", "-", "-o", str(out), "--model", str(models["flag_none"]), "--json",
            "--quiet"]
    monkeypatch.setattr(sys, "stdin", _Pipe(data))
    assert main(argv) == 0
    (line,) = json_lines(capsys.readouterr().out)
    digest = hashlib.sha256(data).hexdigest()
    kept = out / "stdin" / f"stdin-{digest[:12]}"
    assert line["outcome"] == "analysed" and line["input"]["path"] == str(kept)
    assert line["input"]["sha256"] == digest and kept.read_bytes() == data
    assert line["output"] == kept.name and (out / f"{kept.name}.heatmap.png").is_file()
    monkeypatch.setattr(sys, "stdin", _Pipe(data))  # the same bytes again: current
    assert main(argv) == 0
    assert json_lines(capsys.readouterr().out)[0]["outcome"] == "skipped"


def test_console_command_reads_a_real_pipe(tmp_path, models):
    """The installed console command (``noisead.extras:main``), fed through a real pipe."""
    image = noise_image(tmp_path / "a.png", 1)
    script = Path(sys.executable).with_name("noisead")
    command = ([str(script)] if script.is_file()
               else [sys.executable, "-c", "import sys; from noisead.extras import main; "
                                           "sys.exit(main())"])
    with image.open("rb") as stdin:
        done = subprocess.run([*command, "analyze", "-", "-o", str(tmp_path / "out"),
                               "--model", str(models["flag_none"]), "--json"],
                              stdin=stdin, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    (line,) = json_lines(done.stdout)
    assert line["input"]["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()


def test_a_quoted_glob_is_expanded(tmp_path, models, capsys):
    folder = tmp_path / "in"
    for i, name in enumerate(("x1.png", "x2.png", "y.png")):
        noise_image(folder / name, i, side=64)
    out = tmp_path / "out"
    assert main(["analyze", str(folder / "x*.png"), str(folder / "z*.png"), "-o", str(out),
                 "--model", str(models["flag_none"]), "--json", "--quiet"]) == 1
    lines = json_lines(capsys.readouterr().out)
    assert [(Path(d["input"]["path"]).name, d["outcome"]) for d in lines] == [
        ("z*.png", "failed"), ("x1.png", "analysed"), ("x2.png", "analysed")]
    assert "no such file" in lines[0]["error"]


def test_outputs_chooses_the_files_and_a_rerun_adds_missing_ones(tmp_path, models, capsys):
    image = noise_image(tmp_path / "a.png", 1)
    out = tmp_path / "out"
    base = ["analyze", str(image), "-o", str(out), "--model", str(models["flag_none"]),
            "--quiet"]
    assert main([*base, "--outputs", "heatmap16,npz"]) == 0
    assert sorted(p.name for p in out.glob("a.*")) == ["a.heatmap16.png", "a.json", "a.npz"]
    with np.load(out / "a.npz") as arrays:
        heatmap = arrays["heatmap"]
        assert set(arrays.files) == {"heatmap", "raw", "fingerprint", "mask", "score",
                                     "image_statistic"}  # no evidence sources in this model
        assert heatmap.shape == (128, 128) and heatmap.dtype == np.float32
        saved = results(out)["a"]
        assert float(arrays["score"]) == pytest.approx(saved["score"], abs=1e-6)
        assert float(arrays["image_statistic"]) == pytest.approx(saved["image_statistic"])
    grey = np.asarray(Image.open(out / "a.heatmap16.png")).astype(np.float64) / 65535
    np.testing.assert_allclose(grey, heatmap, atol=0.5 / 65535 + 1e-7)
    capsys.readouterr()
    assert main([*base, "--outputs", "all", "--json"]) == 0
    assert json_lines(capsys.readouterr().out)[0]["outcome"] == "analysed"
    assert set(results(out)["a"]["files"]) == {
        "heatmap", "mask", "overlay", "fingerprint", "heatmap16", "npz", "json"}
    assert main([*base, "--outputs", "npz", "--json"]) == 0  # a subset: still current
    assert json_lines(capsys.readouterr().out)[0]["outcome"] == "skipped"


def test_export_writes_the_extractor_as_onnx(tmp_path, models, capsys):
    pytest.importorskip("onnxruntime")
    import torch

    from noisead.anomaly.embed import forward_with_taps
    from noisead.export import OnnxExtractor
    from noisead.infer import load_detector

    target = tmp_path / "model.onnx"
    assert main(["export", "--format", "onnx", "-o", str(target), "--model",
                 str(models["flag_none"])]) == 0
    assert str(target) in capsys.readouterr().out
    detector = load_detector(models["flag_none"])
    x = torch.rand(1, 3, 48, 40)
    expected, _ = forward_with_taps(detector.extractor, x, detector.taps)
    fingerprint, maps = OnnxExtractor(target, threads=1)(x)
    torch.testing.assert_close(fingerprint, expected, rtol=1e-4, atol=1e-4)
    assert set(maps) == set(detector.taps)
    assert json.loads(target.with_suffix(".json").read_text())["taps"] == list(detector.taps)
    assert main(["export", "-o", str(tmp_path / "model.txt")]) == 2
    assert ".onnx" in capsys.readouterr().err


def test_parts_auto_changes_the_heatmap_not_the_score(tmp_path, models, capsys):
    """``--parts auto``: recorded in the result and its notes; the score and the verdict
    are the one-part analysis' (their false-alarm rate was measured for it)."""
    rng = np.random.default_rng(3)
    pixels = 0.5 + rng.normal(0, 0.01, (192, 256, 3))
    pixels[:, 150:] += rng.normal(0, 0.004, (192, 106, 3))  # a noisier right part
    image = tmp_path / "two.png"
    Image.fromarray((np.clip(pixels, 0, 1) * 255).round().astype(np.uint8)).save(image)
    assert main(["analyze", str(image), "-o", str(tmp_path / "none"), "--model",
                 str(models["flag_none"]), "--parts", "auto", "--quiet"]) == 2
    assert "need a model that fuses them" in capsys.readouterr().err  # nothing to split
    detector = Detector.load(models["flag_none"])
    detector.config.evidence = ("noise-level", "noise-spectrum")
    model = detector.save(tmp_path / "with-statistics.safetensors")
    docs = {}
    for parts in ("one", "auto"):
        out = tmp_path / parts
        assert main(["analyze", str(image), "-o", str(out), "--model", str(model),
                     "--parts", parts, "--quiet"]) == 0
        docs[parts] = results(out)["two"]
    one, two = docs["one"], docs["auto"]
    assert (one["statistics_parts"], two["statistics_parts"]) == ("one", "auto")
    assert two["score"] == one["score"] and two["decision"] == one["decision"]
    assert any("two-part noise statistics" in n for n in two["notes"])
    assert not any("two-part" in n for n in one["notes"])
    assert two["raw_quantiles"] != one["raw_quantiles"]  # the heatmap did change
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["analyze", str(image), "-o", str(tmp_path / "bad"), "--parts", "two"])
