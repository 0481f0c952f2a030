"""The optimiser's state as flat tensors, so that a checkpoint is one safetensors file.

safetensors stores named tensors only; Adam keeps, per parameter, a few tensors and a step
count. These two functions flatten that state to ``opt.<parameter index>.<name>`` and put it
back, so that a resumed run continues with the moments it had, not from a cold optimiser.
"""

from __future__ import annotations

import torch


def optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimiser's per-parameter state, named ``opt.<index>.<key>``."""
    out = {}
    for i, (_, st) in enumerate(opt.state.items()):
        for k, v in st.items():
            out[f"opt.{i}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    return out


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Put back what :func:`optimizer_tensors` saved (same parameters, same order)."""
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        st = {k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"opt.{i}.")}
        if st:
            opt.state[p] = st
