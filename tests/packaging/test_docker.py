"""The Dockerfile agrees with the project: same torch pin, the viewer's port and options,
a build context with only what it copies. Building the image needs Docker and the network:
that test runs only with NOISEAD_DOCKER_BUILD=1 where a Docker daemon answers."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from noisead.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def _documented_runs() -> list[list[str]]:
    """The ``docker run ... noisead ARGS`` lines of the Dockerfile's header, as ARGS."""
    runs = []
    for line in DOCKERFILE.splitlines():
        text = line.lstrip("# ")
        if text.startswith("docker run "):
            words = shlex.split(text)
            runs.append(words[words.index("noisead") + 1:])
    return runs


def test_torch_pin_is_the_makefiles_and_from_the_cpu_index():
    make_pin = re.search(r"torch==([\w.]+)", (REPO / "Makefile").read_text()).group(1)
    assert f"torch=={make_pin} --index-url https://download.pytorch.org/whl/cpu" in DOCKERFILE
    assert "FROM python:3.11-slim" in DOCKERFILE


def test_image_runs_the_cli_and_serves_the_viewer_port():
    assert 'ENTRYPOINT ["noisead"]' in DOCKERFILE
    assert "[serve]" in DOCKERFILE
    (port,) = re.findall(r"^EXPOSE (\d+)$", DOCKERFILE, re.MULTILINE)
    runs = _documented_runs()
    assert any(r[:1] == ["serve"] for r in runs) and any(r[:1] == ["analyze"] for r in runs)
    for args in runs:
        parsed = build_parser().parse_args(args)  # exits (fails the test) if not accepted
        if args[0] == "serve":
            assert parsed.serve.host == "0.0.0.0" and parsed.serve.port == int(port)
    assert f"-p 127.0.0.1:{port}:{port}" in DOCKERFILE


def test_build_context_holds_what_the_dockerfile_copies_and_no_data():
    rules = [r for r in (REPO / ".dockerignore").read_text().splitlines()
             if r and not r.startswith("#")]
    assert rules[0] == "*"
    included = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copied = set()
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            copied |= set(line.split()[1:-1])
    assert copied <= included, copied - included
    assert all((REPO / name).exists() for name in copied)
    assert not included & {"data", "runs", "tests", ".venv"}


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NOISEAD_DOCKER_BUILD") != "1",
                    reason="set NOISEAD_DOCKER_BUILD=1 to build the image (needs network)")
def test_image_builds_and_lists_the_models():
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True,
                                        timeout=30).returncode != 0:
        pytest.skip("no Docker daemon answers here")
    tag = "noisead-test:latest"
    subprocess.run([docker, "build", "-t", tag, str(REPO)], check=True, timeout=1800)
    out = subprocess.run([docker, "run", "--rm", tag, "models"], capture_output=True,
                         text=True, timeout=300, check=True).stdout
    assert out.splitlines()[0].startswith("default\t")
