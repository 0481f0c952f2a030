"""JSON schemas of noisead's result files, shipped in the package.

Why: a researcher who scores noisead with their own tools reads its JSON files and CSVs,
not its Python objects; a schema says exactly what each field is and lets them validate
what they read (any JSON Schema validator, draft 2020-12). Each schema carries a version
``MAJOR.MINOR`` (in its ``$id`` and, for JSON documents, in their ``schema_version``
field): a new optional field raises MINOR, a changed or removed one raises MAJOR.

``result`` is one image's ``<stem>.json`` (and a line of ``noisead analyze --json``);
``failure`` a line of ``--json`` for an input that could not be analysed;
``summary-row`` one row of ``summary.csv`` as a CSV reader returns it (all strings).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

#: The version of the result and failure documents noisead writes.
RESULT_SCHEMA_VERSION = "1.1"
#: The version of summary.csv's columns.
SUMMARY_SCHEMA_VERSION = "1.0"
#: Schema name -> file in this package.
SCHEMA_FILES = {"result": "result.schema.json", "failure": "failure.schema.json",
                "summary-row": "summary-row.schema.json"}


def schema_path(name: str) -> Path:
    """The file of the schema ``name`` (one of ``SCHEMA_FILES``) inside the package."""
    if name not in SCHEMA_FILES:
        raise ValueError(f"no schema named {name!r}; there are {', '.join(SCHEMA_FILES)}")
    return Path(str(resources.files(__name__).joinpath(SCHEMA_FILES[name])))


@cache
def _load(name: str) -> str:
    return schema_path(name).read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """The schema ``name`` as a dict (a fresh copy each call)."""
    return json.loads(_load(name))
