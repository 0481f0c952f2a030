"""What a simulated camera model is: every parameter of its pipeline, fixed for all its images.

:class:`CameraModelSpec` validates itself at construction (a bad model fails before a long
run starts), round-trips through JSON (``model_card.json``) and says in one sentence what
it does (:meth:`CameraModelSpec.describe`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from noisead.io.jpeg import ijg_quant_tables

__all__ = [
    "CFA_PATTERNS",
    "DEMOSAIC_METHODS",
    "OUTPUTS",
    "SUBSAMPLINGS",
    "TONE_CURVES",
    "CameraModelSpec",
]

CFA_PATTERNS: tuple[str, ...] = ("RGGB", "BGGR", "GRBG", "GBRG")
DEMOSAIC_METHODS: tuple[str, ...] = ("bilinear", "malvar2004", "menon2007")
TONE_CURVES: tuple[str, ...] = ("srgb", "gamma", "scurve")
SUBSAMPLINGS: tuple[str, ...] = ("4:4:4", "4:2:2", "4:2:0")
OUTPUTS: tuple[str, ...] = ("jpeg", "png")

_IDENTITY9: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


_DEMOSAIC_NAMES = {
    "bilinear": "bilinear",
    "malvar2004": "Malvar-He-Cutler 2004",
    "menon2007": "Menon 2007 (DDFAPD)",
}



@dataclass(frozen=True)
class CameraModelSpec:
    """Every parameter of one simulated camera model (fixed for all its images).

    The defaults make a plausible mid-range camera, so ``CameraModelSpec()`` renders.

    Attributes:
        name: folder name of the model in :func:`simulate_cameras`' output.
        cfa: Bayer pattern read row-major from the top-left 2x2 cell.
        demosaic: one of :data:`DEMOSAIC_METHODS`.
        shot_gain: ``a`` of the Poisson-Gaussian model, raw in [0, 1]: variance ``a*x + b**2``.
        read_sigma: ``b``, the signal-independent (read) noise standard deviation.
        prnu_sigma: std of the fixed multiplicative pattern ``K`` (raw *= 1 + K); 0 = none.
        prnu_seed: seed of that pattern (per-position: the same pixel always gets the same K).
        wb_gains: white-balance gains for (R, G, B) camera channels.
        color_matrix: 3x3 camera-RGB → linear-sRGB matrix, row-major; rows sum to 1.
        tone: ``"srgb"``, ``"gamma"`` (``x ** (1/gamma)``) or ``"scurve"`` (sRGB + S-curve).
        gamma: exponent of the ``"gamma"`` curve.
        scurve_strength: blend in [0, 1] of a smoothstep S-curve after sRGB (``"scurve"``).
        sharpen_radius: Gaussian sigma (px) of the unsharp mask; 0 = no sharpening.
        sharpen_amount: gain of the unsharp mask; 0 = no sharpening.
        denoise_strength: in [0, 1], blend with an edge-preserving filter; 0 = none.
        output: ``"jpeg"`` or ``"png"`` (lossless, no JPEG traces).
        jpeg_quality: IJG quality 1-100, used when ``jpeg_qtables`` is None.
        jpeg_qtables: custom (luma, chroma) tables of 64 ints each, natural order, 1-255.
        subsampling: chroma subsampling ``"4:4:4"``, ``"4:2:2"`` or ``"4:2:0"``.
    """

    name: str = "simcam"
    cfa: str = "RGGB"
    demosaic: str = "malvar2004"
    shot_gain: float = 1e-3
    read_sigma: float = 2e-3
    prnu_sigma: float = 0.0
    prnu_seed: int = 0
    wb_gains: tuple[float, float, float] = (2.0, 1.0, 1.6)
    color_matrix: tuple[float, ...] = field(default=_IDENTITY9)
    tone: str = "srgb"
    gamma: float = 2.2
    scurve_strength: float = 0.0
    sharpen_radius: float = 0.0
    sharpen_amount: float = 0.0
    denoise_strength: float = 0.0
    output: str = "jpeg"
    jpeg_quality: int | None = 90
    jpeg_qtables: tuple[tuple[int, ...], ...] | None = None
    subsampling: str = "4:2:0"

    def __post_init__(self) -> None:
        # Fail at construction, not halfway through a 1,600-image run.
        if self.cfa not in CFA_PATTERNS:
            raise ValueError(f"cfa must be one of {CFA_PATTERNS}, got {self.cfa!r}")
        if self.demosaic not in DEMOSAIC_METHODS:
            raise ValueError(f"demosaic must be one of {DEMOSAIC_METHODS}, got {self.demosaic!r}")
        if self.tone not in TONE_CURVES:
            raise ValueError(f"tone must be one of {TONE_CURVES}, got {self.tone!r}")
        if self.subsampling not in SUBSAMPLINGS:
            raise ValueError(f"subsampling must be one of {SUBSAMPLINGS}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.shot_gain < 0 or self.read_sigma < 0 or self.prnu_sigma < 0:
            raise ValueError("noise parameters must be >= 0")
        if len(self.wb_gains) != 3 or min(self.wb_gains) <= 0:
            raise ValueError("wb_gains must be three positive gains")
        if len(self.color_matrix) != 9:
            raise ValueError("color_matrix must hold 9 numbers (3x3, row-major)")
        if self.output == "jpeg":
            if self.jpeg_qtables is None:
                if self.jpeg_quality is None or not 1 <= self.jpeg_quality <= 100:
                    raise ValueError("a JPEG model needs jpeg_quality in 1..100 or jpeg_qtables")
            else:
                if not 1 <= len(self.jpeg_qtables) <= 4:
                    raise ValueError("jpeg_qtables must hold 1 to 4 tables")
                for t in self.jpeg_qtables:
                    if len(t) != 64 or min(t) < 1 or max(t) > 255:
                        raise ValueError("each quantization table needs 64 ints in 1..255")

    # -- serialisation ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists); :meth:`from_dict` inverts it."""
        d = asdict(self)
        d["wb_gains"] = list(self.wb_gains)
        d["color_matrix"] = list(self.color_matrix)
        if self.jpeg_qtables is not None:
            d["jpeg_qtables"] = [list(t) for t in self.jpeg_qtables]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CameraModelSpec:
        """Rebuild a spec from :meth:`to_dict` output (e.g. a ``model_card.json``)."""
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        if "wb_gains" in kw:
            kw["wb_gains"] = tuple(float(v) for v in kw["wb_gains"])
        if "color_matrix" in kw:
            kw["color_matrix"] = tuple(float(v) for v in kw["color_matrix"])
        if kw.get("jpeg_qtables") is not None:
            kw["jpeg_qtables"] = tuple(tuple(int(v) for v in t) for t in kw["jpeg_qtables"])
        return cls(**kw)

    # -- derived ------------------------------------------------------------------------

    def quant_tables(self) -> tuple[tuple[int, ...], ...] | None:
        """The quantization tables the JPEG will carry (None for PNG output)."""
        if self.output != "jpeg":
            return None
        if self.jpeg_qtables is not None:
            return self.jpeg_qtables
        assert self.jpeg_quality is not None
        return ijg_quant_tables(self.jpeg_quality)

    def describe(self) -> str:
        """One sentence in words, for the model card."""
        parts = [
            f"Simulated camera model '{self.name}': {self.cfa} colour filter array",
            f"{_DEMOSAIC_NAMES[self.demosaic]} demosaicing",
            f"Poisson-Gaussian sensor noise (a={self.shot_gain:.2e}, b={self.read_sigma:.2e})",
        ]
        if self.prnu_sigma > 0:
            parts.append(f"PRNU-like fixed pattern (sigma {self.prnu_sigma:.3f})")
        if self.denoise_strength > 0:
            parts.append(f"in-camera denoising (strength {self.denoise_strength:.2f})")
        wb = ", ".join(f"{g:.2f}" for g in self.wb_gains)
        parts.append(f"white balance gains ({wb}) and a 3x3 colour matrix")
        if self.tone == "srgb":
            parts.append("sRGB tone curve")
        elif self.tone == "gamma":
            parts.append(f"gamma {self.gamma:.2f} tone curve")
        else:
            parts.append(f"sRGB tone curve with an S-curve (strength {self.scurve_strength:.2f})")
        if self.sharpen_amount > 0 and self.sharpen_radius > 0:
            parts.append(
                f"unsharp-mask sharpening (radius {self.sharpen_radius:.2f} px, "
                f"amount {self.sharpen_amount:.2f})"
            )
        if self.output == "png":
            tail = "lossless PNG output (no JPEG)"
        elif self.jpeg_qtables is not None:
            tail = f"JPEG with custom quantization tables and {self.subsampling} chroma subsampling"
        else:
            tail = f"JPEG quality {self.jpeg_quality} with {self.subsampling} chroma subsampling"
        return ", ".join(parts) + ", " + tail + "."
