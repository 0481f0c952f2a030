"""The distributions `python -m build` makes: what is in them, and that the wheel works.

The project is copied to a temporary folder (with a stray data/ and runs/ beside it, as in
a working copy) and built there the way ``python -m build`` does it: an sdist, then the
wheel from the sdist. The wheel is installed with ``pip --target`` into a folder of its
own and run from there: imported, used on the bundled example, and through its console
command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("build", reason="python -m build comes with the dev extra")

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc", "artifacts")


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("packaging")
    project = root / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy2(REPO / name, project / name)
    for name in ("src", "tests"):
        shutil.copytree(REPO / name, project / name, ignore=COPY_IGNORE)
    for stray in ("data/simcams/cam0/img.png", "runs/x/extractor.safetensors"):
        (project / stray).parent.mkdir(parents=True)
        (project / stray).write_bytes(b"not for distribution")
    out = root / "dist"
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                           str(out), str(project)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = out.glob("noisead-*.whl")
    (sdist,) = out.glob("noisead-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist, "root": root}


def _package_files(src: Path) -> set[str]:
    """Every file of the package in the source tree ``src``, as a path inside the wheel."""
    return {p.relative_to(src).as_posix() for p in (src / "noisead").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_wheel_holds_the_package_models_and_example_and_nothing_else(dists):
    names = set(zipfile.ZipFile(dists["wheel"]).namelist())
    info = f"noisead-{VERSION}.dist-info"
    assert {n.split("/")[0] for n in names} == {"noisead", info}
    for needed in ("noisead/weights/default.safetensors", "noisead/weights/default.json",
                   "noisead/examples/spliced.png", "noisead/serve/static/index.html",
                   "noisead/method.py", f"{info}/licenses/LICENSE"):
        assert needed in names
    missing = _package_files(dists["root"] / "project" / "src") - names
    assert not missing, f"package files left out of the wheel: {sorted(missing)}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    entry_points = zipfile.ZipFile(dists["wheel"]).read(f"{info}/entry_points.txt").decode()
    assert "noisead = noisead.extras:main" in entry_points


def test_wheel_metadata_puts_optional_libraries_behind_extras(dists):
    meta = zipfile.ZipFile(dists["wheel"]).read(
        f"noisead-{VERSION}.dist-info/METADATA").decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines()
                if line.startswith("Requires-Dist:")]
    by_name = {r.split(";")[0].split(">")[0].split("[")[0].strip().lower(): r for r in requires}
    for core in ("torch", "numpy", "pillow", "scipy", "safetensors", "opencv-python-headless"):
        assert ";" not in by_name[core], by_name[core]
    assert 'extra == "serve"' in by_name["flask"]
    assert 'extra == "train"' in by_name["scikit-learn"]
    assert 'extra == "train"' in by_name["colour-demosaicing"]
    assert {f"Provides-Extra: {e}" for e in ("serve", "train", "onnx", "dev")} <= set(
        meta.splitlines())


def test_sdist_leaves_tests_data_and_runs_out(dists):
    with tarfile.open(dists["sdist"]) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    assert "LICENSE" in names and "src/noisead/weights/default.safetensors" in names
    for excluded in ("tests/", "data/", "runs/"):
        assert not [n for n in names if n.startswith(excluded)], excluded


@pytest.mark.slow
def test_installed_wheel_imports_analyses_and_runs_its_command(dists):
    target = dists["root"] / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile",
                           "--quiet", "--target", str(target), str(dists["wheel"])],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONNOUSERSITE": "1"}
    code = """
import json, sys
from importlib import resources
import noisead
from noisead.infer import analyze
example = resources.files("noisead") / "examples" / "spliced.png"
out = noisead.Method().predict(str(example))
print(json.dumps({"file": noisead.__file__, "version": noisead.__version__,
                  "shape": list(out["heatmap"].shape),
                  "detection": float(out["detection"]),
                  "decision": out["extra_outputs"]["decision"]}))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=env, cwd=dists["root"])
    assert run.returncode == 0, run.stderr[-3000:]
    import json

    from noisead.infer import analyze

    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(got["file"]).resolve().is_relative_to(target.resolve())
    assert got["version"] == VERSION
    assert got["shape"] == [512, 512]
    here = analyze(REPO / "src" / "noisead" / "examples" / "spliced.png")
    assert got["detection"] == pytest.approx(here.score, abs=1e-6)
    assert got["decision"] == here.verdict.decision.value

    command = target / "bin" / "noisead"
    models = subprocess.run([str(command), "models"], capture_output=True, text=True,
                            timeout=120, env=env, cwd=dists["root"])
    assert models.returncode == 0, models.stderr[-2000:]
    assert models.stdout.splitlines()[0].startswith("default\t")
