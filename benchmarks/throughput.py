"""Images per hour of ``noisead analyze`` with ``--workers 1,2`` and on a local Ray cluster.

The real command, with the shipped model, on a fixed set of 1 MP photos: the first photo
of each of the first ``--images`` camera folders of ``../shared/cameras`` (each a
1024 x 1024 camera JPEG). Each configuration analyses the same files into a fresh output
folder, in its own process, ``--repeats`` times (in turn forwards and backwards, so that
the machine's changing load weighs on each alike), and is timed from the command's start
to its end (Python and model start-up included, as a person running it waits for them);
the mean analysis time per image comes from the result JSONs. The Ray run uses a cluster
of ``--ray-nodes`` node processes of one CPU each, started on this machine beforehand
(``noisead.batch.ray_local``; its start-up is not counted).

    .venv/bin/python benchmarks/throughput.py --out docs/BENCHMARKS.md

The markdown section replaces the text between ``<!-- throughput:begin -->`` and
``<!-- throughput:end -->`` in ``--out``; the rest of the file is not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from noisead.batch.engines import usable_cores
from noisead.evaluate.report import replace_doc_section

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 1800


def pick_images(cameras: Path, count: int, into: Path) -> list[Path]:
    """Copy the first photo of each of the first ``count`` camera folders into ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    picked = []
    for folder in sorted(p for p in cameras.iterdir() if p.is_dir())[:count]:
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        if photos:
            target = into / f"{folder.name}{photos[0].suffix.lower()}"
            shutil.copyfile(photos[0], target)
            picked.append(target)
    if len(picked) < count:
        raise SystemExit(f"only {len(picked)} photos found under {cameras}")
    return picked


def noisead_command() -> list[str]:
    beside = Path(sys.executable).with_name("noisead")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "noisead.cli"]


def time_run(inputs: Path, out: Path, extra: list[str]) -> dict[str, Any]:
    """Run ``noisead analyze`` once; wall time, images done, mean analysis seconds."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([*noisead_command(), "--quiet", "analyze", str(inputs),
                           "-o", str(out), *extra], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"noisead analyze {' '.join(extra)} failed ({done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    results = [json.loads(p.read_text()) for p in out.glob("*.json")]
    seconds = [r["timings"]["analysis_s"] for r in results
               if (r.get("timings") or {}).get("analysis_s") is not None]
    return {"wall_s": wall, "images": len(results), "load_before": load,
            "mean_analysis_s": sum(seconds) / len(seconds) if seconds else float("nan")}


def _local(n: int, cores: int) -> dict[str, Any]:
    threads = max(1, cores // n)
    return {"engine": f"`--workers {n}`", "args": ["--workers", str(n)],
            "layout": f"{n} process{'es' if n > 1 else ''} x {threads} "
                      f"thread{'s' if threads > 1 else ''}"}


def measure(shared: Path, count: int, workers: list[int], ray_nodes: int, repeats: int
            ) -> list[dict[str, Any]]:
    """Each configuration ``repeats`` times, in turn forwards and backwards (1, 2, ray,
    ray, 2, 1, ...), so that a change in the machine's load over the runs shows and
    weighs on every configuration alike; the Ray cluster runs only around Ray runs."""
    configs = [_local(n, usable_cores()) for n in workers]
    if ray_nodes:
        configs.append({"engine": "`--engine ray`", "args": None,
                        "layout": f"{ray_nodes} nodes x 1 CPU (1 task, 1 thread each)"})
    rows = []
    with tempfile.TemporaryDirectory(prefix="noisead-throughput-") as tmp:
        inputs = Path(tmp) / "in"
        pick_images(shared / "cameras", count, inputs)
        order = [c for r in range(repeats) for c in (configs if r % 2 == 0 else configs[::-1])]
        address, cluster = None, None
        for i, config in enumerate(order):
            print(f"{config['engine']} ...", file=sys.stderr, flush=True)
            args = config["args"]
            if args is None:
                if cluster is None:
                    from noisead.batch.ray_local import local_ray_cluster

                    cluster = local_ray_cluster(nodes=ray_nodes, cpus_per_node=1)
                    address = cluster.__enter__()
                args = ["--engine", "ray", "--address", str(address)]
            row = time_run(inputs, Path(tmp) / f"run-{i}", args)
            if cluster is not None and (i + 1 == len(order) or order[i + 1]["args"]):
                cluster.__exit__(None, None, None)
                cluster = None
            rows.append({**config, **row, "run": i + 1})
    return rows


def markdown(rows: list[dict[str, Any]], count: int, repeats: int) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        "## Throughput (`benchmarks/throughput.py`)",
        "",
        f"`noisead analyze` with the shipped model on {count} photos of 1 MP (1024 x 1024 "
        "camera JPEGs, the first of each of the first camera folders of `../shared/cameras`), "
        f"each configuration into a fresh output folder, {repeats} times (in the order shown, "
        "so that a change of the machine's load weighs on each alike); wall time from the "
        "command's start to its end, Python and model start-up included (the Ray cluster "
        "was started before). Images per hour = images / wall time.",
        "",
        f"Machine: {usable_cores()} CPU cores ({cpu}). The load average before each run is "
        "given: the previous run's processes are still in it, so a value much above the "
        "cores' count means other work shared the machine and the figures are lower than "
        "idle ones. Every "
        "configuration shares the same cores (the Ray cluster's nodes are processes on this "
        "machine too), so these figures show what the machinery costs or gains on one small "
        "machine, not how it scales with more cores or machines.",
        "",
        "| run | engine | processes x threads | images | wall s | images / hour "
        "| mean analysis s / image | load average before |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    per_config: dict[str, list[float]] = {}
    for r in rows:
        per_hour = r["images"] / r["wall_s"] * 3600
        per_config.setdefault(r["engine"], []).append(per_hour)
        lines.append(f"| {r['run']} | {r['engine']} | {r['layout']} | {r['images']} | "
                     f"{r['wall_s']:.0f} | {per_hour:.0f} | {r['mean_analysis_s']:.1f} | "
                     f"{r['load_before']:.1f} |")
    lines += ["", "Mean images / hour over the runs: " + ", ".join(
        f"{engine} {sum(v) / len(v):.0f}" for engine, v in per_config.items()) + "."]
    lines += ["", "Command: `make bench-throughput` (`.venv/bin/python benchmarks/throughput.py "
              "--out docs/BENCHMARKS.md`)."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--ray-nodes", type=int, default=2, help="0: no Ray run")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of each configuration, in turn forwards and backwards")
    parser.add_argument("--out", type=Path, help="markdown file to update (section "
                                                  "'throughput'); printed when absent")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    rows = measure(args.shared, args.images, workers, args.ray_nodes, args.repeats)
    text = markdown(rows, args.images, args.repeats)
    print(text)
    if args.out:
        replace_doc_section(args.out, "throughput", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
