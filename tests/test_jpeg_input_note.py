"""A JPEG under analysis gets a note on how far its image score can be trusted."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisead.infer import analyze, jpeg_input_caveat
from noisead.io.jpeg import estimate_jpeg_quality


def _textured(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    base = rng.normal(128, 40, (size // 8, size // 8, 3))
    img = np.kron(base, np.ones((8, 8, 1))) + rng.normal(0, 6, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg_tables(img: np.ndarray, **save) -> dict[int, list[int]]:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", **save)
    return Image.open(io.BytesIO(buf.getvalue())).quantization


@pytest.mark.parametrize("quality", [30, 50, 75, 90, 95, 100])
def test_libjpeg_quality_is_recovered_from_the_tables(rng, quality: int) -> None:
    assert estimate_jpeg_quality(_jpeg_tables(_textured(rng), quality=quality)[0]) == quality


def test_tables_of_their_own_are_not_given_a_quality(rng) -> None:
    own = [int(v) for v in rng.integers(2, 40, 64)]
    tables = _jpeg_tables(_textured(rng), qtables=[own, own])
    assert estimate_jpeg_quality(tables[0]) is None
    caveat, note = jpeg_input_caveat(tables)
    assert caveat == "JPEG, own tables"
    assert "tables of its own" in note
    assert estimate_jpeg_quality([1, 2, 3]) is None


def test_the_note_depends_on_the_compression(rng) -> None:
    img = _textured(rng)
    caveat, note = jpeg_input_caveat(_jpeg_tables(img, quality=90))
    assert caveat == "JPEG, quality 90"
    assert "about libjpeg quality 90" in note
    assert jpeg_input_caveat(_jpeg_tables(img, quality=100)) is None  # near-lossless
    assert jpeg_input_caveat(None) is None


def test_analyze_adds_the_note_for_jpeg_files_only(rng, tmp_path: Path) -> None:
    img = _textured(rng)
    Image.fromarray(img).save(tmp_path / "a.jpg", "JPEG", quality=85)
    Image.fromarray(img).save(tmp_path / "a.png")
    jpeg = analyze(tmp_path / "a.jpg")
    assert any("about libjpeg quality 85" in n for n in jpeg.notes)
    assert jpeg.score_caveat == "JPEG, quality 85"
    assert jpeg.summary()["score_caveat"] == "JPEG, quality 85"
    png = analyze(tmp_path / "a.png")
    assert not any("JPEG" in n for n in png.notes) and png.score_caveat is None
    array = analyze(img)  # decoded pixels carry no file history: no claim either way
    assert not any("JPEG" in n for n in array.notes) and array.score_caveat is None


def test_batch_line_and_summary_say_why_a_low_score_is_weak(rng, tmp_path: Path,
                                                             capsys) -> None:
    import csv

    from noisead.cli import main

    img = _textured(rng, size=160)  # large enough to be judged (noisead.verdict.texture)
    Image.fromarray(img).save(tmp_path / "a.jpg", "JPEG", quality=80)
    Image.fromarray(img).save(tmp_path / "b.png")
    assert main(["--quiet", "analyze", str(tmp_path / "a.jpg"), str(tmp_path / "b.png"),
                 "-o", str(tmp_path / "out")]) == 0
    lines = {Path(line.split(":")[0]).name: line
             for line in capsys.readouterr().out.splitlines() if ": score " in line}
    # flat noise, no edit: not flagged; the JPEG's verdict says why that is weak evidence
    assert "Weak evidence of authenticity: JPEG, quality 80" in lines["a.jpg"]
    assert "weak evidence" not in lines["b.png"].lower()
    with (tmp_path / "out" / "summary.csv").open(newline="") as f:
        rows = {Path(r["image"]).name: r for r in csv.DictReader(f)}
    assert rows["a.jpg"]["score_caveat"] == "JPEG, quality 80"
    assert rows["b.png"]["score_caveat"] == ""
    report = (tmp_path / "out" / "report.html").read_text()
    assert report.count("Weak evidence of authenticity: JPEG, quality 80") == 1
