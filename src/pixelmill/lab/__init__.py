"""The model lab: train small super-resolution and restoration nets on synthetic and real
images, export them to ONNX with the manifest the tiled engine needs, evaluate them through
that engine on held-out photographs, make them smaller and faster (distillation, channel
pruning, int8 and float16 variants) and write their model cards.

It needs the ``lab`` extra (``pip install 'pixelmill[lab]'``). It is a top layer: it uses the
API, the engine, the models and storage; nothing else in pixelmill imports it.
"""

REQUIRES = (
    "torch", "yaml", "onnx", "onnxscript", "skimage", "sklearn", "matplotlib", "PIL",
)  # fmt: skip
"""Top-level modules of the packages the lab extra installs."""
