"""``--engine ray``: a batch spread over a two-node Ray cluster that the test starts on
this machine's loopback interface (``noisead.batch.ray_local``) and stops at the end.

The results land where a local run puts them (same stems, decisions, scores, failures);
tasks run on both nodes; a Ray worker killed with ``SIGKILL`` in the middle of an image has
its task retried, and nothing is lost or doubled (each input once in the state, in
summary.csv and among the JSONs, each JSON for the input's current SHA-256); a rerun
analyses only what changed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from batch_support import expected_score, read_csv, run, write_image
from parallel_support import (
    Killer,
    StallOnce,
    assert_each_input_once,
    sample_folder,
    summary_rows,
)

pytest.importorskip("ray")

from noisead.batch.ray_engine import RayEngine  # noqa: E402
from noisead.batch.ray_local import local_ray_cluster  # noqa: E402

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def cluster():
    """A head and a second node, one CPU each; their workers import this folder's
    helpers (the picklable analyses) through PYTHONPATH."""
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    with local_ray_cluster(nodes=2, env={"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
                           ) as address:
        yield address


def test_a_ray_run_survives_a_killed_worker_and_writes_where_a_local_run_would(
        cluster, tmp_path):
    images = sample_folder(tmp_path / "in")
    run([tmp_path / "in"], tmp_path / "local")
    traces = tmp_path / "traces"
    traces.mkdir()
    killer = Killer(traces / "victim.pid")
    engine = RayEngine(StallOnce(str(traces), 40, trace_ray_nodes=True), address=cluster)
    out = tmp_path / "out"
    result = run([tmp_path / "in"], out, engine=engine)

    assert killer.join() is not None, "the victim image never reached a Ray worker"
    assert len(result.done) == 7 and len(result.failed) == 1
    assert summary_rows(out) == summary_rows(tmp_path / "local")
    assert read_csv(out / "failures.csv") == read_csv(tmp_path / "local" / "failures.csv")
    by_path = assert_each_input_once(out, images)
    for p in images[:-1]:
        assert by_path[str(p)]["score"] == pytest.approx(expected_score(p))
    assert len(list(traces.glob("node-*"))) == 2, "the tasks did not use both nodes"

    write_image(images[2], seed=99)  # changed: analysed again; the rest is current
    again = run([tmp_path / "in"], out, engine=RayEngine(StallOnce(str(traces), 40),
                                                         address=cluster))
    assert [r.display for r in again.done] == [str(images[2])]
    assert len(again.skipped) == 6
    by_path = assert_each_input_once(out, images)
    assert by_path[str(images[2])]["score"] == pytest.approx(expected_score(images[2]))


def test_the_command_line_runs_on_the_cluster(cluster, tmp_path):
    """``noisead analyze --engine ray --address ADDR`` with the shipped model."""
    from noisead.cli import main

    images = [write_image(tmp_path / "in" / f"{name}.png", seed=i, size=200)
              for i, name in enumerate(("a", "b"))]
    out = tmp_path / "out"
    assert main(["--quiet", "analyze", str(tmp_path / "in"), "-o", str(out),
                 "--engine", "ray", "--address", cluster]) == 0
    assert_each_input_once(out, images)
    assert main(["--quiet", "analyze", str(tmp_path / "in"), "-o", str(out),
                 "--workers", "2", "--engine", "ray"]) == 2  # one line, no traceback
