"""Model names → constructors, and safe save/load of weights.

Weights are stored in safetensors (never pickle: a weight file handed to us by a user must
not be able to run code) with a JSON sidecar beside them that says what the tensors are:
architecture, config, training data, commit and metrics. A file is loaded only through
its sidecar, so a stray tensor file cannot be mistaken for a model.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from noisead.models.dncnn import DnCNN, DnCNNConfig
from noisead.models.restormer import Restormer, RestormerConfig

FORMAT_VERSION = 1

_ARCHITECTURES: dict[str, tuple[type, type]] = {
    "dncnn": (DnCNN, DnCNNConfig),
    "restormer": (Restormer, RestormerConfig),
}

_PRESETS: dict[str, Callable[[], tuple[str, Any]]] = {
    "dncnn": lambda: ("dncnn", DnCNNConfig()),
    "dncnn-small": lambda: ("dncnn", DnCNNConfig.small()),
    "dncnn-tiny": lambda: ("dncnn", DnCNNConfig.tiny()),
    "restormer": lambda: ("restormer", RestormerConfig()),
    "restormer-small": lambda: ("restormer", RestormerConfig.small()),
    "restormer-tiny": lambda: ("restormer", RestormerConfig.tiny()),
}


def preset_names() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return sorted(_PRESETS)


def architecture_of(model: nn.Module) -> str:
    for name, (cls, _) in _ARCHITECTURES.items():
        if isinstance(model, cls):
            return name
    raise TypeError(f"unknown model class {type(model).__name__}")


def config_to_dict(config: Any) -> dict[str, Any]:
    out = {}
    for f in fields(config):
        v = getattr(config, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def config_from_dict(architecture: str, data: dict[str, Any]) -> Any:
    _, cfg_cls = _ARCHITECTURES[architecture]
    known = {f.name: f for f in fields(cfg_cls)}
    kwargs = {}
    for k, v in data.items():
        if k not in known:
            raise ValueError(f"unknown {architecture} config field {k!r}")
        kwargs[k] = tuple(v) if isinstance(v, list) else v
    return cfg_cls(**kwargs)


def create_model(name: str = "dncnn", **overrides: Any) -> nn.Module:
    """Build a model from a preset name (see :func:`preset_names`), with config overrides."""
    if name not in _PRESETS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(preset_names())}")
    arch, config = _PRESETS[name]()
    for k, v in overrides.items():
        if not hasattr(config, k):
            raise ValueError(f"{name} has no config field {k!r}")
        setattr(config, k, v)
    cls, _ = _ARCHITECTURES[arch]
    return cls(config)


def build_model(architecture: str, config: dict[str, Any]) -> nn.Module:
    if architecture not in _ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}")
    cls, _ = _ARCHITECTURES[architecture]
    return cls(config_from_dict(architecture, config))


def current_commit() -> str:
    """The git commit of the source tree, or ``"unknown"`` outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def model_metadata(model: nn.Module) -> dict[str, Any]:
    return {"architecture": architecture_of(model), "config": config_to_dict(model.config)}


def save_tensors_with_sidecar(path: str | Path, tensors: dict[str, torch.Tensor],
                              metadata: dict[str, Any]) -> Path:
    """Write ``tensors`` to ``path`` (safetensors) and ``metadata`` to its JSON sidecar.

    Both files are written to temporary names and renamed, so an interrupted save never
    leaves a half-written model behind under the final name.
    """
    from noisead.io import atomic_write_bytes

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"weights must be saved as .safetensors, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format_version": FORMAT_VERSION, **metadata}
    meta.setdefault("commit", current_commit())
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    tmp.chmod(0o644)
    tmp.replace(path)
    atomic_write_bytes(sidecar_path(path), json.dumps(meta, indent=2, default=str).encode())
    return path


def load_tensors_with_sidecar(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a safetensors file and its JSON sidecar; clear errors for anything else."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: only .safetensors weights are accepted (no pickles)")
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    side = sidecar_path(path)
    if not side.is_file():
        raise FileNotFoundError(f"{path.name} has no JSON sidecar ({side.name})")
    try:
        meta = json.loads(side.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{side}: invalid JSON sidecar: {e}") from e
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a valid safetensors file: {e}") from e
    return tensors, meta


def save_extractor(model: nn.Module, path: str | Path, **info: Any) -> Path:
    """Save an extractor's weights; ``info`` (training data, metrics...) goes in the sidecar."""
    meta = {"kind": "extractor", **model_metadata(model), **info}
    return save_tensors_with_sidecar(path, model.state_dict(), meta)


def load_extractor(path: str | Path) -> tuple[nn.Module, dict]:
    tensors, meta = load_tensors_with_sidecar(path)
    model = build_model(meta["architecture"], meta["config"])
    prefix = "extractor."
    if any(k.startswith(prefix) for k in tensors):
        tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    model.load_state_dict(tensors)
    model.eval()
    return model, meta
