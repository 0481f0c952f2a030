"""The evidence sources and their fusion with the learned map (noisead.anomaly.fusion)."""

from __future__ import annotations

import numpy as np
import pytest

import noisead.anomaly.evidence as evidence_module
import noisead.anomaly.fusion as fusion_module
from noisead.anomaly.config import DetectorConfig
from noisead.anomaly.evidence import EVIDENCE, EVIDENCE_SOURCES, LEARNED, EvidenceSource
from noisead.anomaly.fusion import fuse
from noisead.anomaly.noise_statistics import MAD_TO_SIGMA, noise_level_deviation


def test_evidence_codes_are_stable():
    """Codes are saved in evidence maps and read by every report: they must not move."""
    assert EVIDENCE == (LEARNED, "noise level", "noise spectrum", "JPEG lattice")
    assert [s.key for s in EVIDENCE_SOURCES] == ["noise-level", "noise-spectrum",
                                                 "jpeg-lattice"]
    assert len({s.key for s in EVIDENCE_SOURCES}) == len(EVIDENCE_SOURCES)


def test_no_source_leaves_the_learned_map_alone(rng):
    learned = rng.random((20, 30)).astype(np.float32)
    fused = fuse(learned.copy(), rng.random((20, 30, 3)), DetectorConfig())
    np.testing.assert_array_equal(fused.raw, learned)
    assert fused.evidence is None and fused.image_statistic is None


def test_sources_are_fused_in_registry_order_whatever_the_config_order(rng):
    image = rng.random((48, 56, 3))
    learned = rng.random((48, 56)).astype(np.float32)
    a = fuse(learned.copy(), image, DetectorConfig(evidence=("noise-spectrum", "noise-level")))
    b = fuse(learned.copy(), image, DetectorConfig(evidence=("noise-level", "noise-spectrum")))
    np.testing.assert_array_equal(a.raw, b.raw)
    np.testing.assert_array_equal(a.evidence, b.evidence)


class _Bump(EvidenceSource):
    """A made-up source: a strong square in the middle of the image."""

    key = "bump"
    name = "bump"

    def deviation(self, image: np.ndarray, config: DetectorConfig) -> np.ndarray:
        out = np.zeros(image.shape[:2], np.float32)
        out[10:20, 10:20] = 100.0
        return out


def test_a_new_source_is_one_class_and_one_entry_in_the_list(rng, monkeypatch):
    sources = (*EVIDENCE_SOURCES, _Bump())
    monkeypatch.setattr(evidence_module, "EVIDENCE_SOURCES", sources)
    monkeypatch.setattr(fusion_module, "EVIDENCE_SOURCES", sources)
    config = DetectorConfig(evidence=("noise-level", "bump"))
    config.validate()
    image = rng.random((32, 32, 3))
    learned = rng.random((32, 32)).astype(np.float32)
    fused = fuse(learned.copy(), image, config)
    assert (fused.evidence[10:20, 10:20] == len(EVIDENCE)).all()  # the next code
    level = noise_level_deviation(image)
    want = np.maximum(learned / np.float32(MAD_TO_SIGMA), level)
    outside = np.ones((32, 32), bool)
    outside[10:20, 10:20] = False
    np.testing.assert_allclose(fused.raw[outside], want[outside], rtol=1e-6)
    assert set(np.unique(fused.evidence[outside])) <= {0, 1}


def test_an_unknown_source_is_refused():
    with pytest.raises(ValueError, match="noise-level, noise-spectrum, jpeg-lattice"):
        DetectorConfig(evidence=("bump",)).validate()
