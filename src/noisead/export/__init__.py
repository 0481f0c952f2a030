"""Export a detector's extractor to other runtimes (ONNX), for other tools and for speed.

Only the network moves: the detector's statistics (Gaussians, calibrations) stay in its
safetensors file, and noisead's own code applies them to the exported network's outputs.
"""

from noisead.export.onnx import OnnxExtractor, export_onnx, onnx_bytes

__all__ = ["OnnxExtractor", "export_onnx", "onnx_bytes"]
