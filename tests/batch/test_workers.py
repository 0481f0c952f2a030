"""``--workers N``: a batch analysed by worker processes keeps the batch's guarantees.

The same inputs give the same results (stems, scores, failures) as a run in one process;
an interrupted run keeps what it finished and a rerun completes the rest without redoing
it; a worker killed with ``SIGKILL`` in the middle of an image is replaced and its image
analysed once; the run's report keeps counts, not records.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from batch_support import (
    CheapAnalysis,
    expected_score,
    read_csv,
    result_jsons,
    run,
    write_image,
)
from parallel_support import (
    Killer,
    StallOnce,
    assert_each_input_once,
    sample_folder,
    summary_rows,
)

from noisead.batch.engines import InProcessEngine, ProcessPoolEngine, make_engine
from noisead.batch.jobs import DetectorAnalyzer
from noisead.batch.run import RECENT_FAILURES


def test_workers_match_a_local_run_survive_an_interruption_and_resume(tmp_path):
    images = sample_folder(tmp_path / "in")
    local = run([tmp_path / "in"], tmp_path / "local")
    assert (len(local.done), len(local.failed)) == (7, 1)

    out = tmp_path / "out"
    pool = ProcessPoolEngine(CheapAnalysis, workers=2)

    def interrupt(outcome, record):
        if outcome == "done":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run([tmp_path / "in"], out, engine=pool, on_item=interrupt)
    finished = {stem: (out / f"{stem}.json").stat().st_ino for stem in result_jsons(out)}
    assert 1 <= len(finished) < 7
    listed = read_csv(out / "summary.csv")  # what it says is true
    assert {r["output"] for r in listed} <= set(finished)

    again = run([tmp_path / "in"], out, engine=pool)
    assert len(again.done) + len(again.skipped) == 7 and len(again.failed) == 1
    for stem, inode in finished.items():  # finished before the interruption: kept as is
        assert (out / f"{stem}.json").stat().st_ino == inode
    assert summary_rows(out) == summary_rows(tmp_path / "local")
    assert read_csv(out / "failures.csv") == read_csv(tmp_path / "local" / "failures.csv")
    by_path = assert_each_input_once(out, images)
    for p in images[:-1]:
        assert by_path[str(p)]["score"] == pytest.approx(expected_score(p))

    last = run([tmp_path / "in"], out, engine=pool)
    assert (len(last.done), len(last.skipped), len(last.failed)) == (0, 7, 1)


def test_a_worker_killed_mid_image_is_replaced_and_the_image_analysed_once(tmp_path):
    images = sample_folder(tmp_path / "in")
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    killer = Killer(pid_dir / "victim.pid")
    out = tmp_path / "out"
    result = run([tmp_path / "in"], out,
                 engine=ProcessPoolEngine(StallOnce(str(pid_dir), 40), workers=2))
    assert killer.join() is not None, "the victim image never reached a worker"
    assert len(result.done) == 7 and len(result.failed) == 1
    by_path = assert_each_input_once(out, images)
    victim = by_path[str(images[0])]
    assert victim["score"] == pytest.approx(expected_score(images[0]))
    assert [r["image"] for r in read_csv(out / "failures.csv")] == [
        str(tmp_path / "in" / "broken.png")]


def test_a_worker_that_keeps_dying_fails_its_image_and_the_run_goes_on(tmp_path):
    images = sample_folder(tmp_path / "in")
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    killer = Killer(pid_dir / "victim.pid")
    out = tmp_path / "out"
    result = run([tmp_path / "in"], out,
                 engine=ProcessPoolEngine(StallOnce(str(pid_dir), 40), workers=1,
                                          attempts=1))
    assert killer.join() is not None
    failures = {r["image"]: r["error"] for r in read_csv(out / "failures.csv")}
    assert "ended unexpectedly" in failures[str(images[0])]
    # the other image in flight when the pool broke failed with it (attempts=1): which
    # worker died is not told; everything else was analysed
    assert len(result.failed) in (2, 3) and len(result.done) + len(result.failed) == 8
    assert {r["image"] for r in read_csv(out / "summary.csv")} == {
        r.display for r in result.done}


def test_the_report_keeps_counts_and_the_last_failures_only(tmp_path):
    folder = tmp_path / "in"
    for i in range(RECENT_FAILURES + 5):
        (folder / f"bad{i:02d}.png").parent.mkdir(parents=True, exist_ok=True)
        (folder / f"bad{i:02d}.png").write_bytes(b"not an image")
    write_image(folder / "good.png", seed=1)
    result = run([folder], tmp_path / "out")
    report = result.report
    assert (report.done, report.failed, report.skipped) == (1, RECENT_FAILURES + 5, 0)
    assert [r.display for r in report.recent_failures] == [
        r.display for r in result.failed[-RECENT_FAILURES:]]
    assert not any(isinstance(v, list) for v in vars(report).values())


def test_make_engine_refuses_what_makes_no_sense():
    analyzer = DetectorAnalyzer()
    with pytest.raises(ValueError, match="--address"):
        make_engine("local", 1, "127.0.0.1:6379", analyzer)
    with pytest.raises(ValueError, match="--workers"):
        make_engine("ray", 2, None, analyzer)
    with pytest.raises(ValueError, match="at least 1"):
        make_engine("local", 0, None, analyzer)
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine("spark", 1, None, analyzer)
    assert isinstance(make_engine("local", 1, None, analyzer, CheapAnalysis()),
                      InProcessEngine)
    assert isinstance(make_engine("local", 3, None, analyzer), ProcessPoolEngine)


def test_the_command_line_with_workers_gives_the_one_process_results(tmp_path):
    """``noisead analyze --workers 2`` with the shipped model: each worker loads it and
    the results are those of a run in one process."""
    from noisead.cli import main

    folder = tmp_path / "in"
    images = [write_image(folder / f"{name}.png", seed=i, size=size)
              for i, (name, size) in enumerate((("a", 96), ("b", 200), ("c", 200)))]
    for out, extra in ((tmp_path / "one", []), (tmp_path / "two", ["--workers", "2"])):
        assert main(["--quiet", "analyze", str(folder), "-o", str(out), *extra]) == 0
    one, two = summary_rows(tmp_path / "one"), summary_rows(tmp_path / "two")
    assert sorted(one) == sorted(two) == sorted(str(p) for p in images)
    for image, (stem, decision, score) in one.items():
        assert two[image][:2] == (stem, decision)
        if score:  # judged (a small image may have too little texture)
            assert float(two[image][2]) == pytest.approx(float(score), abs=1e-4)
        else:
            assert two[image][2] == ""
    assert any(score for _, _, score in one.values())
    assert_each_input_once(tmp_path / "two", images)


_KILLED_RUN = """
import sys
sys.path.insert(0, sys.argv[1])
from batch_support import run
from parallel_support import StallOnce
from noisead.batch.engines import ProcessPoolEngine
run([sys.argv[2]], sys.argv[3], engine=ProcessPoolEngine(StallOnce(sys.argv[4], 40), 1))
"""


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_no_worker_outlives_a_run_killed_with_sigkill(tmp_path):
    """A run killed with ``kill -9`` releases the folder's lock at once: its workers must
    not go on writing into the folder (a next run may already be there)."""
    sample_folder(tmp_path / "in")
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    main = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(Path(__file__).parent),
                             str(tmp_path / "in"), str(tmp_path / "out"), str(pid_dir)])
    try:
        deadline = time.monotonic() + 60
        while not (pid_dir / "victim.pid").exists() or not (
                pid_dir / "victim.pid").read_text():
            assert main.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        worker = int((pid_dir / "victim.pid").read_text())
        assert _alive(worker)
        main.kill()
    finally:
        main.wait(30)
    deadline = time.monotonic() + 10
    while _alive(worker):
        assert time.monotonic() < deadline, "the worker outlived its run"
        time.sleep(0.05)
