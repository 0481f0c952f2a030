"""The one registry of benchmark methods (noisead.evaluate.methods)."""

from __future__ import annotations

import numpy as np
import pytest

from noisead.anomaly.config import Mode
from noisead.evaluate.ablation import FUSION_VARIANTS
from noisead.evaluate.methods import (
    METHODS,
    BaselineMethod,
    FusionVariantMethod,
    MethodContext,
    NoiseadMethod,
    method_names,
    noisead_method_name,
    run_method,
)


def test_every_mode_and_baseline_is_registered_once_under_its_name():
    assert all(name == method.name for name, method in METHODS.items())
    noisead = {m.mode for m in METHODS.values() if isinstance(m, NoiseadMethod)}
    assert noisead == {None, *Mode}
    assert [noisead_method_name(m) for m in (None, *Mode)] == [
        "noisead", "noisead-reference", "noisead-blind"]
    baselines = [m.name for m in METHODS.values() if isinstance(m, BaselineMethod)]
    assert baselines == ["noi1", "ela", "noise_residual_variance", "noise_statistics",
                         "jpeg_lattice"]
    variants = [m.name for m in METHODS.values() if isinstance(m, FusionVariantMethod)]
    assert variants == [v.method_name for v in FUSION_VARIANTS]
    assert all(m.uses_detector == isinstance(m, NoiseadMethod | FusionVariantMethod)
               for m in METHODS.values())


def test_method_names_keep_order_drop_repeats_and_list_the_valid_ones():
    assert method_names(["ela", "noisead-blind", "ela"]) == ["ela", "noisead-blind"]
    with pytest.raises(ValueError, match="unknown method 'noise'; choose from noisead, "):
        method_names(["noise"])


def test_a_noisead_method_needs_a_detector(rng):
    with pytest.raises(ValueError, match="needs a detector"):
        run_method("noisead-blind", rng.random((64, 64, 3)), MethodContext())


def test_a_baseline_answers_without_one(rng):
    out = run_method("ela", rng.random((40, 48, 3)).astype(np.float32),
                     MethodContext(threshold=0.25))
    assert out.fingerprint is None
    np.testing.assert_array_equal(out.mask, out.heatmap >= np.float32(0.25))


def test_a_noisead_method_reads_the_detectors_mode():
    from noisead.infer import load_detector

    det = load_detector("default")
    assert METHODS["noisead"].mode_for(det) is det.config.mode
    assert METHODS["noisead-blind"].mode_for(det) is Mode.BLIND
