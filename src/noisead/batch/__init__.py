"""Batch runs: many images into one output folder, resumable, nothing lost or mixed up.

``run_batch`` (:mod:`noisead.batch.run`) is the loop; the rest are its parts, one job
each: which files to analyse (:mod:`~noisead.batch.inputs`), output names
(:mod:`~noisead.batch.naming`), reading an input with its hash (:mod:`~noisead.batch.source`),
the state database (:mod:`~noisead.batch.state`, :mod:`~noisead.batch.records`), one image's
job wherever it runs (:mod:`~noisead.batch.jobs`), where jobs run (in this process or in
worker processes, :mod:`~noisead.batch.engines`; on a Ray cluster,
:mod:`~noisead.batch.ray_engine`), the files of one result (:mod:`~noisead.batch.outputs`),
summary.csv and failures.csv (:mod:`~noisead.batch.summary`), the HTML report
(:mod:`~noisead.batch.report`), the folder's lock (:mod:`~noisead.batch.lock`) and escaping
for each output (:mod:`~noisead.batch.escape`).
"""

from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use: the command line imports the light modules (escaping, the lock)
# without paying for torch.
_EXPORTS = {"InputScan": "inputs", "Rejected": "inputs", "scan_inputs": "inputs",
            "OutputFolderBusyError": "lock", "write_outputs": "outputs",
            "AnalyzeFn": "jobs", "BatchReport": "run", "run_batch": "run",
            "DetectorAnalyzer": "jobs", "InProcessEngine": "engines",
            "ProcessPoolEngine": "engines", "make_engine": "engines",
            "RayEngine": "ray_engine"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'noisead.batch' has no attribute {name!r}")
    return getattr(importlib.import_module(f"noisead.batch.{_EXPORTS[name]}"), name)
