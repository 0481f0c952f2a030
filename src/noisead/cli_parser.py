"""The jsonargparse glue of the command line: subcommands declared as with argparse.

Why jsonargparse: it gives every subcommand a ``--config FILE`` (YAML or JSON) and
``--print_config`` with one line each, instead of hand-written loops over options. Two
argparse habits it lacks are restored here so that subcommands are declared as before:
``sub.add_parser(name, help=...)`` and ``parser.set_defaults(func=...)``. Every parser
made here also takes the global options, so that they work before and after the
subcommand (``noisead --quiet analyze`` and ``noisead analyze --quiet``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

T = TypeVar("T")

Command = Callable[[Namespace], int]


class CommandParser(ArgumentParser):
    """A jsonargparse parser that also takes argparse's ``set_defaults(func=...)``: the
    function that runs its subcommand is kept aside (jsonargparse keeps only options)."""

    command: Command | None = None
    subcommands: Subcommands | None = None

    def set_defaults(self, *args: Any, func: Command | None = None, **kwargs: Any) -> None:
        if func is not None:
            self.command = func
        if args or kwargs:
            super().set_defaults(*args, **kwargs)


class Subcommands:
    """The subcommands of one parser, with argparse's ``add_parser``: each gets the global
    options and a ``--config`` file (unless ``config_file=False``: train-extractor's
    ``--config`` is its own training configuration)."""

    def __init__(self, parent: CommandParser, dest: str) -> None:
        self.dest = dest
        self.parsers: dict[str, CommandParser] = {}
        self._action = parent.add_subcommands(dest=dest, required=True)
        parent.subcommands = self

    def add_parser(self, name: str, *, help: str, config_file: bool = True,
                   **kwargs: Any) -> CommandParser:
        parser = CommandParser(description=help, **kwargs)
        add_global_options(parser, config_file=config_file)
        self._action.add_subcommand(name, parser, help=help)
        self.parsers[name] = parser
        return parser


def add_global_options(parser: ArgumentParser, config_file: bool = True) -> None:
    """Options every parser takes, before or after the subcommand."""
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    if config_file:
        parser.add_argument("--config", action=ActionConfigFile,
                            help="read options from a YAML or JSON file (--print_config "
                                 "writes one)")


def chosen_command(parser: CommandParser, cfg: Namespace) -> tuple[Command, Namespace]:
    """The function of the subcommand ``cfg`` selects and its options, with the global
    options given anywhere on the way (``noisead --quiet analyze`` or ``analyze --quiet``)."""
    quiet = bool(cfg.get("quiet"))
    options = cfg
    while parser.subcommands is not None:
        name = options[parser.subcommands.dest]
        parser, options = parser.subcommands.parsers[name], options[name]
        quiet = quiet or bool(options.get("quiet"))
    assert parser.command is not None, "every subcommand sets its function"
    options.quiet = quiet
    return parser.command, options


def comma_separated(text: str, kind: Callable[[str], T]) -> tuple[T, ...]:
    """``"100,95, 90"`` -> ``(100, 95, 90)`` with ``kind=int`` (empty items skipped)."""
    return tuple(kind(x) for x in text.split(",") if x.strip())


def output_kinds(text: str) -> str:
    """``analyze --outputs``: checked at parse time, kept as text (a config file writes it
    back)."""
    from noisead.batch.outputs import OUTPUT_CHOICES, parse_output_kinds

    try:
        kinds = parse_output_kinds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return ",".join(k for k in OUTPUT_CHOICES if k in kinds)
