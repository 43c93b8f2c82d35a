"""Models: the registry of ONNX models with manifests, and the onnxruntime sessions."""

from pixelmill.models.manifest import Manifest
from pixelmill.models.registry import ModelFile, available, find

__all__ = ["Manifest", "ModelFile", "available", "find"]
