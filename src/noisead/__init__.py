"""noisead: localize tampered regions in photographs from camera-noise fingerprints.

``noisead.infer.analyze()`` analyses one image; ``noisead.Method`` is the same analysis
behind the interface of photoholmes' methods (``predict``/``benchmark`` returning torch
tensors), for benchmarks that run many methods alike (docs/ADAPTERS.md).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["Method", "Noisead", "__version__"]


def _version() -> str:
    """The installed distribution's version; in a source tree that was never installed,
    the one in its ``pyproject.toml`` (so both report the same number)."""
    try:
        return metadata.version("noisead")
    except metadata.PackageNotFoundError:
        pass
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return "0+unknown"
    return str(project["version"]) if project.get("name") == "noisead" else "0+unknown"


__version__ = _version()


def __getattr__(name: str) -> Any:
    """``noisead.Method`` on first use: importing noisead stays light (no torch) for the
    command line, which imports only what each subcommand needs."""
    if name in ("Method", "Noisead"):
        from noisead.method import Noisead

        return Noisead
    raise AttributeError(f"module 'noisead' has no attribute {name!r}")
