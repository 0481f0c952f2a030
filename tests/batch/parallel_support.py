"""Helpers of the tests that run a batch in other processes (worker pools, Ray tasks).

An analysis for another process reaches it as a picklable factory, imported there by
module name: this module (and ``batch_support``) must be importable in the worker, which
a pool's workers get from the test's ``sys.path`` and a Ray cluster from the
``PYTHONPATH`` its test starts it with.

:class:`StallOnce` makes a worker die in the middle of a task for real: on the first try
of its victim image it writes its process id to a file and waits, and the test kills that
process with ``SIGKILL`` (:func:`kill_when_announced`); a later try finds the file and
analyses normally.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from batch_support import cheap_analysis, read_csv, result_jsons, sha256, write_image

from noisead.batch.state import BatchState
from noisead.infer import Analysis
from noisead.io import LoadedImage

STALL_SECONDS = 60.0


@dataclass(frozen=True)
class StallOnce:
    """Factory (picklable; called in the worker) of the cheap analysis, which stalls on
    its first try of the image whose height is ``victim_height``, after writing its
    process id to ``<pid_dir>/victim.pid``; with ``trace_ray_nodes``, each analysis
    touches ``<pid_dir>/node-<Ray node id>``."""

    pid_dir: str
    victim_height: int
    trace_ray_nodes: bool = False

    def __call__(self) -> Callable[[LoadedImage], Analysis]:
        return self.analyze

    def analyze(self, loaded: LoadedImage) -> Analysis:
        if self.trace_ray_nodes:  # which node analysed an image: a file per node
            import ray

            node = ray.get_runtime_context().get_node_id()
            (Path(self.pid_dir) / f"node-{node}").touch()
        if loaded.pixels.shape[0] == self.victim_height:
            try:
                fd = os.open(Path(self.pid_dir) / "victim.pid",
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            except FileExistsError:  # a retry: the first try was killed
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                time.sleep(STALL_SECONDS)  # killed by the test before this ends
                raise AssertionError("the stalled worker was not killed")
        return cheap_analysis(loaded.pixels)


class Killer:
    """Kills (``SIGKILL``) the process whose id appears in ``pid_file``, from a thread,
    while the test's batch run waits for results; ``.killed`` is that process id.

    ``timeout`` only bounds a failing test: the watch ends as soon as the file appears,
    which on a loaded machine (a Ray cluster's workers starting) can take minutes."""

    def __init__(self, pid_file: Path, timeout: float = 300.0) -> None:
        self.pid_file, self.timeout = pid_file, timeout
        self.killed: int | None = None
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                text = self.pid_file.read_text()
            except FileNotFoundError:
                text = ""
            if text.strip():
                pid = int(text)
                os.kill(pid, signal.SIGKILL)
                self.killed = pid
                return
            time.sleep(0.02)

    def join(self) -> int | None:
        self._thread.join(self.timeout)
        return self.killed


def assert_each_input_once(out: Path, inputs: list[Path]) -> dict[str, dict]:
    """Every input has exactly one row in the state and in summary.csv, and one result
    JSON, for its current content (SHA-256); returns its JSON by input path."""
    with BatchState(out) as state:
        rows = list(state.results())
    assert sorted(r.display for r in rows) == sorted(str(p) for p in inputs)
    summary = read_csv(out / "summary.csv")
    assert sorted(r["image"] for r in summary) == sorted(str(p) for p in inputs)
    jsons = result_jsons(out)
    by_path = {d["input"]["path"]: d for d in jsons.values()}
    assert len(by_path) == len(jsons) == len(inputs)
    for p in inputs:
        assert by_path[str(p)]["input"]["sha256"] == sha256(p)
    for row in summary:
        assert row["sha256"] == sha256(Path(row["image"]))
        assert jsons[row["output"]]["input"]["path"] == row["image"]
    return by_path


def sample_folder(root: Path) -> list[Path]:
    """Six images (two with the same name; the first 40 pixels high, the victim of
    :class:`StallOnce`), one too small to judge, one corrupt file."""
    images = [write_image(root / "a" / "x.png", seed=1, size=40),
              write_image(root / "b" / "x.png", seed=2),
              write_image(root / "c.png", seed=3),
              write_image(root / "d.bmp", seed=4, size=32),
              write_image(root / "e" / "f.png", seed=5),
              write_image(root / "g.png", seed=6),
              write_image(root / "tiny.png", seed=7, size=8)]
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return images


def summary_rows(out: Path) -> dict[str, tuple[str, str, str]]:
    """summary.csv as image -> (output stem, decision, score)."""
    return {r["image"]: (r["output"], r["decision"], r["score"])
            for r in read_csv(out / "summary.csv")}
