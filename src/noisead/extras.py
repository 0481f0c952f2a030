"""Optional dependencies ("extras") and the ``noisead`` console command that names them.

Analysing images needs only the core dependencies. The web viewer, the research commands
(simulated cameras, benchmarks, training, evaluation) and the ONNX export each need
libraries a person who only analyses photos should not have to install, so they come as
extras: ``pip install 'noisead[serve]'``, ``'noisead[train]'``, ``'noisead[onnx]'``,
``'noisead[ray]'`` (a batch on a Ray cluster)
(``'noisead[dev]'`` has them all plus the test tools). The command imports them only when
a subcommand needs them; when one is missing, the person gets one line naming the extra to
install instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: Top-level module → the extra that installs it.
EXTRA_FOR_MODULE: dict[str, str] = {
    "flask": "serve",
    "werkzeug": "serve",
    "colour_demosaicing": "train",
    "colour": "train",
    "sklearn": "train",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "ray": "ray",
}


def require_extra(extra: str) -> None:
    """Import every module of ``extra`` now, so that a command that will need one of them
    (perhaps an hour into a training run) fails at once with the extra's name."""
    import importlib

    for module, owner in EXTRA_FOR_MODULE.items():
        if owner == extra and module not in ("colour", "werkzeug"):  # imported by the others
            importlib.import_module(module)


def missing_extra_message(error: ModuleNotFoundError) -> str | None:
    """The sentence telling which extra provides the module ``error`` is about.

    None when the module belongs to no extra: a core dependency is missing, which is a
    broken installation and deserves its full traceback.
    """
    module = (error.name or "").split(".")[0]
    extra = EXTRA_FOR_MODULE.get(module)
    if extra is None:
        return None
    return (f"this command needs the optional dependency {module!r}, which is not installed: "
            f"pip install 'noisead[{extra}]'")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``noisead`` console command: :func:`noisead.cli.main`, with a one-line message
    naming the extra to install when a subcommand needs a library that is not installed."""
    from noisead.cli import main as cli_main

    try:
        return cli_main(argv)
    except ModuleNotFoundError as error:
        message = missing_extra_message(error)
        if message is None:
            raise
        print(f"noisead: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
