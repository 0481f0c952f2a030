"""Local web viewer (``noisead serve``): upload a photo, inspect heatmap, mask, fingerprint."""

from noisead.serve.app import create_app, run

__all__ = ["create_app", "run"]
