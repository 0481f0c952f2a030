"""Make untrusted text (file names, error messages) safe for where it is shown.

File names come from whoever filled the input folder. Printed raw, a name can carry
terminal escape codes that rewrite the screen or the window title; written raw into a CSV
cell, a name starting with ``=`` is run as a formula by spreadsheet programs. Each output
context gets its own escaping here, so every writer uses the same rule.
"""

from __future__ import annotations

import os
import re

#: C0 controls, DEL and C1 controls: everything a terminal may interpret.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

#: First characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _escape_control(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def for_terminal(text: object) -> str:
    """``text`` with every control character written as ``\\xNN`` (and undecodable bytes of a
    file name as ``\\xNN`` too), so printing it cannot move the cursor or change the terminal.
    """
    s = os.fspath(text) if isinstance(text, os.PathLike) else str(text)
    s = s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(_escape_control, s)


def for_csv_cell(value: object) -> object:
    """A CSV cell value that a spreadsheet shows as text: a string starting with
    ``= + - @``, a tab or a carriage return gets a leading ``'`` (OWASP's rule); other
    values are returned unchanged (numbers stay numbers).
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as text that always encodes to UTF-8 (undecodable bytes as ``\\xNN``)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
