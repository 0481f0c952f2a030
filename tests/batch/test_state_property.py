"""Item 7: random sequences of runs, interruptions, crashes, new, changed and touched files
and a lost database never leave the output folder wrong.

After every step, summary.csv lists exactly the results whose JSON is on disk (a crash may
leave out of step, until the next run, only the one image it hit), each row with its
JSON's input and SHA-256;
after every run that finished, every input is listed with the SHA-256 of its current
content and its own result, nothing already current was analysed again, and the file
noisead cannot read is in failures.csv. The analysis is the cheap stand-in of
batch_support (its score depends on the content, so a result given to the wrong input is
caught); a crash is a forked run that ends with ``os._exit`` in the middle (no clean-up
runs, as with ``kill -9``). A real ``kill -9`` of the real CLI is in test_kill.py.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

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
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from noisead.batch.state import DB_NAME

#: Colliding names; BMPs keep their size when their content changes (the SHA-256 decides).
SLOTS = ("a/x.bmp", "b/x.png", "c/x-1.bmp", "x.bmp", "d/e/y.png")
UNREADABLE = "notes.txt"

slot = st.integers(0, len(SLOTS) - 1)
steps = st.one_of(
    st.tuples(st.just("write"), slot, st.integers(0, 999), st.sampled_from([24, 24, 8])),
    st.tuples(st.just("touch"), slot),
    st.tuples(st.just("run"), st.none() | st.integers(1, 4),
              st.sampled_from(["interrupt", "crash"])),
    st.tuples(st.just("drop_database")),
)


def _crash_run(root: Path, out: Path, stop_at: int) -> None:
    run([root], out, CheapAnalysis(stop_at=stop_at, how="crash"))
    os._exit(0)  # finished before the crash point


def _run(root: Path, out: Path, stop_at: int | None, how: str) -> tuple[bool, bool, int]:
    """(finished, crashed, analyses) of one run over ``root``."""
    if how == "crash" and stop_at is not None:
        child = multiprocessing.get_context("fork").Process(target=_crash_run,
                                                              args=(root, out, stop_at))
        child.start()
        child.join(60)
        if child.exitcode is None:
            child.kill()
            pytest.fail("a forked run hung")
        return child.exitcode == 0, child.exitcode == 137, -1
    analysis = CheapAnalysis(stop_at=stop_at)
    try:
        run([root], out, analysis)
    except KeyboardInterrupt:
        return False, False, analysis.calls
    return True, False, analysis.calls


def _needing_analysis(root: Path, out: Path) -> int:
    """Inputs whose current content has no result JSON."""
    done = {(d["input"]["path"], d["input"]["sha256"]) for d in result_jsons(out).values()}
    return sum((str(root / s), sha256(root / s)) not in done
               for s in SLOTS if (root / s).exists())


def _check(root: Path, out: Path, *, finished: bool, crashed: bool) -> None:
    if not (out / "summary.csv").exists():
        assert not result_jsons(out) if out.exists() else True
        return
    rows = {r["output"]: r for r in read_csv(out / "summary.csv")}
    jsons = result_jsons(out)
    assert len(rows) == len(read_csv(out / "summary.csv"))  # one row per stem
    assert not set(jsons) - set(rows), "a result on disk is missing from summary.csv"
    assert len(set(rows) - set(jsons)) <= (1 if crashed else 0), "listed without its JSON"
    for stem in set(rows) & set(jsons):
        row, data = rows[stem], jsons[stem]
        assert row["image"] == data["input"]["path"] and row["sha256"] == data["input"]["sha256"]
        assert row["score"] == ("" if data["score"] is None else f"{data['score']:.6f}")
    if not finished:
        return
    by_image = {r["image"]: r for r in rows.values()}
    for s in SLOTS:
        path = root / s
        if not path.exists():
            continue
        row = by_image[str(path)]
        assert row["sha256"] == sha256(path)
        if row["decision"] == "not enough texture to judge":
            assert row["score"] == "" and min(_size(path)) < 16
        else:
            assert float(row["score"]) == pytest.approx(expected_score(path), abs=1e-6)
    failures = {r["image"] for r in read_csv(out / "failures.csv")}
    assert failures == {str(root / UNREADABLE)}


def _size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(steps, min_size=1, max_size=7))
@example([("run", None, "interrupt"), ("drop_database",)])
@example([("write", 1, 5, 24), ("write", 2, 6, 24), ("run", 2, "crash"), ("write", 0, 9, 24)])
@example([("run", None, "interrupt"), ("write", 0, 7, 24), ("touch", 0), ("run", 1, "crash")])
@example([("write", 3, 1, 8), ("run", 2, "interrupt"), ("write", 1, 2, 24)])
@example([("run", None, "interrupt"), ("write", 0, 0, 24), ("run", 1, "crash"), ("touch", 0)])
def test_random_runs_never_leave_the_folder_wrong(plan):
    base = Path(tempfile.mkdtemp(prefix="noisead-batch-"))
    try:
        root, out = base / "in", base / "out"
        write_image(root / SLOTS[0], seed=1)
        (root / UNREADABLE).write_text("not a photo")
        crashed = False  # the last run crashed: summary.csv may lag until the next run
        for step in [*plan, ("run", None, "interrupt")]:
            kind = step[0]
            if kind == "write":
                write_image(root / SLOTS[step[1]], seed=step[2], size=step[3])
            elif kind == "touch" and (root / SLOTS[step[1]]).exists():
                st_ = (root / SLOTS[step[1]]).stat()
                os.utime(root / SLOTS[step[1]], ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))
            elif kind == "drop_database":
                (out / DB_NAME).unlink(missing_ok=True)
            if kind != "run":
                _check(root, out, finished=False, crashed=crashed)
                continue
            needed = _needing_analysis(root, out)
            finished, crashed, calls = _run(root, out, step[1], step[2])
            _check(root, out, finished=finished, crashed=crashed)
            if finished and calls >= 0:
                assert calls == needed, "an input with a current result was analysed again"
    finally:
        shutil.rmtree(base, ignore_errors=True)
