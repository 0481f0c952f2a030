"""Items 4 and 5: what a folder holds is analysed once or reported, never silently
dropped; leftovers of a kill are cleaned; hostile names are escaped for the spreadsheet
and the terminal; a second run on a busy output folder and a bad ``-o`` get one line and
exit code 2."""

from __future__ import annotations

import os
import signal

import pytest
from batch_support import CheapAnalysis, read_csv, run, write_image

from noisead.batch.escape import for_csv_cell, for_terminal
from noisead.batch.lock import hold_output_lock
from noisead.cli import main


@pytest.fixture
def no_hang():
    """Fail instead of hanging forever if something opens a FIFO for reading."""
    def boom(*_):
        raise TimeoutError("the run blocked (did it open a FIFO?)")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_the_output_folder_inside_the_input_folder_is_skipped(tmp_path):
    folder = tmp_path / "photos"
    write_image(folder / "a.png", seed=1)
    out = folder / "results"
    run([folder], out)
    analysis = CheapAnalysis()
    report = run([folder], out, analysis)
    assert analysis.calls == 0 and len(report.skipped) == 1 and not report.failed
    assert [r["output"] for r in read_csv(out / "summary.csv")] == ["a"]


def test_one_file_through_two_paths_is_analysed_once(tmp_path):
    a = write_image(tmp_path / "in" / "a.png", seed=1)
    (tmp_path / "in" / "link.png").symlink_to(a)
    analysis = CheapAnalysis()
    report = run([a, tmp_path / "in", tmp_path / "in" / "." / "a.png"], tmp_path / "out",
                 analysis)
    assert analysis.calls == 1 and report.duplicates == 3
    assert len(read_csv(tmp_path / "out" / "summary.csv")) == 1


def test_files_that_cannot_be_analysed_are_reported(tmp_path, no_hang):
    folder = tmp_path / "in"
    write_image(folder / "good.png", seed=1)
    write_image(folder / "anim.gif", seed=2)
    (folder / "notes.txt").write_text("not a photo")
    (folder / "gone.jpg").symlink_to(folder / "nowhere.jpg")
    os.mkfifo(folder / "pipe.png")
    out = tmp_path / "out"
    report = run([folder, tmp_path / "missing.png"], out)
    reasons = {os.path.basename(r["image"]): r["error"] for r in read_csv(out / "failures.csv")}
    assert set(reasons) == {"anim.gif", "notes.txt", "gone.jpg", "pipe.png", "missing.png"}
    assert "'.gif'" in reasons["anim.gif"] and "dangling" in reasons["gone.jpg"]
    assert "FIFO" in reasons["pipe.png"] and "no such file" in reasons["missing.png"]
    assert len(report.done) == 1 and len(report.failed) == 5


def test_a_success_removes_the_earlier_failure(tmp_path):
    bad = tmp_path / "in" / "photo.png"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out"
    run([bad], out)
    assert [r["image"] for r in read_csv(out / "failures.csv")] == [str(bad)]
    write_image(bad, seed=1)
    run([bad], out)
    assert read_csv(out / "failures.csv") == []
    assert [r["image"] for r in read_csv(out / "summary.csv")] == [str(bad)]
    assert "Failed files" not in (out / "report.html").read_text()


def test_temporary_files_of_a_killed_run_are_cleaned(tmp_path):
    out = tmp_path / "out"
    (out / "thumbs").mkdir(parents=True)
    leftovers = [out / ".x.heatmap.png.0123456789ab.tmp", out / ".summary.csv.abcdef012345.tmp",
                 out / "thumbs" / ".x.image.png.ffffffffffff.tmp"]
    for p in leftovers:
        p.write_bytes(b"half")
    kept = out / ".my-notes.tmp"
    kept.write_text("not ours")
    run([write_image(tmp_path / "in" / "a.png", seed=1)], out)
    assert not any(p.exists() for p in leftovers) and kept.exists()


def test_names_are_neutralised_for_spreadsheets_and_terminals(tmp_path, capsys):
    assert for_csv_cell("=1+2") == "'=1+2" and for_csv_cell("\tx") == "'\tx"
    assert for_csv_cell("plain") == "plain" and for_csv_cell(0.5) == 0.5
    assert for_terminal("a\x1b[31mb\x07\x9b") == "a\\x1b[31mb\\x07\\x9b"
    folder = tmp_path / "in"
    formula = write_image(folder / "=1+2.png", seed=1)
    escape = write_image(folder / "\x1b]0;owned\x07x.png", seed=2)
    out = tmp_path / "out"
    assert main(["--quiet", "analyze", str(folder), "-o", str(out), "--model",
                 "default", "--max-pixels", "1"]) == 1  # every file refused: fast
    printed = capsys.readouterr()
    assert "\x1b" not in printed.out + printed.err and "\x07" not in printed.err
    assert "\\x1b]0;owned\\x07x.png" in printed.err
    run([formula, escape], out)
    rows = read_csv(out / "summary.csv")
    assert "'=1+2" in {r["output"] for r in rows}


def test_output_path_that_is_a_file_is_one_line_and_exit_2(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("x")
    image = write_image(tmp_path / "a.png", seed=1)
    assert main(["--quiet", "analyze", str(image), "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "is a file" in err


def test_a_second_run_on_a_busy_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    image = write_image(tmp_path / "a.png", seed=1)
    with hold_output_lock(out):  # another run holds the folder
        assert main(["--quiet", "analyze", str(image), "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert "another noisead run" in err and len(err.strip().splitlines()) == 1
    assert not (out / "summary.csv").exists()
    run([image], out)  # free again once the holder is done
    assert len(read_csv(out / "summary.csv")) == 1
