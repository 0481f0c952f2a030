"""noisead: localize tampered regions in photographs from camera-noise fingerprints."""

__version__ = "0.1.0"
