"""Items 2 and 3: the output folder's state is complete after interruptions and reruns,
output names are never reused, and resume never hands out another input's result."""

from __future__ import annotations

import json
import os

import pytest
from batch_support import (
    CheapAnalysis,
    expected_score,
    read_csv,
    result_jsons,
    run,
    sha256,
    write_image,
)

from noisead.batch.state import DB_NAME


def _summary(out):
    return {r["image"]: r for r in read_csv(out / "summary.csv")}


def test_rerun_after_an_interruption_lists_every_image(tmp_path):
    images = [write_image(tmp_path / "in" / f"{i}.png", seed=i) for i in range(4)]
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run(images, out, CheapAnalysis(stop_at=3))  # Ctrl+C on the third image
    assert set(_summary(out)) == {str(images[0]), str(images[1])}  # what is done
    analysis = CheapAnalysis()
    run(images, out, analysis)
    assert analysis.calls == 2  # only what was left
    summary = _summary(out)
    assert set(summary) == {str(p) for p in images}  # not only the last run's images
    for p in images:
        assert float(summary[str(p)]["score"]) == pytest.approx(expected_score(p))
    page = (out / "report.html").read_text()
    assert all(p.name in page for p in images)


def test_names_that_collide_get_distinct_stems(tmp_path):
    a = write_image(tmp_path / "a" / "x.png", seed=1)
    b = write_image(tmp_path / "b" / "x.png", seed=2)
    c = write_image(tmp_path / "c" / "x-1.png", seed=3)
    out = tmp_path / "out"
    run([a, b, c], out)
    jsons = result_jsons(out)
    assert len(jsons) == 3
    by_path = {d["input"]["path"]: d for d in jsons.values()}
    for p in (a, b, c):
        assert by_path[str(p)]["input"]["sha256"] == sha256(p)
        assert by_path[str(p)]["score"] == pytest.approx(expected_score(p))
    assert len({d["output"] for d in jsons.values()}) == 3


def test_resume_does_not_hand_out_another_inputs_result(tmp_path):
    a = write_image(tmp_path / "a" / "x.png", seed=1)
    b = write_image(tmp_path / "b" / "x.png", seed=2)
    out = tmp_path / "out"
    run([b], out)
    analysis = CheapAnalysis()
    report = run([a, b], out, analysis)
    assert analysis.calls == 1 and [r.display for r in report.done] == [str(a)]
    assert [r.display for r in report.skipped] == [str(b)]
    summary = _summary(out)
    assert summary[str(b)]["output"] == "x" and summary[str(a)]["output"] == "x-1"
    for p in (a, b):
        saved = json.loads((out / f"{summary[str(p)]['output']}.json").read_text())
        assert saved["input"]["sha256"] == sha256(p) == summary[str(p)]["sha256"]


def test_an_input_keeps_its_stem_and_a_changed_file_is_analysed_again(tmp_path):
    x = write_image(tmp_path / "in" / "x.png", seed=1)
    out = tmp_path / "out"
    run([x], out)
    write_image(x, seed=7)  # new content, same name
    analysis = CheapAnalysis()
    run([x], out, analysis)
    assert analysis.calls == 1
    (row,) = read_csv(out / "summary.csv")
    assert row["output"] == "x" and row["sha256"] == sha256(x)
    assert float(row["score"]) == pytest.approx(expected_score(x))


def test_a_touched_file_is_not_analysed_again_but_same_size_new_content_is(tmp_path):
    x = write_image(tmp_path / "in" / "x.png", seed=1)
    out = tmp_path / "out"
    run([x], out)
    st = x.stat()
    os.utime(x, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched only
    analysis = CheapAnalysis()
    run([x], out, analysis)
    assert analysis.calls == 0
    data = bytearray(x.read_bytes())
    data[-20] ^= 0xFF  # same size, other bytes (the PNG's CRC then fails: a failure)
    x.write_bytes(bytes(data))
    run([x], out, analysis)
    assert analysis.calls == 0 and "x.png" in (out / "failures.csv").read_text()
    assert read_csv(out / "summary.csv") == []  # the old result is not the file's any more
    assert not (out / "x.json").exists()


def test_a_new_input_never_takes_a_stem_used_on_disk(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.json").write_text('{"an analyst\'s": "file"}')
    x = write_image(tmp_path / "in" / "x.png", seed=1)
    run([x], out)
    assert json.loads((out / "x.json").read_text()) == {"an analyst's": "file"}
    assert _summary(out)[str(x)]["output"] == "x-1"


@pytest.mark.parametrize("damage", ["delete", "garbage"])
def test_a_lost_or_damaged_database_is_rebuilt_from_the_jsons(tmp_path, damage):
    a = write_image(tmp_path / "a" / "x.png", seed=1)
    b = write_image(tmp_path / "b" / "x.png", seed=2)
    out = tmp_path / "out"
    run([a, b], out)
    before = _summary(out)
    db = out / DB_NAME
    if damage == "delete":
        db.unlink()
    else:
        db.write_bytes(b"this is not a database" * 100)
    analysis = CheapAnalysis()
    run([a, b], out, analysis)
    assert analysis.calls == 0  # both results were recovered, not redone
    assert _summary(out) == before
    c = write_image(tmp_path / "c" / "x.png", seed=3)
    run([c], out)
    assert _summary(out)[str(c)]["output"] == "x-2"  # the recovered stems stay taken


def test_the_json_records_its_input_version_and_model(tmp_path):
    x = write_image(tmp_path / "in" / "x.png", seed=1)
    out = tmp_path / "out"
    run([x], out)
    saved = json.loads((out / "x.json").read_text())
    assert saved["input"]["path"] == str(x) and saved["input"]["size"] == x.stat().st_size
    assert saved["input"]["sha256"] == sha256(x)
    assert saved["noisead_version"] and saved["model"] == "cheap"
