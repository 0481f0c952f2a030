"""A Ray cluster of several nodes on this machine, for the tests and the throughput benchmark.

Each node is a ``ray start --block`` process (a head, then nodes that join it), started
in a temporary folder of its own and stopped by ending that process, which takes its
Ray processes with it: nothing else on the machine is touched (``ray stop`` would stop
every Ray process of the user).

Why ``127.0.0.2``: Ray (on Linux) turns a node address of ``127.0.0.1`` into the
machine's network address, and a node that joins a cluster must use the address the
head gave out; another loopback address keeps every node's address, and the traffic
between them, on the loopback interface.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

LOOPBACK = "127.0.0.2"
#: No usage reports, a node stopped at once (no draining), and no token authentication
#: (which would look for the user's token file): the cluster lives on the loopback
#: interface of this machine for the length of a test or a benchmark.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
           "RAY_AUTH_MODE": "disabled"}
_READY = "block forever"


def ray_command() -> str:
    """The ``ray`` command of this Python environment (the nodes must run the same
    Python, with noisead installed, as the driver)."""
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else shutil.which("ray") or "ray"


def _start_node(args: list[str], log: Path, env: Mapping[str, str],
                timeout: float) -> subprocess.Popen[bytes]:
    """Start ``ray start ARGS --block``; return once the node is up (its log says it
    blocks), or raise ``RuntimeError`` with the end of its log."""
    with open(log, "wb") as fh:
        process = subprocess.Popen([ray_command(), "start", *args, "--block",
                                    "--disable-usage-stats"],
                                   stdout=fh, stderr=subprocess.STDOUT, env=dict(env))
    deadline = time.monotonic() + timeout
    while _READY not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop_node(process)
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"ray start {' '.join(args)} did not come up:\n{tail}")
        time.sleep(0.2)
    return process


def _stop_node(process: subprocess.Popen[bytes]) -> None:
    """End a ``ray start --block`` process: on SIGTERM it stops its node's processes."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextmanager
def local_ray_cluster(nodes: int = 2, cpus_per_node: int = 1,
                      env: Mapping[str, str] | None = None,
                      object_store_bytes: int = 200_000_000,
                      timeout: float = 120.0) -> Iterator[str]:
    """Start a head and ``nodes - 1`` more nodes on this machine; yield the cluster's
    address (for ``ray.init(address=...)``, ``noisead analyze --engine ray --address``);
    stop them all at the end. ``env`` is added to the nodes' environment (their worker
    processes inherit it, e.g. a ``PYTHONPATH``)."""
    temp = Path(tempfile.mkdtemp(prefix="nray-", dir="/tmp"))  # short: socket paths
    environment = {**os.environ, **RAY_ENV, **(env or {})}
    common = [f"--node-ip-address={LOOPBACK}", f"--num-cpus={cpus_per_node}",
              f"--object-store-memory={object_store_bytes}"]
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(_start_node(["--head", "--port=0", "--include-dashboard=false",
                                    f"--temp-dir={temp}", *common],
                                   temp / "head.log", environment, timeout))
        address = (temp / "ray_current_cluster").read_text().strip()
        for n in range(1, nodes):
            started.append(_start_node([f"--address={address}", *common],
                                       temp / f"node{n}.log", environment, timeout))
        yield address
    finally:
        for process in reversed(started):
            _stop_node(process)
        shutil.rmtree(temp, ignore_errors=True)
