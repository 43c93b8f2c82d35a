"""Benchmarks of pipelines on image sets (``pixelmill bench``): quality, speed and bytes,
ranked, in an HTML report with plots and crops; and the benchmark image set itself. It needs
the ``bench`` extra for its plots (matplotlib) and the bundled photographs (scikit-image)."""
