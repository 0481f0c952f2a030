"""Batch runs: many images into one output folder, resumable, nothing lost or mixed up.

``run_batch`` (:mod:`noisead.batch.run`) is the loop; the rest are its parts, one job
each: which files to analyse (:mod:`~noisead.batch.inputs`), output names
(:mod:`~noisead.batch.naming`), reading an input with its hash (:mod:`~noisead.batch.source`),
the state database (:mod:`~noisead.batch.state`, :mod:`~noisead.batch.records`), the files of
one result (:mod:`~noisead.batch.outputs`), summary.csv and failures.csv
(:mod:`~noisead.batch.summary`), the HTML report (:mod:`~noisead.batch.report`), the
folder's lock (:mod:`~noisead.batch.lock`) and escaping for each output
(:mod:`~noisead.batch.escape`).
"""

from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use: the command line imports the light modules (escaping, the lock)
# without paying for torch.
_EXPORTS = {"InputScan": "inputs", "Rejected": "inputs", "scan_inputs": "inputs",
            "OutputFolderBusyError": "lock", "write_outputs": "outputs",
            "AnalyzeFn": "run", "BatchReport": "run", "run_batch": "run"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'noisead.batch' has no attribute {name!r}")
    return getattr(importlib.import_module(f"noisead.batch.{_EXPORTS[name]}"), name)
