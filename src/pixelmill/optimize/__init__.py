"""``pixelmill optimize``: files, folders and prefixes encoded to a perceptual target through
the public API (:mod:`pixelmill.optimize.run`), with a summary against the best fixed quality
and an HTML report (:mod:`pixelmill.optimize.report`)."""
