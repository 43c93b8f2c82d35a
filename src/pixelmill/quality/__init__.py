"""Image quality: full-reference metrics (:mod:`.reference`, :mod:`.fsim`,
:mod:`.ssimulacra2`), no-reference indicators (:mod:`.blind`), and the catalogue that names
them (:mod:`.metrics`). Pure functions of images; nothing here reads or writes files."""

from pixelmill.quality.metrics import METRICS, Metric, compare, metric, metrics

__all__ = ["METRICS", "Metric", "compare", "metric", "metrics"]
