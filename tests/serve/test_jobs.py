"""The viewer under load: its pixel cap, bounded queue and time limit, with the small
hostile PNGs that used to hold it (a 324-byte PNG declaring 2 MP, 24 KB declaring 196 MP),
on the real server on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

pytest.importorskip("flask")

from noisead.serve.app import create_app  # noqa: E402
from noisead.serve.jobs import DEFAULT_MAX_PENDING, DEFAULT_TIME_LIMIT_S  # noqa: E402

TIME_LIMIT_S = 1.0  # the 2 MP upload takes many times longer with the test detector


@pytest.fixture(scope="module")
def strict(tiny_detector, serve):
    """A viewer with one queue slot, a one-second time limit and a 3 MP cap."""
    app = create_app(tiny_detector, max_pending=1, time_limit=TIME_LIMIT_S,
                     max_pixels=3_000_000)
    with serve(app) as viewer:
        yield viewer


def _queue(viewer):
    return viewer.app.extensions["noisead"]["queue"]


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def _post_in_background(viewer, data: bytes) -> tuple[threading.Thread, dict]:
    answer: dict = {}
    thread = threading.Thread(target=lambda: answer.update(r=viewer.post(data)), daemon=True)
    thread.start()
    return thread, answer


def test_the_hostile_pngs_are_what_they_claim(hostile_png):
    assert len(hostile_png(1414, 1414)) < 400
    assert len(hostile_png(14_000, 14_000)) < 30_000


def test_the_pixel_cap_refuses_from_the_declared_size(viewer, hostile_png):
    """196 MP declared in 24 KB: refused before decoding (which took 3.3 GB)."""
    worker = _queue(viewer).worker
    assert viewer.post(b"not an image").status == 400  # the worker is up
    pid = worker.pid
    r = viewer.post(hostile_png(14_000, 14_000))
    assert r.status == 400, r.data[:500]
    message = r.json()["error"]
    assert "196,000,000" in message and "limit of 50,000,000" in message
    assert "--max-pixels" in message
    assert worker.pid == pid  # the same worker answered at once: nothing was decoded


def test_the_pixel_cap_is_a_setting(strict, hostile_png):
    r = strict.post(hostile_png(2000, 2000))
    assert r.status == 400
    assert "limit of 3,000,000" in r.json()["error"]
    assert strict.get("/api/info").json()["max_pixels"] == 3_000_000


def test_a_full_queue_answers_503_with_retry_after(strict, hostile_png, spliced_png):
    queue = _queue(strict)
    thread, first = _post_in_background(strict, hostile_png(1414, 1414))
    _wait_for(lambda: queue.pending == 1, "the first upload holds the queue's one slot")
    second = strict.post(spliced_png)
    assert second.status == 503, second.data[:500]
    assert "busy" in second.json()["error"]
    assert 1 <= int(second.headers["Retry-After"]) <= TIME_LIMIT_S + 1
    thread.join(timeout=300)
    assert first["r"].status == 504
    assert queue.pending == 0


def test_the_time_limit_kills_the_worker_and_frees_the_slot(strict, hostile_png):
    queue = _queue(strict)
    thread, answer = _post_in_background(strict, hostile_png(1414, 1414))
    _wait_for(lambda: queue.running, "the worker starts the 2 MP analysis")
    pid = queue.worker.pid
    thread.join(timeout=300)
    r = answer["r"]
    assert r.status == 504, r.data[:500]
    assert f"time limit of {TIME_LIMIT_S:g} s" in r.json()["error"]
    with pytest.raises(ProcessLookupError):  # killed and reaped: its memory is back
        os.kill(pid, 0)
    assert queue.pending == 0
    after = strict.post(b"not an image")  # the slot is free; a fresh worker answers
    assert after.status == 400, after.data[:500]
    assert queue.worker.pid not in (None, pid)


def test_a_worker_killed_from_outside_is_reported_and_replaced(tiny_detector, serve,
                                                               hostile_png):
    """What the kernel's out-of-memory killer does: the request says so, the next works."""
    with serve(create_app(tiny_detector, time_limit=600)) as viewer:
        queue = _queue(viewer)
        thread, answer = _post_in_background(viewer, hostile_png(1414, 1414))
        _wait_for(lambda: queue.running, "the worker starts the 2 MP analysis")
        os.kill(queue.worker.pid, signal.SIGKILL)
        thread.join(timeout=300)
        assert answer["r"].status == 500
        assert "stopped unexpectedly" in answer["r"].json()["error"]
        assert viewer.post(b"not an image").status == 400
        os.kill(queue.worker.pid, signal.SIGKILL)  # now while idle: replaced before a job
        _wait_for(lambda: not queue.worker.alive, "the killed worker is gone")
        assert viewer.post(b"not an image").status == 400
        assert queue.pending == 0


def test_a_model_that_cannot_load_is_503_with_its_reason(serve, spliced_png):
    with serve(create_app("no-such-model-anywhere")) as broken:
        r = broken.post(spliced_png)
        assert r.status == 503, r.data[:500]
        assert "no-such-model-anywhere" in r.json()["error"]
        assert broken.get("/api/info").json()["model_loaded"] is False


@pytest.mark.parametrize("bad", [{"max_pending": 0}, {"time_limit": 0},
                                 {"time_limit": float("inf")}, {"max_pixels": 0}])
def test_bad_limits_are_refused(bad):
    with pytest.raises(ValueError):
        create_app(**bad)


def test_the_command_line_sets_the_limits(monkeypatch):
    import noisead.serve.app as serve_app
    from noisead.cli import main

    calls = []
    monkeypatch.setattr(serve_app, "run", lambda **kwargs: calls.append(kwargs))
    assert main(["serve", "--max-pixels", "1000000", "--max-pending", "2",
                 "--time-limit", "0.5", "--port", "0"]) == 0
    assert calls[0]["max_pixels"] == 1_000_000
    assert calls[0]["max_pending"] == 2
    assert calls[0]["time_limit"] == 0.5
    assert main(["serve", "--port", "0"]) == 0
    assert (calls[1]["max_pixels"], calls[1]["max_pending"], calls[1]["time_limit"]) == (
        serve_app.DEFAULT_MAX_PIXELS, DEFAULT_MAX_PENDING, DEFAULT_TIME_LIMIT_S)
