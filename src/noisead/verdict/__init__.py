"""The decision shown to a person: flagged, not flagged, or not enough texture to judge.

Every place that shows a verdict (the CLI line, ``summary.csv``, ``report.html``, the
per-image JSON, the web viewer) takes it from :func:`decide` and its words from
:attr:`Verdict.text`, so the wording and the operating point are the same everywhere.
The decision reads the calibrated *image* score only; the pixel threshold draws the mask
and nothing else.
"""

from noisead.verdict.decision import (
    Decision,
    OperatingPoint,
    Verdict,
    decide,
    operating_point_for,
)
from noisead.verdict.texture import TextureCheck, check_texture

__all__ = ["Decision", "OperatingPoint", "TextureCheck", "Verdict", "check_texture", "decide",
           "operating_point_for"]
