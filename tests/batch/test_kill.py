"""Item 2 with a real ``kill -9``: the real CLI, killed in the middle of a run, leaves a
valid summary of what it finished, and a rerun completes the folder without redoing or
losing anything (no stale temporary files, each image with its own result)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from batch_support import read_csv, result_jsons, sha256, write_image

from noisead.cli import main


def test_kill_9_mid_run_then_rerun(tmp_path):
    folder = tmp_path / "in"
    images = [write_image(folder / "a" / "x.png", seed=1, size=96),
              write_image(folder / "b" / "x.png", seed=2, size=320),
              write_image(folder / "c.png", seed=3, size=320)]
    out = tmp_path / "out"
    command = [sys.executable, "-m", "noisead.cli", "--quiet", "analyze", str(folder),
               "-o", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not result_jsons(out) if out.exists() else True:
            assert proc.poll() is None, "the run ended before it wrote a result"
            assert time.monotonic() < deadline, "no result after 120 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    done_before = result_jsons(out)
    assert 1 <= len(done_before) < len(images), "the kill did not land mid-run"
    if (out / "summary.csv").exists():  # what it says is true
        for row in read_csv(out / "summary.csv"):
            assert done_before[row["output"]]["input"]["sha256"] == row["sha256"]

    assert main(["--quiet", "analyze", str(folder), "-o", str(out)]) == 0
    rows = {r["image"]: r for r in read_csv(out / "summary.csv")}
    assert set(rows) == {str(p) for p in images}
    for p in images:
        assert rows[str(p)]["sha256"] == sha256(p)
        saved = result_jsons(out)[rows[str(p)]["output"]]
        assert saved["input"]["path"] == str(p) and saved["input"]["sha256"] == sha256(p)
    for stem in done_before:  # finished before the kill: kept, not redone
        assert result_jsons(out)[stem]["seconds"] == done_before[stem]["seconds"]
    assert not list(Path(out).rglob(".*.tmp"))
