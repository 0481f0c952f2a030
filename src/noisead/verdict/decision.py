"""One decision from the calibrated image score, stated with its false-alarm rate.

The image score is calibrated on pristine photos of the cameras the model was fitted on:
a score *s* means a share *s* of those photos score lower. Photos from cameras the model
never saw score higher than that on average, so the decision threshold and the rate it
states come from an :class:`OperatingPoint` measured on untouched photos of held-out
camera models (``noisead.evaluate.false_alarms``), stored in the model's sidecar. A model
without one falls back to its calibration's own rate and says that it was not measured on
unseen cameras.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from noisead.verdict.texture import TextureCheck

#: Nominal decision threshold on the calibrated image score when a model carries no
#: measured operating point: 1 pristine calibration photo in 100 scores higher.
NOMINAL_THRESHOLD = 0.99


class Decision(StrEnum):
    """What the tool concludes about one image."""

    FLAGGED = "flagged"
    NOT_FLAGGED = "not flagged"
    NO_TEXTURE = "not enough texture to judge"


@dataclass(frozen=True)
class OperatingPoint:
    """A decision threshold on the image score and how often untouched photos reach it.

    ``false_alarms`` of ``pristine_images`` untouched photos scored at or above
    ``threshold``; ``source`` says which photos. ``held_out`` is the same count on photos of
    camera models the model never saw, measured apart from the photos the threshold was
    chosen on (None where it was not measured). ``measured`` is False for the nominal point
    of a model that carries no measurement (its calibration's own rate).
    """

    threshold: float
    false_alarms: int
    pristine_images: int
    source: str
    held_out: tuple[int, int] | None = None
    measured: bool = True

    @property
    def rate(self) -> float:
        return self.false_alarms / self.pristine_images if self.pristine_images else math.nan

    @property
    def rate_upper(self) -> float:
        """One-sided 95 % upper confidence bound on the false-alarm rate (Clopper-Pearson)."""
        return _upper_bound(self.false_alarms, self.pristine_images)

    def phrase(self) -> str:
        """How often untouched photos reach the threshold, in words, to follow "which".

        Examples:
            >>> point = OperatingPoint(0.99, 2, 246, "validation photos", (2, 175))
            >>> print(point.phrase().replace("; ", ";\\n"))
            about 1 in 123 untouched photos reach (2 of 246;
            at most 2.5% at 95% confidence;
            on cameras the model never saw, 2 of 175)
            >>> OperatingPoint(0.99, 0, 59, "validation photos").phrase()
            'none of 59 untouched photos reached (at most 5.0% at 95% confidence)'
        """
        k, n = self.false_alarms, self.pristine_images
        if not self.measured:
            return (f"about {_one_in(self.rate)} untouched photos of the calibration cameras "
                    "reach (not measured on other cameras)")
        details = [f"at most {_percent(self.rate_upper)} at 95% confidence"]
        if k:
            details.insert(0, f"{k} of {n}")
        if self.held_out is not None:
            details.append(f"on cameras the model never saw, {self.held_out[0]} of "
                           f"{self.held_out[1]}")
        head = (f"none of {n} untouched photos reached" if k == 0 else
                f"about {_one_in(self.rate)} untouched photos reach")
        return f"{head} ({'; '.join(details)})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rate": round(self.rate, 6),
                "rate_upper_95": round(self.rate_upper, 6)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OperatingPoint:
        held = d.get("held_out")
        return cls(float(d["threshold"]), int(d["false_alarms"]), int(d["pristine_images"]),
                   str(d["source"]), (int(held[0]), int(held[1])) if held else None,
                   bool(d.get("measured", True)))


def _upper_bound(k: int, n: int) -> float:
    from scipy.stats import beta

    if n == 0 or k >= n:
        return 1.0
    return float(beta.ppf(0.95, k + 1, n - k))


#: The operating point of a model that carries none of its own.
NOMINAL = OperatingPoint(NOMINAL_THRESHOLD, 1, 100, "the model's image calibration",
                         measured=False)


def operating_point_for(info: dict[str, Any], mode: str) -> OperatingPoint:
    """The measured operating point a model's sidecar records for ``mode``, else ``NOMINAL``."""
    measured = (info.get("decision") or {}).get(mode)
    return OperatingPoint.from_dict(measured) if measured else NOMINAL


@dataclass(frozen=True)
class Verdict:
    """The decision about one image and the sentence that explains it."""

    decision: Decision
    score: float | None
    operating_point: OperatingPoint
    text: str

    @property
    def flagged(self) -> bool:
        return self.decision is Decision.FLAGGED

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision.value, "score": self.score, "text": self.text,
                "threshold": self.operating_point.threshold,
                "false_alarm_rate": round(self.operating_point.rate, 6),
                "false_alarm_rate_upper_95": round(self.operating_point.rate_upper, 6),
                "operating_point": self.operating_point.to_dict()}


def decide(score: float | None, texture: TextureCheck, point: OperatingPoint = NOMINAL,
           caveat: str | None = None) -> Verdict:
    """The one decision about an image, and its words.

    Args:
        score: the calibrated image score in [0, 1] (None or NaN: not computed).
        texture: :func:`~noisead.verdict.check_texture` of the image.
        point: the model's operating point (:func:`operating_point_for`).
        caveat: why a low score is weak evidence here (e.g. ``"JPEG, quality 90"``).

    Examples:
        >>> from noisead.verdict import TextureCheck
        >>> ok = TextureCheck(True, 1.0, None)
        >>> decide(0.999, ok).decision.value
        'flagged'
        >>> decide(0.5, ok).decision.value
        'not flagged'
        >>> decide(0.999, TextureCheck(False, 0, "the image is flat")).decision.value
        'not enough texture to judge'
    """
    if not texture.judgeable or score is None or not math.isfinite(score):
        why = texture.reason or "no score could be computed"
        return Verdict(Decision.NO_TEXTURE, None, point,
                       f"Not enough texture to judge: {why}. No score is given.")
    if score >= point.threshold:
        return Verdict(Decision.FLAGGED, score, point,
                       f"Flagged: score {score:.3f} reaches the decision threshold "
                       f"{point.threshold:.3f}, which {point.phrase()}. A score is evidence, "
                       "not proof: read the heatmap with the image.")
    text = (f"Not flagged: score {score:.3f} is below the decision threshold "
            f"{point.threshold:.3f}, which {point.phrase()}.")
    if caveat:
        text += (f" Weak evidence of authenticity: {caveat}; an edit, if any, was "
                 "recompressed when the file was saved.")
    return Verdict(Decision.NOT_FLAGGED, score, point, text)


def _one_in(rate: float) -> str:
    return "none of the" if rate <= 0 else f"1 in {max(1, round(1 / rate))}"


def _percent(rate: float) -> str:
    return f"{100 * rate:.1f}%" if rate < 0.1 else f"{round(100 * rate)}%"
