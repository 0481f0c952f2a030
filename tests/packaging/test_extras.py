"""Core dependencies analyse images; each optional library belongs to a declared extra,
and a command that needs a missing one says which extra to install, in one line."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisead.extras import EXTRA_FOR_MODULE, missing_extra_message

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
#: imported only behind a guard that turns its absence into a clear message
GUARDED = {"yaml"}  # noisead.Method.from_config reads photoholmes' YAML configs with it
BLOCKED = sorted(set(EXTRA_FOR_MODULE) | {"selenium", "hypothesis"})


def _dist_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _declared(requirements: list[str]) -> set[str]:
    """The distributions ``requirements`` name, with their own requirements (one level:
    werkzeug comes with flask, colour-science with colour-demosaicing)."""
    names = {_dist_name(r) for r in requirements}
    for name in list(names):
        try:
            names |= {_dist_name(r) for r in metadata.requires(name) or []
                      if "extra ==" not in r}
        except metadata.PackageNotFoundError:
            pass
    return names


def _third_party_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (REPO / "src" / "noisead").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "noisead" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_imported_library_is_a_declared_dependency():
    distributions = metadata.packages_distributions()
    core = _declared(PROJECT["dependencies"])
    extras = {name: _declared(reqs) for name, reqs in
              PROJECT["optional-dependencies"].items()}
    problems = []
    for module, files in sorted(_third_party_imports().items()):
        if module in GUARDED:
            continue
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        extra = EXTRA_FOR_MODULE.get(module)
        if extra is None and not dists & core:
            problems.append(f"{module} ({sorted(files)[0]}): not a core dependency and in no "
                            "extra of noisead.extras.EXTRA_FOR_MODULE")
        elif extra is not None and not dists & extras.get(extra, set()):
            problems.append(f"{module}: EXTRA_FOR_MODULE says [{extra}], which lacks it")
        elif extra is not None and dists & core:
            problems.append(f"{module}: both core and in [{extra}]")
    assert not problems, "\n".join(problems)


def test_dev_extra_pulls_what_make_test_needs():
    dev = PROJECT["optional-dependencies"]["dev"]
    (self_ref,) = [r for r in dev if _dist_name(r) == "noisead"]
    assert set(re.search(r"\[(.*)\]", self_ref).group(1).split(",")) == {"serve", "train", "onnx",
                                                                    "ray"}
    assert {"pytest", "hypothesis", "ruff", "selenium", "build"} <= _declared(dev)


def test_console_command_is_the_extras_aware_entry():
    assert PROJECT["scripts"]["noisead"] == "noisead.extras:main"


def test_message_names_the_extra():
    assert "pip install 'noisead[serve]'" in missing_extra_message(
        ModuleNotFoundError("No module named 'flask'", name="flask"))
    assert "noisead[train]" in missing_extra_message(
        ModuleNotFoundError("x", name="sklearn.metrics"))
    assert missing_extra_message(ModuleNotFoundError("x", name="numpy")) is None


BLOCKER = """
import sys, importlib.abc
BLOCKED = set({blocked!r})
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Block())
for name in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
    del sys.modules[name]
"""


def _without_extras(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where no optional library can be imported."""
    return subprocess.run([sys.executable, "-c", BLOCKER.format(blocked=BLOCKED) + code],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)


@pytest.mark.slow
def test_core_alone_analyses_and_commands_name_their_extra(tmp_path):
    image = Image.open(REPO / "src/noisead/examples/spliced.png").convert("RGB")
    Image.fromarray(np.asarray(image)[:160, :160]).save(tmp_path / "photo.png")
    code = """
import noisead
from noisead.extras import main
out = noisead.Method().predict("photo.png")
assert out["heatmap"].shape == (160, 160), out["heatmap"].shape
assert main(["--quiet", "analyze", "photo.png", "-o", "results"]) == 0
print("EXIT", main(["serve", "--port", "0"]), main(["train-extractor", "x", "-o", "run"]))
"""
    done = _without_extras(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "EXIT 2 2" in done.stdout
    assert (tmp_path / "results" / "summary.csv").is_file()
    errors = [line for line in done.stderr.splitlines() if line.startswith("noisead: error")]
    assert len(errors) == 2
    assert errors[0] == ("noisead: error: this command needs the optional dependency 'flask', "
                         "which is not installed: pip install 'noisead[serve]'")
    # checked before any work starts: the first missing module of the training extra
    assert errors[1].startswith("noisead: error: this command needs the optional dependency")
    assert errors[1].endswith("pip install 'noisead[train]'")


def test_a_missing_core_library_is_not_blamed_on_an_extra(tmp_path):
    done = _without_extras("from noisead.extras import main\n"
                           "import sys; sys.modules['tqdm'] = None\n"
                           "main(['--quiet', 'analyze', 'nothing.png', '-o', 'out'])\n",
                           tmp_path)
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "noisead[" not in done.stderr
